"""Pid and Ref: immutable, hashable identities of processes and references.

A ``Pid`` names a process: ``node`` (32-bit; 0 means "this node"), ``id``
(64-bit, never reused within a system) and ``creation`` (32-bit incarnation of
the node that made it). A ``Ref`` has the same three parts and names a unique
reference (a monitor, a call).

Bit 62 of a pid's id, :data:`BOUNDED_MAILBOX`, is reserved: the runtime sets
it in the id of every process spawned with a bounded mailbox
(``mailbox_size``), and only there, so that a node sending to a pid knows
from the pid alone, before its first message, that the destination is
bounded and its messages are charged to flow-control credit
(docs/distribution.md, "Flow control"). The other ids count up from 1. The
bit is part of the id (a flagged id is just a large id to every other
reader, Erlang's pid mapping included: it lands in the Serial half).
"""

from __future__ import annotations

from typing import Any, Final

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF

#: The reserved bit of a pid's id that marks a process with a bounded
#: mailbox (see the module docstring); test it with ``pid.id & BOUNDED_MAILBOX``.
BOUNDED_MAILBOX: Final = 1 << 62


def _check(kind: str, node: int, id: int, creation: int) -> None:
    for field, value, top in (("node", node, _U32), ("id", id, _U64), ("creation", creation, _U32)):
        if type(value) is not int and not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{kind}.{field} must be an int, not {type(value).__name__}")
        if not 0 <= value <= top:
            raise ValueError(f"{kind}.{field} must be in 0..{top}, got {value}")


class _Fields:
    """The storage of a Pid or Ref: four slots and nothing else."""

    __slots__ = ("node", "id", "creation", "_hash")
    node: int
    id: int
    creation: int
    _hash: int


class _Blank(_Fields):
    """A writable ``_Fields`` that :func:`_make` fills and then turns into a Pid or Ref."""

    __slots__ = ()


_new = object.__new__


def _make(cls: Any, node: int, id: int, creation: int) -> Any:
    """A ``cls`` instance with these (already checked) fields.

    Pid and Ref forbid assignment, so their slots could only be written
    through ``object.__setattr__``, four slow calls. A Ref is made for every
    GenServer call, so the fields go into a writable twin with the same layout
    by plain stores, and the twin's class is then switched to ``cls``: half
    the cost.
    """
    h = hash((cls._kind, node, id, creation))
    self = _Blank()  # (calling the class is cheaper than object.__new__(_Blank))
    self.node = node
    self.id = id
    self.creation = creation
    self._hash = h
    try:
        self.__class__ = cls
    except TypeError:  # a subclass with another layout (one with a __dict__): the slow way
        self = _new(cls)
        for field, value in (("node", node), ("id", id), ("creation", creation), ("_hash", h)):
            object.__setattr__(self, field, value)
    return self


class _Ident(_Fields):
    __slots__ = ()
    _kind = "Ident"

    def __new__(cls, node: int = 0, id: int = 0, creation: int = 0) -> Any:
        _check(cls._kind, node, id, creation)
        return _make(cls, node, id, creation)

    #: Build without range checks (for the runtime and decoders, whose ints are known good).
    #: Pid's and Ref's are the plain makers below (``make_pid``, ``make_ref``: no classmethod bound per call).
    _unchecked = classmethod(_make)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._unchecked = classmethod(_make)  # (a subclass builds its own kind)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self._kind} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{self._kind} is immutable")

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.id == other.id and self.node == other.node and self.creation == other.creation

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __lt__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.node, self.id, self.creation) < (other.node, other.id, other.creation)

    def __reduce__(self) -> Any:
        return (self.__class__, (self.node, self.id, self.creation))

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self

    def is_local(self) -> bool:
        """True when this names something on the local node (``node == 0``)."""
        return self.node == 0

    def with_node_id(self, node: int, creation: int | None = None) -> Any:
        """The same id on another node (and, optionally, another creation)."""
        return self.__class__(node, self.id, self.creation if creation is None else creation)

    @classmethod
    def with_node(cls, node: int, id: int, creation: int = 0) -> Any:
        """Build an identity on node ``node``: ``Pid.with_node(42, 100)`` is ``<42.100.0>``."""
        return cls(node, id, creation)


class Pid(_Ident):
    """A process identifier, printed (``str`` and ``repr`` alike) as ``<node.id.creation>``.

    That is joerl's own form: the node's 32-bit id (0 for this node's
    processes), the process's id, and the node's incarnation. Erlang prints
    ``<NodeIndex.Number.Serial>`` and never the creation; the two forms are
    not interchangeable.
    """

    __slots__ = ()
    _kind = "Pid"

    def __str__(self) -> str:
        return f"<{self.node}.{self.id}.{self.creation}>"

    __repr__ = __str__  # one printed form, joerl's own (see the class docstring)


class Ref(_Ident):
    """A unique reference (monitors, calls), printed (``str`` and ``repr`` alike) as ``#Ref<node.id.creation>``."""

    __slots__ = ()
    _kind = "Ref"

    def __str__(self) -> str:
        return f"#Ref<{self.node}.{self.id}.{self.creation}>"

    __repr__ = __str__


def _maker(cls: Any) -> Any:
    """``_make`` for one class, as a plain function (no classmethod to bind per call)."""
    kind = cls._kind

    def make(node: int, id: int, creation: int) -> Any:
        self = _Blank()  # (calling the class is cheaper than object.__new__(_Blank))
        self.node = node
        self.id = id
        self.creation = creation
        self._hash = hash((kind, node, id, creation))
        self.__class__ = cls
        return self

    return make


#: ``Pid._unchecked`` for the hot paths of decoders: a Pid of these (already checked) fields.
make_pid: Final = _maker(Pid)
#: ``Ref._unchecked``, as ``make_pid``.
make_ref: Final = _maker(Ref)
# (Pid._unchecked and Ref._unchecked are these: the decoders' hot paths call them)
Pid._unchecked = staticmethod(make_pid)  # type: ignore[assignment]
Ref._unchecked = staticmethod(make_ref)  # type: ignore[assignment]

#: The pid that plain (non-actor) code sends from: ``<0.0.0>``; never a process.
SYSTEM_PID = Pid(0, 0, 0)
