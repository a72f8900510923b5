"""The codec that is running a user's ``serialize()`` or deserializer, and the
helpers hand-written serializers use through it.

``pid_to_bytes`` inside a ``serialize()`` applies the sending node's pid hook;
``pid_from_bytes`` inside a deserializer applies the receiving node's. Outside
a codec they apply none, and ``encode``/``decode`` use a plain codec on the
default registry.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from ..errors import DecodeError, SerializationError
from ..pid import Pid, Ref
from ._codec import Codec
from ._explain import Refused
from ._frame import active_frame, get_slot, getcurrent
from ._interface import not_serializable
from ._registry import MessageRegistry, default_registry
from ._wire import IDENT

_plain = threading.local()  # .codecs: registry -> its plain Codec, per thread


def active_codec() -> Codec | None:
    """The codec running the current ``serialize()`` or deserializer, if any."""
    frame = active_frame()
    return None if frame is None else _frame_codec(frame[0])


def plain_codec(registry: MessageRegistry) -> Codec:
    """A hook-less codec bound to ``registry`` (one per registry and thread)."""
    codecs: weakref.WeakKeyDictionary[MessageRegistry, Codec] | None = getattr(_plain, "codecs", None)
    if codecs is None:
        codecs = _plain.codecs = weakref.WeakKeyDictionary()
    codec = codecs.get(registry)
    if codec is None:
        codec = codecs[registry] = Codec(registry)
    return codec


def current_codec() -> Codec:
    """The active codec, else the default registry's plain codec."""
    frame = active_frame()
    if frame is None:
        return plain_codec(default_registry())
    runner = frame[0]
    return runner if runner.__class__ is Codec else _frame_codec(runner)


def _frame_codec(runner: Codec | MessageRegistry) -> Codec:
    # A frame holds the codec, or the registry whose deserialize() runs (see _frame.py).
    return plain_codec(runner) if isinstance(runner, MessageRegistry) else runner


def encode(value: Any) -> bytes:
    """Encode ``value`` with the active codec (inside a ``serialize()``), else
    with a plain codec on the default registry. See ``Codec.encode``."""
    return current_codec().encode(value)


def decode(data: bytes | bytearray | memoryview) -> Any:
    """Decode with the active codec (inside a deserializer), else with a plain
    codec on the default registry. See ``Codec.decode``."""
    return current_codec().decode(data)


def pid_to_bytes(pid: Pid) -> bytes:
    """The 16-byte form of ``pid`` for hand-written serializers (node u32, id
    u64, creation u32, big-endian), mapped by the active codec's ``encode_pid``."""
    slot = get_slot()  # (_frame.active_frame, inline: the common case costs one call per pid)
    if slot is not None and slot.frame is not None and pid.__class__ is Pid and slot.owner is getcurrent():
        codec = slot.frame[0]
        if codec.__class__ is Codec:
            hit = codec.idents.pid_out.get(id(pid))
            if hit is not None and hit[0] is pid:
                return hit[1][1]  # type: ignore[no-any-return]
    return _ident_to_bytes(pid, Pid)


def ref_to_bytes(ref: Ref) -> bytes:
    """As ``pid_to_bytes``, for a Ref."""
    return _ident_to_bytes(ref, Ref)


def pid_from_bytes(data: bytes | bytearray | memoryview) -> Pid:
    """Inverse of ``pid_to_bytes`` (mapped by the active codec's ``decode_pid``).

    Raises:
        DecodeError: ``data`` is not 16 bytes.
    """
    slot = get_slot()  # (_frame.active_frame, inline: the common case costs one call per pid)
    if slot is not None and slot.frame is not None and slot.owner is getcurrent():
        codec = slot.frame[0]
        if codec.__class__ is Codec:
            pid = codec.idents.pid_in.get(data) if data.__class__ is bytes else None
            if pid is not None:
                return pid
    return _ident_from_bytes(data, Pid)  # type: ignore[no-any-return]


def ref_from_bytes(data: bytes | bytearray | memoryview) -> Ref:
    """Inverse of ``ref_to_bytes``."""
    return _ident_from_bytes(data, Ref)  # type: ignore[no-any-return]


def _ident_to_bytes(value: object, kind: type[Pid] | type[Ref]) -> bytes:
    if value.__class__ is not kind:
        raise not_serializable(type(value), "", f"expected a {kind.__name__}")
    ident: Any = value
    frame = active_frame()
    if frame is None:
        return IDENT.pack(ident.node, ident.id, ident.creation)
    codec = frame[0]
    idents = (codec if codec.__class__ is Codec else _frame_codec(codec)).idents
    try:
        ext = idents.enc_pid(ident) if kind is Pid else idents.enc_ref(ident)
    except Refused as exc:
        raise (exc.error or SerializationError(exc.reason)) from exc.__cause__
    return ext[1]  # type: ignore[no-any-return]


def _ident_from_bytes(data: bytes | bytearray | memoryview, kind: Any) -> Any:
    if data.__class__ is not bytes:
        if not isinstance(data, (bytearray, memoryview)):
            raise DecodeError(f"a {kind.__name__} is read from bytes, not {type(data).__name__}")
        data = bytes(data)
    if len(data) != 16:
        raise DecodeError(f"a {kind.__name__} takes 16 bytes, not {len(data)}")
    frame = active_frame()
    if frame is None:
        return kind._unchecked(*IDENT.unpack(data))
    codec = frame[0]
    idents = (codec if codec.__class__ is Codec else _frame_codec(codec)).idents
    if kind is Pid:
        pid = idents.pid_in.get(data)
        return pid if pid is not None else idents.new_pid(data)
    ref = idents.ref_in.get(data)
    return ref if ref is not None else idents.new_ref(data)
