"""Erlang's External Term Format: the encoder and the entry points (sans-IO).

Wire layout: a term is ``131 | Tag | Data`` (``131 | 80 | Size:32 |
zlib(Tag | Data)`` when compressed); all integers big-endian. The encoder
writes::

    atom        119 SMALL_ATOM_UTF8 (Len:8) or 118 ATOM_UTF8 (Len:16)
    int         97 SMALL_INTEGER (0..255), 98 INTEGER (s32),
                110 SMALL_BIG (n:8, sign:8, n bytes LE), 111 LARGE_BIG (n:32, ...)
    float       70 NEW_FLOAT (IEEE 754 double; NaN and infinities refused)
    tuple       104 SMALL_TUPLE (arity:8) / 105 LARGE_TUPLE (arity:32), elements
    list        106 NIL, 107 STRING (Len:16, bytes: a list of ints 0..255),
                108 LIST (Len:32, elements, tail)
    bytes       109 BINARY (Len:32)      BitString  77 BIT_BINARY (Len:32, Bits:8)
    dict        116 MAP (arity:32, K1, V1, ...)
    ErlangPid   88 NEW_PID (node, ID:32, Serial:32, Creation:32)
    ErlangRef   90 NEWER_REFERENCE (Len:16, node, Creation:32, Len words)
    Opaque      its tag and bytes unchanged

The decoder (``Decoder``, in ``decoder.py``) also reads the Latin-1 atoms
(100, 115), the old pids, references and floats (103, 114, 101, 99) and
compressed terms (80). The mapping between Python and Erlang values, and its
lossy corners, is docs/erlang.md's table.

This module owns :func:`encode` and :func:`decode` (the limits are ``limits.py``'s).
"""

from __future__ import annotations

import math
import struct
from typing import Any

from .decoder import Decoder
from .limits import DEFAULT_LIMITS, EtfLimits
from .terms import (
    Atom,
    BitString,
    ErlangPid,
    ErlangRef,
    FrozenList,
    FrozenMap,
    ImproperList,
    Opaque,
    TermEncodeError,
)

__all__ = ["EtfLimits", "decode", "encode", "encode_body"]


_S32_MIN, _S32_MAX = -(1 << 31), (1 << 31) - 1
_double = struct.Struct(">Bd")
_pid_tail = struct.Struct(">III")
_u32 = struct.Struct(">I")
_int_ext = struct.Struct(">Bi")


def encode(term: Any, *, none_atom: str = "undefined", max_depth: int = DEFAULT_LIMITS.max_depth) -> bytes:
    """Encode ``term`` as a standalone ETF term (with its 131 version byte).

    Args:
        term: the value (see docs/erlang.md for the mapping).
        none_atom: the atom ``None`` becomes (``"nil"`` for Elixir peers).
        max_depth: deepest nesting of tuples, lists and maps accepted.

    Returns:
        ``131 | Tag | Data``, what ``erlang:binary_to_term/1`` reads.

    Raises:
        TermEncodeError: a value has no Erlang form (NaN, an infinity, an
            unsupported type, an atom over 255 characters) or nests too deep.
    """
    out = bytearray(b"\x83")
    _Encoder(out, Atom(none_atom), max_depth).term(term, 0)
    return bytes(out)


def encode_body(term: Any, *, none_atom: str = "undefined") -> bytes:
    """:func:`encode` without the version byte (``Tag | Data``)."""
    return encode(term, none_atom=none_atom)[1:]


def decode(data: bytes | bytearray | memoryview, **options: Any) -> Any:
    """Decode one standalone ETF term that fills ``data`` exactly.

    Args:
        data: ``131 | Tag | Data``.
        **options: :class:`~joerl.erlang.decoder.Decoder`'s keyword arguments
            (``limits``, ``bools``, ``none_atom``, ``strings``, ``binaries``).

    Returns:
        The Python value.

    Raises:
        TermDecodeError: malformed, truncated, followed by extra bytes, or
            over a limit.
    """
    return Decoder(**options).decode(data)


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TermEncodeError(f"{what} holds a character UTF-8 cannot encode: {exc.reason}") from None


class _Encoder:
    __slots__ = ("out", "none_atom", "max_depth")

    def __init__(self, out: bytearray, none_atom: Atom, max_depth: int) -> None:
        self.out = out
        self.none_atom = none_atom
        self.max_depth = max_depth

    def atom(self, name: str) -> None:
        raw = _utf8(name, "an atom")
        if len(raw) <= 255:
            self.out += bytes((119, len(raw)))
        else:
            self.out += bytes((118,)) + len(raw).to_bytes(2, "big")
        self.out += raw

    def term(self, t: Any, depth: int) -> None:  # noqa: C901 (one dispatch on the type)
        out = self.out
        cls = t.__class__
        if cls is Atom:
            self.atom(t.name)
        elif cls is bool:
            self.atom("true" if t else "false")
        elif t is None:
            self.atom(self.none_atom.name)
        elif isinstance(t, int):
            self.integer(int(t))
        elif isinstance(t, float):
            if not math.isfinite(t):
                raise TermEncodeError(f"{t!r} has no Erlang form: Erlang floats are finite")
            out += _double.pack(70, t)
        elif isinstance(t, (bytes, bytearray, memoryview)):
            raw = bytes(t)
            out += b"m" + _u32.pack(len(raw)) + raw
        elif isinstance(t, str):
            raw = _utf8(t, "a str")
            out += b"m" + _u32.pack(len(raw)) + raw
        elif depth >= self.max_depth:
            raise TermEncodeError(f"the term nests deeper than {self.max_depth} levels")
        elif isinstance(t, tuple):
            n = len(t)
            out += bytes((104, n)) if n <= 255 else b"i" + _u32.pack(n)
            for x in t:
                self.term(x, depth + 1)
        elif isinstance(t, (list, FrozenList)):
            self.list(list(t), depth)
        elif isinstance(t, (dict, FrozenMap)):
            out += b"t" + _u32.pack(len(t))
            for k, v in t.items():
                self.term(k, depth + 1)
                self.term(v, depth + 1)
        elif cls is ImproperList:
            out += b"l" + _u32.pack(len(t.items))
            for x in t.items:
                self.term(x, depth + 1)
            self.term(t.tail, depth + 1)
        elif cls is ErlangPid:
            out += b"X"
            self.atom(t.node.name)
            out += _pid_tail.pack(t.id, t.serial, t.creation)
        elif cls is ErlangRef:
            out += b"Z" + len(t.ids).to_bytes(2, "big")
            self.atom(t.node.name)
            out += struct.pack(f">I{len(t.ids)}I", t.creation, *t.ids)
        elif cls is BitString:
            out += b"M" + _u32.pack(len(t.data)) + bytes((t.bits,)) + t.data
        elif cls is Opaque:
            out += bytes((t.tag,)) + t.raw
        else:
            raise TermEncodeError(f"no Erlang term for a value of type {cls.__module__}.{cls.__qualname__}")

    def integer(self, n: int) -> None:
        out = self.out
        if 0 <= n <= 255:
            out += bytes((97, n))
        elif _S32_MIN <= n <= _S32_MAX:
            out += _int_ext.pack(98, n)
        else:
            mag = abs(n)
            raw = mag.to_bytes((mag.bit_length() + 7) // 8, "little")
            sign = 1 if n < 0 else 0
            if len(raw) <= 255:
                out += bytes((110, len(raw), sign))
            else:
                out += b"o" + _u32.pack(len(raw)) + bytes((sign,))
            out += raw

    def list(self, items: list[Any], depth: int) -> None:
        out = self.out
        n = len(items)
        if n == 0:
            out += b"j"
        elif n <= 0xFFFF and all(x.__class__ is int and 0 <= x <= 255 for x in items):
            out += b"k" + n.to_bytes(2, "big") + bytes(items)  # STRING_EXT, as Erlang writes it
        else:
            out += b"l" + _u32.pack(n)
            for x in items:
                self.term(x, depth + 1)
            out += b"j"
