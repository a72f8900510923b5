"""The ext types joerl adds to msgpack, and the pure helpers that build and
read them (the layout is in the package docstring).

Nothing here knows a codec, a registry or a hook: these are the bytes.
"""

from __future__ import annotations

import operator
import struct
from typing import Any

from msgpack import ExtType

from ..errors import DecodeError
from ._interface import MAX_TYPE_ID_BYTES

EXT_PID = 1
EXT_REF = 2
EXT_TUPLE = 3
EXT_MESSAGE = 4
EXT_BIGINT = 5
EXT_RECORD = 6

IDENT = struct.Struct(">IQI")  # node, id, creation
RECORD_VERSION = struct.Struct(">I")

_new_tuple = tuple.__new__


def make_ext(code: int, data: bytes) -> ExtType:
    """An ``ExtType`` without ``ExtType.__new__``'s checks (ours are valid by construction)."""
    return _new_tuple(ExtType, (code, data))


# Ext 4's payload (len u8 | type_id | serialize() bytes) is read in the codec's
# decode path itself (Codec._dec_message), where a call per message counts.


def ext_head(code: int, size: int) -> bytes:
    """The header msgpack writes before an ext of ``size`` bytes (fixext 1, 2,
    4, 8, 16; else ext 8, 16, 32), its type byte included: a message that is
    one ext is ``ext_head(code, len(data)) + data``, the bytes ``packb`` makes."""
    if size in (1, 2, 4, 8, 16):
        return bytes((0xD4 + size.bit_length() - 1, code))
    if size <= 0xFF:
        return bytes((0xC7, size, code))
    if size <= 0xFFFF:
        return b"\xc8" + size.to_bytes(2, "big") + bytes((code,))
    return b"\xc9" + size.to_bytes(4, "big") + bytes((code,))


#: ``ext_head(EXT_MESSAGE, n)`` for n < 256.
EXT4_HEADS = tuple(ext_head(EXT_MESSAGE, n) for n in range(256))


TUPLE_EXT = make_ext(EXT_TUPLE, b"")


class TupleMark:
    """What ext 3 decodes to until the enclosing array becomes a tuple."""

    __slots__ = ()


TUPLE_MARK = TupleMark()


class RecordHead:
    """What ext 6 decodes to until the enclosing array becomes a record."""

    __slots__ = ("type_id", "version")

    def __init__(self, type_id: str, version: int) -> None:
        self.type_id = type_id
        self.version = version


def enc_tuple(t: tuple[Any, ...]) -> list[Any]:
    """A tuple's array: ``[ext3, item0, item1, ...]``."""
    return [TUPLE_EXT, *t]


def enc_bigint(n: int, max_bytes: int) -> ExtType | None:
    """Ext 5 for ``n`` (shortest two's complement), or None if over ``max_bytes``."""
    size = (n.bit_length() + 8) // 8  # sign bit included
    if size > max_bytes:
        return None
    return make_ext(EXT_BIGINT, n.to_bytes(size, "big", signed=True))


def dec_bigint(data: bytes, max_bytes: int) -> int:
    """The int in an ext 5 payload.

    Raises:
        DecodeError: empty, or longer than ``max_bytes``.
    """
    if not 0 < len(data) <= max_bytes:
        raise DecodeError(f"an int of {len(data)} bytes (limit {max_bytes})")
    return int.from_bytes(data, "big", signed=True)


def dec_head(data: bytes) -> RecordHead:
    """The record head in an ext 6 payload.

    Raises:
        DecodeError: its size is wrong, or its type id is not UTF-8.
    """
    if not 4 < len(data) <= 4 + MAX_TYPE_ID_BYTES:
        raise DecodeError(f"a record head of {len(data)} bytes")
    (version,) = RECORD_VERSION.unpack_from(data)
    try:
        type_id = data[4:].decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("a record type id that is not UTF-8") from None
    return RecordHead(type_id, version)


# A map of 16 pairs or more takes at least 35 bytes (header 3, and 16 keys and values).
MIN_BIG_MAP = 35
# Most keys of one map that may share a hash with another key. A peer can make tuples,
# big ints and records collide at will (str and bytes hashes are salted per process),
# and n such keys cost a dict n**2/2 comparisons to build.
_MAX_SHARED_HASHES = 64
_first = operator.itemgetter(0)


def checked_dict(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """``dict(pairs)``, unless many keys share hashes (a hash-flooding attempt)."""
    if len(pairs) > 15 and len(pairs) - len(set(map(hash, map(_first, pairs)))) > _MAX_SHARED_HASHES:
        raise DecodeError(f"a map of {len(pairs)} pairs whose keys share hashes (hash flooding?)")
    return dict(pairs)
