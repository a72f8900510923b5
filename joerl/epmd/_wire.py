"""What both port mapper protocols share: framing, limits, names and field checks.

Wire layout (every integer big-endian). Every request, Erlang's and joerl's,
has the same framing::

    Len:16 | Body            Len bytes; Body[0] is the opcode

``Len`` is 1..3057 for Erlang's requests (:data:`MAX_REQUEST_LEN`, as epmd's
``INBUF_SIZE - 3``) and 1..65535 for joerl's (:data:`MAX_EXT_LEN`). Names
are 1..255 bytes of UTF-8, no NUL and no ``@`` (:func:`check_name`; joerl's
extension also takes a full ``alive@host``, what a shared port mapper holds); Extra is
at most 1020 bytes (epmd's ``MAXSYMLEN``).

This module also holds the checks the extension applies to the fields of a
msgpack map (:func:`str_field` and friends, :func:`unpack_map`), because the
node record (:mod:`._node`) uses them too. Sans-IO: no socket, no gevent.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

from .._describe import describe
from ..errors import EpmdProtocolError, InvalidName

__all__ = [
    "DEFAULT_PORT",
    "MAX_DEPTH",
    "MAX_EXTRA",
    "MAX_EXT_LEN",
    "MAX_HOST_BYTES",
    "MAX_METADATA",
    "MAX_NAME_BYTES",
    "MAX_NAME_CHARS",
    "MAX_REQUEST_LEN",
    "NODE_TYPE_HIDDEN",
    "NODE_TYPE_NORMAL",
    "U16",
    "U32",
    "as_map",
    "bin_field",
    "bool_field",
    "check_name",
    "describe",
    "frame",
    "int_field",
    "metadata_field",
    "name_problem",
    "str_field",
    "unpack_map",
    "wire_name",
]

DEFAULT_PORT = 4369

NODE_TYPE_NORMAL = 77  # 'M'
NODE_TYPE_HIDDEN = 72  # 'H'

MAX_REQUEST_LEN = 3057  # epmd: INBUF_SIZE (3060) - 3
MAX_EXT_LEN = 0xFFFF
MAX_NAME_BYTES = 255
MAX_NAME_CHARS = 255  # what epmd checks for PORT_PLEASE2
MAX_EXTRA = 1020  # epmd: MAXSYMLEN
MAX_HOST_BYTES = 255
MAX_METADATA = 16 * 1024  # bytes of msgpack
MAX_DEPTH = 32  # nesting of metadata

U16 = 0xFFFF
U32 = 0xFFFFFFFF

# -- framing and names ---------------------------------------------------------


def frame(body: bytes) -> bytes:
    """``Len:16 | body``: one request on the wire."""
    return struct.pack(">H", len(body)) + body


def name_problem(name: object, host_ok: bool = False) -> str:
    """Why ``name`` cannot be registered, or ``""`` if it can (``host_ok``: ``alive@host`` too)."""
    if not isinstance(name, str):
        return f"must be a str, not {type(name).__name__}"
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not encodable as UTF-8"
    if not raw:
        return "is empty"
    if len(raw) > MAX_NAME_BYTES:
        return f"is {len(raw)} bytes of UTF-8, over the limit of {MAX_NAME_BYTES}"
    if "\0" in name:
        return "contains a NUL character"
    if not name.isprintable():
        bad = next(c for c in name if not c.isprintable())
        return (
            f"contains the control or unprintable character U+{ord(bad):04X} "
            "(it would forge lines in the NAMES listing)"
        )
    if "@" in name:
        if not host_ok:
            return "contains '@': give the alive name only, the part before '@'"
        alive, _, host = name.partition("@")
        if not alive or not host or "@" in host:
            return "must be alive@host with one '@' and both parts non-empty"
    return ""


def check_name(name: object, host_ok: bool = False) -> str:
    """Check that ``name`` can be registered and return it.

    A name is 1..255 bytes of UTF-8, printable (no NUL, newline or other
    control character: the NAMES reply is one line per name) and with no
    ``@`` (the ``@host`` part of a node name is not a host's port mapper's
    business), unless ``host_ok``: a shared port mapper holds full names.

    Raises:
        InvalidName: it cannot.
    """
    problem = name_problem(name, host_ok)
    if problem:
        raise InvalidName(name, problem)
    assert isinstance(name, str)
    return name


def wire_name(name: str, what: str) -> bytes:
    """The UTF-8 bytes of a name to look up or stop (looser than :func:`check_name`).

    Raises:
        InvalidName: empty, not a str, holds NUL, or not encodable.
    """
    if not isinstance(name, str) or not name or not name.isprintable():
        raise InvalidName(name, f"{what} needs a non-empty str without NUL or control characters")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidName(name, "is not encodable as UTF-8") from None
    return raw


# -- field checks for msgpack maps -------------------------------------------------

_MISSING: Any = object()


def as_map(value: object, what: str) -> dict[str, Any]:
    """``value`` if it is a map.

    Raises:
        EpmdProtocolError: it is not.
    """
    if not isinstance(value, dict):
        raise EpmdProtocolError(f"{what} must be a map, not {type(value).__name__}")
    return value


def _field(m: dict[str, Any], key: str, default: Any) -> Any:
    value = m.get(key, _MISSING)
    if value is _MISSING:
        if default is _MISSING:
            raise EpmdProtocolError(f"missing field {key!r}")
        return default
    return value


def str_field(m: dict[str, Any], key: str, default: Any = _MISSING) -> str:
    """Field ``key`` of ``m``, a str (``default`` if absent; required without one)."""
    value = _field(m, key, default)
    if not isinstance(value, str):
        raise EpmdProtocolError(f"field {key!r} must be a str, not {type(value).__name__}")
    return value


def int_field(m: dict[str, Any], key: str, top: int, default: Any = _MISSING) -> int:
    """Field ``key`` of ``m``, an int in ``0..top``."""
    value = _field(m, key, default)
    if type(value) is not int or not 0 <= value <= top:
        raise EpmdProtocolError(f"field {key!r} must be an int in 0..{top}, got {describe(value)}")
    return value


def bin_field(m: dict[str, Any], key: str, default: Any = _MISSING) -> bytes:
    """Field ``key`` of ``m``, a msgpack bin."""
    value = _field(m, key, default)
    if not isinstance(value, bytes):
        raise EpmdProtocolError(f"field {key!r} must be bin, not {type(value).__name__}")
    return value


def bool_field(m: dict[str, Any], key: str, default: Any = _MISSING) -> bool:
    """Field ``key`` of ``m``, a bool."""
    value = _field(m, key, default)
    if not isinstance(value, bool):
        raise EpmdProtocolError(f"field {key!r} must be a bool, not {type(value).__name__}")
    return value


def _plain(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise EpmdProtocolError(f"metadata nested deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return
    if isinstance(value, list):
        for item in value:
            _plain(item, depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise EpmdProtocolError("metadata map keys must be str")
            _plain(v, depth + 1)
        return
    raise EpmdProtocolError(f"metadata holds a {type(value).__name__}: only plain data is allowed")


def metadata_field(value: Any) -> dict[str, Any]:
    """``value`` if it is metadata: a map of plain data, at most :data:`MAX_DEPTH` deep."""
    if not isinstance(value, dict):
        raise EpmdProtocolError(f"metadata must be a map, not {type(value).__name__}")
    _plain(value, 0)
    return value


def unpack_map(data: bytes, what: str) -> dict[str, Any]:
    """Decode one msgpack map that has an ``"op"`` string.

    Raises:
        EpmdProtocolError: not msgpack, not a map, no op, or an extension type.
    """
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True, ext_hook=_refuse_ext)
    except EpmdProtocolError:
        raise
    except Exception as exc:  # msgpack raises many kinds: all mean "not msgpack"
        raise EpmdProtocolError(f"{what} is not valid msgpack: {exc}") from None
    m = as_map(value, what)
    if not isinstance(m.get("op"), str):
        raise EpmdProtocolError(f"{what} has no 'op' string")
    return m


def _refuse_ext(code: int, data: bytes) -> Any:
    raise EpmdProtocolError(f"msgpack extension type {code} is not allowed")
