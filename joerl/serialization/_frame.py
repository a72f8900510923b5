"""ACTIVE: what is running a user's ``serialize()`` or deserializer, so that
``encode``, ``decode``, ``pid_to_bytes``, ``active_codec`` ... inside it use
the right codec (``_active.py`` reads it).

A frame is ``(codec, decoder)`` while a ``Codec`` runs one (``decoder``: the
decode that met the registered message, else None), or ``(registry, None)``
while ``MessageRegistry.deserialize`` runs one: the codec is then the
registry's plain (hook-less) codec, made when first asked for. This module
sits below both, so that neither imports the other to run a deserializer.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from ..errors import DecodeError, SerializationError

Frame = tuple[Any, Any]

ACTIVE: contextvars.ContextVar[Frame | None] = contextvars.ContextVar("joerl_codec", default=None)


def run_deserializer(frame: Frame, type_id: str, deserializer: Callable[[bytes], Any], data: bytes) -> Any:
    """``deserializer(data)`` with ``frame`` active.

    Raises:
        SerializationError: as the deserializer raised it.
        DecodeError: the deserializer raised anything else.
    """
    token = ACTIVE.set(frame)
    try:
        return deserializer(data)
    except SerializationError:
        raise
    except Exception as exc:
        raise DecodeError(f"the deserializer of {type_id!r} rejected its payload: {exc!r}") from exc
    finally:
        ACTIVE.reset(token)
