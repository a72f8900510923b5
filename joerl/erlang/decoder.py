"""The External Term Format decoder, with limits (sans-IO).

This module owns :class:`Decoder`: it reads every tag a peer may send over
the distribution in the ``p`` (pass-through) format, and ``term_to_binary``
output, compressed or not (the layouts are ``etf.py``'s docstring, and
``docs/erlang.md`` lists what is supported). Every malformed, truncated or
oversized input raises :class:`~joerl.erlang.terms.TermDecodeError` and
nothing else: never ``IndexError``, ``struct.error`` or ``RecursionError``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import Any

from .limits import DEFAULT_LIMITS, VERSION, EtfLimits
from .terms import (
    Atom,
    BitString,
    ErlangPid,
    ErlangRef,
    FrozenList,
    FrozenMap,
    ImproperList,
    Opaque,
    TermDecodeError,
)

__all__ = ["Decoder"]

_u16 = struct.Struct(">H")
_u32 = struct.Struct(">I")
_s32 = struct.Struct(">i")
_f64 = struct.Struct(">d")

_STRINGS = ("list", "str")
_CACHE_SIZE = 4096
_MISSING = object()
_BINARIES = ("bytes", "str")


class Decoder:
    """Decodes ETF terms under :class:`~joerl.erlang.limits.EtfLimits`.

    Args:
        limits: the bounds (depth, size, atom length, container length, bignums).
        bools: decode the atoms ``true`` and ``false`` as ``True``/``False``
            (else as :class:`Atom`).
        none_atom: the atom decoded as ``None`` (``"undefined"``; ``"nil"``
            for Elixir peers; None: no atom is).
        strings: ``"list"`` (a ``STRING_EXT`` is a list of ints, as Erlang
            sees it) or ``"str"`` (a Latin-1 ``str``).
        binaries: ``"bytes"``, or ``"str"`` (a binary that is valid UTF-8
            becomes a ``str``; others stay ``bytes``).

    Raises:
        ValueError: an unknown option value.
    """

    def __init__(
        self,
        limits: EtfLimits = DEFAULT_LIMITS,
        *,
        bools: bool = True,
        none_atom: str | None = "undefined",
        strings: str = "list",
        binaries: str = "bytes",
    ) -> None:
        if strings not in _STRINGS:
            raise ValueError(f"strings must be one of {_STRINGS}, got {strings!r}")
        if binaries not in _BINARIES:
            raise ValueError(f"binaries must be one of {_BINARIES}, got {binaries!r}")
        self.limits = limits
        self.bools = bools
        self.none_atom = none_atom
        self.strings = strings
        self.binaries = binaries
        # Atoms and pids repeat from frame to frame (node names, tags, senders):
        # their decoded values by their exact bytes (bounded; cleared when full).
        self._atoms: dict[bytes, Any] = {}
        self._nodes: dict[bytes, Atom] = {}
        self._pids: dict[bytes, ErlangPid] = {}

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        """Decode one term (``131 | Tag | Data``) that fills ``data`` exactly.

        Raises:
            TermDecodeError: see the module docstring; also for extra bytes
                after the term.
        """
        term, end = self.decode_prefix(data)
        if end != len(data):
            raise TermDecodeError(f"{len(data) - end} extra bytes after the term", end)
        return term

    def decode_prefix(self, data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[Any, int]:
        """Decode one term starting at ``offset``; return it and where it ends.

        For a sequence of terms (a ``p`` frame: control term, then message).

        Raises:
            TermDecodeError: see the module docstring.
        """
        buf = bytes(data)
        if len(buf) - offset > self.limits.max_bytes:
            raise TermDecodeError(f"input of {len(buf) - offset} bytes exceeds max_bytes={self.limits.max_bytes}")
        if offset >= len(buf):
            raise TermDecodeError("truncated: no term", offset)
        if buf[offset] != VERSION:
            raise TermDecodeError(f"a term starts with the version byte 131, not {buf[offset]}", offset)
        if offset + 1 < len(buf) and buf[offset + 1] == 80:
            return self._compressed(buf, offset + 2)
        reader = _Reader(self, buf, offset + 1)
        term = reader.term(0, False)
        return term, reader.pos

    def _compressed(self, buf: bytes, pos: int) -> tuple[Any, int]:
        if pos + 4 > len(buf):
            raise TermDecodeError("truncated compressed term", pos)
        (size,) = _u32.unpack_from(buf, pos)
        if size > self.limits.max_bytes:
            raise TermDecodeError(f"compressed term of {size} bytes exceeds max_bytes={self.limits.max_bytes}", pos)
        z = zlib.decompressobj()
        try:
            raw = z.decompress(buf[pos + 4 :], size + 1)
        except zlib.error as exc:
            raise TermDecodeError(f"bad zlib data in a compressed term: {exc}", pos + 4) from None
        if len(raw) != size or not z.eof:
            raise TermDecodeError(f"compressed term: {len(raw)} bytes (or more) inflated, {size} announced", pos)
        reader = _Reader(self, raw, 0)
        term = reader.term(0, False)
        if reader.pos != size:
            raise TermDecodeError(f"compressed term: {size - reader.pos} extra bytes inside", pos)
        return term, len(buf) - len(z.unused_data)


class _Reader:
    """One pass over one buffer: a position and the decoder's options."""

    __slots__ = ("d", "limits", "buf", "pos")

    def __init__(self, d: Decoder, buf: bytes, pos: int) -> None:
        self.d = d
        self.limits = d.limits
        self.buf = buf
        self.pos = pos

    def take(self, n: int) -> bytes:
        pos = self.pos
        if pos + n > len(self.buf):
            raise TermDecodeError(f"truncated: {n} bytes needed, {len(self.buf) - pos} left", pos)
        self.pos = pos + n
        return self.buf[pos : pos + n]

    def u8(self) -> int:
        pos = self.pos
        if pos >= len(self.buf):
            raise TermDecodeError("truncated: 1 byte needed, 0 left", pos)
        self.pos = pos + 1
        return self.buf[pos]

    def u16(self) -> int:
        return int(_u16.unpack(self.take(2))[0])

    def u32(self) -> int:
        return int(_u32.unpack(self.take(4))[0])

    def count(self, n: int, per: int, what: str) -> int:
        if n > self.limits.max_container_len:
            raise TermDecodeError(f"{what} of {n} exceeds max_container_len={self.limits.max_container_len}", self.pos)
        if n * per > len(self.buf) - self.pos:
            raise TermDecodeError(f"truncated: {what} of {n} cannot fit in {len(self.buf) - self.pos} bytes", self.pos)
        return n

    def term(self, depth: int, frozen: bool) -> Any:
        tag = self.u8()
        handler = _HANDLERS.get(tag)
        if handler is None:
            raise TermDecodeError(f"unknown or unsupported term tag {tag}", self.pos - 1)
        return handler(self, tag, depth, frozen)

    def nested(self, depth: int) -> int:
        if depth >= self.limits.max_depth:
            raise TermDecodeError(f"the term nests deeper than max_depth={self.limits.max_depth}", self.pos)
        return depth + 1

    # -- atoms ----------------------------------------------------------------

    def atom_text(self, tag: int) -> str:
        at = self.pos - 1
        size = self.u8() if tag in (115, 119) else self.u16()
        raw = self.take(size)
        try:
            text = raw.decode("utf-8" if tag in (118, 119) else "latin-1")
        except UnicodeDecodeError:
            raise TermDecodeError("an atom is not valid UTF-8", at) from None
        if len(text) > self.limits.max_atom_chars:
            raise TermDecodeError(f"atom of {len(text)} characters exceeds max_atom_chars", at)
        return text

    def node(self) -> Atom:
        buf, pos = self.buf, self.pos
        nodes = self.d._nodes
        if pos + 1 < len(buf) and buf[pos] == 119:  # SMALL_ATOM_UTF8: the usual node name
            key = buf[pos : pos + 2 + buf[pos + 1]]
            hit = nodes.get(key)
            if hit is not None:
                self.pos = pos + len(key)
                return hit
        tag = self.u8()
        if tag not in (100, 115, 118, 119):
            raise TermDecodeError(f"a node name must be an atom, got tag {tag}", self.pos - 1)
        atom = Atom(self.atom_text(tag))
        if tag == 119:
            if len(nodes) >= _CACHE_SIZE:
                nodes.clear()
            nodes[buf[pos : self.pos]] = atom
        return atom

    def atom(self, tag: int, depth: int, frozen: bool) -> Any:
        start = self.pos
        cache = self.d._atoms
        if tag == 119 and start < len(self.buf):
            key = self.buf[start : start + 1 + self.buf[start]]
            value = cache.get(key, _MISSING)
            if value is not _MISSING and len(key) == 1 + self.buf[start]:
                self.pos = start + len(key)
                return value
        text = self.atom_text(tag)
        if self.d.bools and text in ("true", "false"):
            value = text == "true"
        elif text == self.d.none_atom:
            value = None
        else:
            value = Atom(text)
        if tag == 119:
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[self.buf[start : self.pos]] = value
        return value

    # -- numbers ---------------------------------------------------------------

    def small_int(self, tag: int, depth: int, frozen: bool) -> int:
        return self.u8()

    def int32(self, tag: int, depth: int, frozen: bool) -> int:
        return int(_s32.unpack(self.take(4))[0])

    def big(self, tag: int, depth: int, frozen: bool) -> int:
        n = self.u8() if tag == 110 else self.u32()
        if n > self.limits.max_big_bytes:
            raise TermDecodeError(f"bignum of {n} bytes exceeds max_big_bytes={self.limits.max_big_bytes}", self.pos)
        sign = self.u8()
        if sign > 1:
            raise TermDecodeError(f"bignum sign byte must be 0 or 1, got {sign}", self.pos - 1)
        mag = int.from_bytes(self.take(n), "little")
        return -mag if sign else mag

    def new_float(self, tag: int, depth: int, frozen: bool) -> float:
        return float(_f64.unpack(self.take(8))[0])

    def old_float(self, tag: int, depth: int, frozen: bool) -> float:
        at = self.pos
        text = self.take(31).split(b"\x00", 1)[0]
        try:
            value = float(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise TermDecodeError("FLOAT_EXT is not a number", at) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise TermDecodeError("FLOAT_EXT is not finite", at)
        return value

    # -- containers --------------------------------------------------------------

    def tuple_(self, tag: int, depth: int, frozen: bool) -> tuple[Any, ...]:
        n = self.count(self.u8() if tag == 104 else self.u32(), 1, "tuple arity")
        inner = self.nested(depth)
        return tuple([self.term(inner, frozen) for _ in range(n)])

    def nil(self, tag: int, depth: int, frozen: bool) -> Any:
        return FrozenList() if frozen else []

    def string(self, tag: int, depth: int, frozen: bool) -> Any:
        raw = self.take(self.u16())
        if self.d.strings == "str":
            return raw.decode("latin-1")
        return FrozenList(raw) if frozen else list(raw)

    def list_(self, tag: int, depth: int, frozen: bool) -> Any:
        n = self.count(self.u32(), 1, "list length")
        inner = self.nested(depth)
        items = [self.term(inner, frozen) for _ in range(n)]
        tail = self.term(inner, frozen)
        if isinstance(tail, (list, FrozenList)):  # [a | [b]] is [a, b]
            items += list(tail)
        elif isinstance(tail, ImproperList):
            items += tail.items
            return ImproperList(tuple(items), tail.tail)
        elif isinstance(tail, str) and self.d.strings == "str":
            items += [ord(c) for c in tail]
        else:
            if not items:
                raise TermDecodeError("a list of length 0 with a tail that is not []", self.pos)
            return ImproperList(tuple(items), tail)
        return FrozenList(items) if frozen else items

    def map_(self, tag: int, depth: int, frozen: bool) -> Any:
        at = self.pos - 1
        n = self.count(self.u32(), 2, "map arity")
        inner = self.nested(depth)
        out: dict[Any, Any] = {}
        for _ in range(n):
            key = self.term(inner, True)
            value = self.term(inner, frozen)
            try:
                out[key] = value
            except TypeError:
                raise TermDecodeError("a map key holds a value that cannot be hashed", self.pos) from None
        if len(out) != n:
            raise TermDecodeError("a map holds the same key twice", at)
        return FrozenMap(out) if frozen else out

    # -- binaries ------------------------------------------------------------------

    def binary(self, tag: int, depth: int, frozen: bool) -> Any:
        raw = self.take(self.u32())
        if self.d.binaries == "str":
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw
        return raw

    def bit_binary(self, tag: int, depth: int, frozen: bool) -> Any:
        at = self.pos - 1
        size = self.u32()
        bits = self.u8()
        raw = self.take(size)
        if size == 0:
            if bits != 0:
                raise TermDecodeError(f"an empty bit string with {bits} bits in its last byte", at)
            return b""
        if not 1 <= bits <= 8:
            raise TermDecodeError(f"bits in the last byte must be 1..8, got {bits}", at)
        return raw if bits == 8 else BitString(raw, bits)

    # -- identifiers ---------------------------------------------------------------

    def pid(self, tag: int, depth: int, frozen: bool) -> ErlangPid:
        buf, start = self.buf, self.pos
        cache = self.d._pids
        if tag == 88 and start + 1 < len(buf) and buf[start] == 119:
            end = start + 2 + buf[start + 1] + 12
            hit = cache.get(buf[start:end]) if end <= len(buf) else None
            if hit is not None:
                self.pos = end
                return hit
        node = self.node()
        ident, serial = self.u32(), self.u32()
        creation = self.u32() if tag == 88 else self.u8()
        pid = ErlangPid(node, ident, serial, creation)
        if tag == 88:
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[buf[start : self.pos]] = pid
        return pid

    def newer_ref(self, tag: int, depth: int, frozen: bool) -> ErlangRef:
        at = self.pos - 1
        n = self.u16()
        if not 1 <= n <= 5:
            raise TermDecodeError(f"a reference holds 1..5 words, got {n}", at)
        node = self.node()
        creation = self.u32() if tag == 90 else self.u8()
        ids = struct.unpack(f">{n}I", self.take(4 * n))
        return ErlangRef(node, creation, ids)

    def old_ref(self, tag: int, depth: int, frozen: bool) -> ErlangRef:
        node = self.node()
        ident = self.u32()
        return ErlangRef(node, self.u8(), (ident,))

    # -- opaque: ports, funs, exports ---------------------------------------------------

    def port(self, tag: int, depth: int, frozen: bool) -> Opaque:
        start = self.pos
        self.node()
        self.take({89: 8, 120: 12, 102: 5}[tag])
        return Opaque(tag, self.buf[start : self.pos])

    def export(self, tag: int, depth: int, frozen: bool) -> Opaque:
        start = self.pos
        inner = self.nested(depth)
        module, function, arity = (self.term(inner, True) for _ in range(3))
        if not (_is_atomish(module) and _is_atomish(function) and isinstance(arity, int) and 0 <= arity <= 255):
            raise TermDecodeError("EXPORT_EXT must hold an atom, an atom and an arity 0..255", start - 1)
        return Opaque(tag, self.buf[start : self.pos])

    def new_fun(self, tag: int, depth: int, frozen: bool) -> Opaque:
        start = self.pos
        size = self.u32()
        if size < 4 + 1 + 16 + 4 + 4:
            raise TermDecodeError(f"NEW_FUN_EXT of {size} bytes is too short", start - 1)
        self.take(size - 4)
        return Opaque(tag, self.buf[start : self.pos])

    def old_fun(self, tag: int, depth: int, frozen: bool) -> Opaque:
        start = self.pos
        free = self.count(self.u32(), 1, "free variables")
        inner = self.nested(depth)
        for _ in range(4 + free):  # Pid, Module, Index, Uniq, free variables
            self.term(inner, True)
        return Opaque(tag, self.buf[start : self.pos])

    def cache_ref(self, tag: int, depth: int, frozen: bool) -> Any:
        raise TermDecodeError("ATOM_CACHE_REF without a distribution header: the atom cache is not supported", self.pos)


def _is_atomish(value: Any) -> bool:
    return isinstance(value, (Atom, bool)) or value is None


_Handler = Callable[[_Reader, int, int, bool], Any]
_HANDLERS: dict[int, _Handler] = {
    97: _Reader.small_int,
    98: _Reader.int32,
    110: _Reader.big,
    111: _Reader.big,
    70: _Reader.new_float,
    99: _Reader.old_float,
    100: _Reader.atom,
    115: _Reader.atom,
    118: _Reader.atom,
    119: _Reader.atom,
    104: _Reader.tuple_,
    105: _Reader.tuple_,
    106: _Reader.nil,
    107: _Reader.string,
    108: _Reader.list_,
    116: _Reader.map_,
    109: _Reader.binary,
    77: _Reader.bit_binary,
    88: _Reader.pid,
    103: _Reader.pid,
    90: _Reader.newer_ref,
    114: _Reader.newer_ref,
    101: _Reader.old_ref,
    89: _Reader.port,
    120: _Reader.port,
    102: _Reader.port,
    113: _Reader.export,
    112: _Reader.new_fun,
    117: _Reader.old_fun,
    82: _Reader.cache_ref,
}
