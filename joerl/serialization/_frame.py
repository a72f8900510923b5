"""The frame that is running a user's ``serialize()`` or deserializer, so
that ``encode``, ``decode``, ``pid_to_bytes``, ``active_codec`` ... inside it
use the right codec (``_active.py`` reads it).

A frame is ``(codec, decoder)`` while a ``Codec`` runs one (``decoder``: the
decode that met the registered message, else None), or ``(registry, None)``
while ``MessageRegistry.deserialize`` runs one: the codec is then the
registry's plain (hook-less) codec, made when first asked for. This module
sits below both, so that neither imports the other to run a deserializer.

Where it is kept: a ``Slot`` in the greenlet's ``contextvars`` context, set
there the first time it is needed (a greenlet starts with an empty context);
running a frame is then attribute stores on the slot, not a
``ContextVar.set`` and ``reset`` (ten times dearer). While a frame runs, the
slot also names the greenlet running it (``owner``, None between frames, so
no reference outlives the frame): a context copied into another greenlet
(``copy_context``) shares the slot object, and the other greenlet neither
sees that frame nor writes over it; it sets a slot of its own. Hot paths
read and enter frames inline, as ``active_frame`` and ``run_deserializer`` do.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from greenlet import getcurrent as _getcurrent  # type: ignore[import-untyped]

from ..errors import DecodeError, SerializationError

Frame = tuple[Any, Any]

#: The running greenlet (each OS thread has a main one).
getcurrent: Callable[[], Any] = _getcurrent


class Slot:
    """The frame running in a context (None between frames) and the greenlet running it."""

    __slots__ = ("frame", "owner")

    def __init__(self) -> None:
        self.frame: Frame | None = None
        self.owner: Any = None


SLOT: contextvars.ContextVar[Slot | None] = contextvars.ContextVar("joerl_codec", default=None)
get_slot = SLOT.get


def new_slot() -> Slot:
    """A slot of this greenlet's own, set in its context."""
    slot = Slot()
    SLOT.set(slot)
    return slot


def active_frame() -> Frame | None:
    """The frame running in this greenlet, or None."""
    slot = get_slot()
    if slot is None or slot.frame is None or slot.owner is not getcurrent():
        return None
    return slot.frame


def run_deserializer(frame: Frame, type_id: str, deserializer: Callable[[bytes], Any], data: bytes) -> Any:
    """``deserializer(data)`` with ``frame`` active.

    Raises:
        SerializationError: as the deserializer raised it.
        DecodeError: the deserializer raised anything else.
    """
    slot = get_slot()
    me = getcurrent()
    if slot is None or slot.owner is not None and slot.owner is not me:
        slot = new_slot()
    prev, prev_owner = slot.frame, slot.owner
    slot.frame, slot.owner = frame, me
    try:
        return deserializer(data)
    except SerializationError:
        raise
    except Exception as exc:
        raise DecodeError(f"the deserializer of {type_id!r} rejected its payload: {exc!r}") from exc
    finally:
        slot.frame, slot.owner = prev, prev_owner
