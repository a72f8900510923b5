"""Why a message could not be encoded, and where: the error path of ``Codec.encode``.

Encoding runs in msgpack's C code, which knows no paths. When it fails, the
message is walked once, in Python, along the route msgpack took, to find the
value that failed (the one a ``default`` handler refused, by identity, or the
first one the codec cannot carry) and name it as ``msg['items'][3].handler``.
"""

from __future__ import annotations

import datetime
from typing import Any

from ..errors import BrokenMessageType, SerializationError
from ..pid import Pid, Ref
from ._interface import ISerializableMessage, not_serializable

_I64_MIN = -(1 << 63)
_U64_END = 1 << 64


class Refused(Exception):
    """Raised inside ``default``: ``value`` cannot be encoded (``reason``), or
    encoding it raised ``error``. ``Codec.encode`` adds the path."""

    def __init__(self, value: Any, reason: str = "", error: SerializationError | None = None) -> None:
        super().__init__(reason)
        self.value = value
        self.reason = reason
        self.error = error


def explain(msg: Any, exc: Exception, max_int_bytes: int) -> SerializationError:
    """The error to raise for ``exc``, which packing ``msg`` raised."""
    if isinstance(exc, Refused):
        found = _find(msg, exc.value, max_int_bytes)
        path = found[0] if found else ""
        err = exc.error
        if err is None:
            return not_serializable(type(exc.value), path, exc.reason)
        if isinstance(err, BrokenMessageType) and path and not err.path:
            return BrokenMessageType(err.value_type, err.reason, path)
        if path and type(err) is SerializationError:
            return SerializationError(f"{err} (at {path})")
        return err
    if isinstance(exc, SerializationError):
        return exc
    found = _find(msg, None, max_int_bytes)
    if found is not None:
        path, value, reason = found
        if reason is _CYCLE:
            return SerializationError(f"the message holds a reference cycle at {path}")
        return not_serializable(type(value), path, reason)
    if isinstance(exc, RecursionError) or "recursion limit" in str(exc):
        return SerializationError("the message nests too deeply to encode")
    return SerializationError(f"cannot encode the message: {exc!r}")


_CYCLE = "a reference cycle"
_ATOMS = frozenset({type(None), bool, float, bytes, bytearray, memoryview, Pid, Ref})


def _key_repr(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= 60 else text[:57] + "..."


def _find(root: Any, target: Any, max_int_bytes: int) -> tuple[str, Any, str] | None:
    """Where encoding fails in ``root``: the path to ``target`` if given (by
    identity), else to the first value the codec cannot encode, with a reason."""
    active: set[int] = set()

    def walk(value: Any, path: str) -> tuple[str, Any, str] | None:
        if target is not None and value is target:
            return (path, value, "")
        cls = value.__class__
        if cls in _ATOMS:
            return None
        if cls is str:
            if target is None:
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    return (path, value, "it holds a lone surrogate, which UTF-8 cannot carry")
            return None
        if cls is int:
            if target is None and not _I64_MIN <= value < _U64_END and (value.bit_length() + 8) // 8 > max_int_bytes:
                return (path, value, f"an int of {value.bit_length()} bits is over the {max_int_bytes}-byte limit")
            return None
        if cls is datetime.datetime:
            if target is None and value.tzinfo is None:
                return (path, value, "a naive datetime: give it a tzinfo (it arrives in UTC)")
            return None
        if cls is list or cls is tuple or cls is dict:
            if cls is dict:
                children = []
                for k, v in value.items():
                    children.append((f"{path}<key {_key_repr(k)}>", k))
                    children.append((f"{path}[{_key_repr(k)}]", v))
            else:
                children = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
        else:
            spec = cls.__dict__.get("__joerl_record__")
            if spec is not None and spec.cls is cls:
                children = [(f"{path}.{name}", getattr(value, name)) for name in spec.fields]
            elif ISerializableMessage.providedBy(value):
                return None
            else:
                return None if target is not None else (path, value, "")
        if id(value) in active:
            return (path, value, _CYCLE)
        active.add(id(value))
        for child_path, child in children:
            found = walk(child, child_path)
            if found is not None:
                return found
        active.discard(id(value))
        return None

    try:
        return walk(root, "msg")
    except RecursionError:
        return None
