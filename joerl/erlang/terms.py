"""Python values for Erlang terms that Python has no type for (pure; no IO).

This module owns the value types of the External Term Format codec
(``etf.py``) and the errors it raises:

=====================  ==========================================================
Erlang                 Python
=====================  ==========================================================
atom                   :class:`Atom` (never a plain ``str``; ``true``/``false``
                       decode to ``bool``, ``undefined`` to ``None``: see
                       docs/erlang.md)
pid                    :class:`ErlangPid` (node atom, 32-bit ID and Serial,
                       32-bit creation); a joerl :class:`~joerl.pid.Pid` maps
                       to one losslessly (:func:`erlang_pid` / :func:`joerl_pid`)
reference              :class:`ErlangRef` (node atom, creation, 1..5 words)
improper list          :class:`ImproperList` (``[a, b | Tail]``)
bit string             :class:`BitString` (a binary whose last byte is partial)
fun, export, port      :class:`Opaque` (its tag and bytes, sent back unchanged)
list/map as a map key  :class:`FrozenList` / :class:`FrozenMap` (hashable)
=====================  ==========================================================

Every type here is immutable and hashable (when what it holds is), and
compares equal only to its own kind: ``Atom("a") != "a"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import TermDecodeError, TermEncodeError
from ..pid import Pid

__all__ = [
    "MAX_ATOM_CHARS",
    "Atom",
    "BitString",
    "ErlangPid",
    "ErlangRef",
    "FrozenList",
    "FrozenMap",
    "ImproperList",
    "Opaque",
    "TermDecodeError",
    "TermEncodeError",
    "charlist",
    "erlang_pid",
    "joerl_pid",
]

#: Erlang's limit: an atom holds at most 255 characters.
MAX_ATOM_CHARS = 255
_U32 = 0xFFFFFFFF


class Atom:
    """An Erlang atom: a name of at most 255 characters.

    Distinct from ``str``: ``Atom("ok") != "ok"``, so that dict keys and
    pattern matches never confuse an atom with a string (a ``str`` travels
    as a UTF-8 binary).

    Args:
        name: the atom's text (any Unicode, at most 255 characters).

    Raises:
        TypeError: ``name`` is not a ``str``.
        ValueError: it is longer than 255 characters.
    """

    __slots__ = ("name", "_hash")
    name: str
    _hash: int

    def __init__(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"an atom's name must be a str, not {type(name).__name__}")
        if len(name) > MAX_ATOM_CHARS:
            raise ValueError(f"an atom holds at most {MAX_ATOM_CHARS} characters, got {len(name)}")
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "_hash", hash(("erlang.Atom", name)))

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("Atom is immutable")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Atom:
            return NotImplemented
        return self.name == other.name

    def __ne__(self, other: object) -> bool:
        if other.__class__ is not Atom:
            return NotImplemented
        return self.name != other.name

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: Atom) -> bool:
        if other.__class__ is not Atom:
            return NotImplemented
        return self.name < other.name

    def __reduce__(self) -> Any:
        return (Atom, (self.name,))

    def __repr__(self) -> str:
        return f"Atom({self.name!r})"

    def __str__(self) -> str:
        return self.name


def _check_u32(kind: str, field: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{kind}.{field} must be an int, not {type(value).__name__}")
    if not 0 <= value <= _U32:
        raise ValueError(f"{kind}.{field} must be in 0..{_U32}, got {value}")


def _check_node(kind: str, node: Any) -> None:
    if not isinstance(node, Atom):
        raise TypeError(f"{kind}.node must be an Atom, not {type(node).__name__}")


@dataclass(frozen=True, slots=True)
class ErlangPid:
    """An Erlang pid: ``NEW_PID_EXT`` (needs ``DFLAG_V4_NC`` for IDs over 15
    bits and Serials over 13 bits, which OTP 24+ offers and we require).

    Attributes:
        node: the node's name, ``Atom("e1@host")``.
        id: 32-bit ID.
        serial: 32-bit Serial.
        creation: the node's 32-bit creation (0 on a non-distributed node).

    Raises:
        TypeError, ValueError: a field of the wrong type or range.
    """

    node: Atom
    id: int
    serial: int
    creation: int

    def __post_init__(self) -> None:
        _check_node("ErlangPid", self.node)
        for field in ("id", "serial", "creation"):
            _check_u32("ErlangPid", field, getattr(self, field))

    def __repr__(self) -> str:
        return f"ErlangPid({self.node.name!r}, {self.id}, {self.serial}, {self.creation})"


def erlang_pid(pid: Pid, node: Atom) -> ErlangPid:
    """The Erlang pid of a joerl pid on the node named ``node`` (lossless).

    A joerl pid's 64-bit id is split in two 32-bit halves: ID is its low 32
    bits and Serial its high 32 bits; the creation is kept. :func:`joerl_pid`
    is the inverse.

    Args:
        pid: a joerl pid (its ``node`` field, joerl's node id, is not carried:
            the Erlang node name takes its place).
        node: the full name of the node the pid lives on.

    Returns:
        The :class:`ErlangPid`.
    """
    return ErlangPid(node, pid.id & _U32, pid.id >> 32, pid.creation)


def joerl_pid(pid: ErlangPid, node_id: int = 0) -> Pid:
    """The joerl pid of an Erlang pid (the inverse of :func:`erlang_pid`).

    Args:
        pid: the Erlang pid.
        node_id: joerl's 32-bit id for ``pid.node`` (0 for this node).

    Returns:
        ``Pid(node_id, serial << 32 | id, creation)``.
    """
    result: Pid = Pid(node_id, pid.serial << 32 | pid.id, pid.creation)
    return result


@dataclass(frozen=True, slots=True)
class ErlangRef:
    """An Erlang reference: ``NEWER_REFERENCE_EXT``, 1..5 32-bit words (up
    to 3 before ``DFLAG_V4_NC``; OTP 25 makes refs of 3 words).

    Attributes:
        node: the node's name.
        creation: its 32-bit creation.
        ids: the words, as on the wire (the first is the least significant).

    Raises:
        TypeError, ValueError: a field of the wrong type or range.
    """

    node: Atom
    creation: int
    ids: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_node("ErlangRef", self.node)
        _check_u32("ErlangRef", "creation", self.creation)
        if not isinstance(self.ids, tuple) or not 1 <= len(self.ids) <= 5:
            raise ValueError(f"ErlangRef.ids must be a tuple of 1..5 ints, got {self.ids!r}")
        for word in self.ids:
            _check_u32("ErlangRef", "ids", word)


@dataclass(frozen=True, slots=True)
class ImproperList:
    """An improper list ``[I1, ..., In | Tail]`` (gen_call tags are ``[alias | Ref]``).

    Attributes:
        items: the elements before the tail (at least one).
        tail: the tail: any term but a list.

    Raises:
        ValueError: no items, or a tail that is a list (then the list is proper).
    """

    items: tuple[Any, ...]
    tail: Any

    def __post_init__(self) -> None:
        items: Any = self.items
        if not isinstance(items, tuple):
            object.__setattr__(self, "items", tuple(items))
        if not self.items:
            raise ValueError("an improper list needs at least one item before its tail")
        if isinstance(self.tail, (list, FrozenList, ImproperList)):
            raise ValueError("an improper list's tail must not be a list: that list is proper (or longer)")


@dataclass(frozen=True, slots=True)
class BitString:
    """A bit string whose length is not a whole number of bytes (``BIT_BINARY_EXT``).

    The unused low bits of the last byte are cleared, as Erlang keeps them.

    Attributes:
        data: the bytes (at least one).
        bits: how many bits of the last byte are used, 1..7 (a whole last
            byte is a binary: use ``bytes``).

    Raises:
        ValueError: empty data or ``bits`` out of 1..7.
    """

    data: bytes
    bits: int

    def __post_init__(self) -> None:
        if not isinstance(self.data, (bytes, bytearray)) or not self.data:
            raise ValueError("BitString.data must be at least one byte")
        if not isinstance(self.bits, int) or not 1 <= self.bits <= 7:
            raise ValueError(f"BitString.bits must be 1..7 (8 is a whole byte: use bytes), got {self.bits!r}")
        mask = (0xFF << (8 - self.bits)) & 0xFF
        data = bytes(self.data)
        object.__setattr__(self, "data", data[:-1] + bytes([data[-1] & mask]))

    @property
    def bit_size(self) -> int:
        """The length in bits."""
        return (len(self.data) - 1) * 8 + self.bits


@dataclass(frozen=True, slots=True)
class Opaque:
    """A term joerl carries without interpreting it: a fun (``NEW_FUN_EXT``,
    112), an export ``fun M:F/A`` (113), a port (89, 120, 102) or an old
    fun (117). Encoding writes ``tag`` and ``raw`` back unchanged.

    Attributes:
        tag: the ETF tag byte.
        raw: the bytes after the tag, as received.
    """

    tag: int
    raw: bytes


class FrozenList:
    """A hashable proper list, for lists used as map keys (or inside them).

    Encodes as a list; compares equal to a ``list`` with the same items.

    Args:
        items: the elements.
    """

    __slots__ = ("items",)
    items: tuple[Any, ...]

    def __init__(self, items: Iterable[Any] = ()) -> None:
        object.__setattr__(self, "items", tuple(items))

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("FrozenList is immutable")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenList):
            return self.items == other.items
        if isinstance(other, list):
            return list(self.items) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("erlang.FrozenList", self.items))

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"FrozenList({list(self.items)!r})"


class FrozenMap(Mapping[Any, Any]):
    """A hashable map, for maps used as map keys (or inside them).

    Encodes as a map; compares equal to a ``dict`` with the same items.

    Args:
        items: a mapping or (key, value) pairs; every key and value hashable.
    """

    __slots__ = ("_d", "_hash")
    _d: dict[Any, Any]
    _hash: int

    def __init__(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]] = ()) -> None:
        d = dict(items)
        object.__setattr__(self, "_d", d)
        object.__setattr__(self, "_hash", hash(("erlang.FrozenMap", frozenset(d.items()))))

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("FrozenMap is immutable")

    def __getitem__(self, key: Any) -> Any:
        return self._d[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (FrozenMap, dict)):
            return dict(self._d) == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenMap({self._d!r})"


def charlist(text: str) -> list[int]:
    """An Erlang string (a charlist: a list of code points) from ``text``.

    A plain ``str`` is sent as a UTF-8 binary (``<<"text">>``); pass
    ``charlist("text")`` where Erlang code expects ``"text"``.
    """
    return [ord(c) for c in text]
