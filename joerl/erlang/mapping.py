"""Erlang terms <-> joerl's runtime values, at the boundary of an Erlang link (pure; no IO).

The runtime knows :class:`~joerl.pid.Pid` and :class:`~joerl.pid.Ref`; an
Erlang peer sends :class:`~joerl.erlang.terms.ErlangPid` and
:class:`~joerl.erlang.terms.ErlangRef`. :class:`TermMap` maps both ways,
losslessly, inside every message, reason and control message:

* a pid of ours, ``Pid(0, id, 0)``, is ``ErlangPid(us, id & 0xFFFFFFFF,
  id >> 32, our creation)``; a pid of Erlang node ``N`` is
  ``Pid(node_id(N), serial << 32 | id, creation)``, ``node_id`` being
  joerl's id of the name (the same digest every node computes);
* a ref of ours, ``Ref(0, id, 0)``, is ``ErlangRef(us, creation, (id low,
  id high, 0))``; a ref of node ``N`` (1..5 words) is
  ``Ref(node_id(N), packed, creation)`` where ``packed`` holds the word
  count (3 bits), an *alias tag* bit (the ``[alias | Ref]`` form of a call
  tag) and the words: call, monitor and alias tables take it as any ref.

Exit reasons: a ``str`` reason is an atom (``"normal"`` <-> ``normal``,
``"noproc"``, ``"killed"``, ``"noconnection"``...), ``("shutdown", X)`` is
``{shutdown, X}``, and a Python exception (or an
:class:`~joerl.message.ExceptionReason`) is ``{exception, Type, Message,
Traceback}`` with binaries, read back as an ``ExceptionReason``.

Calls: OTP 25's ``{'$gen_call', {Pid, Tag}, Request}`` (``Tag`` is
``[alias | Ref]`` or a plain ref) becomes joerl's ``(CALL, From(pid, ref),
request)``; the reply goes back as ``Alias ! {Tag, Reply}`` (ALIAS_SEND) or
``Pid ! {Tag, Reply}`` (:meth:`TermMap.reply_out`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from ..message import ExceptionReason
from ..pid import Pid, Ref
from .control import AliasSend, Send
from .records import STRUCT_KEY, Records
from .terms import Atom, ErlangPid, ErlangRef, FrozenList, FrozenMap, ImproperList

__all__ = ["ALIAS", "CALL", "CAST", "EXCEPTION", "GEN_CALL", "GEN_CAST", "TermMap"]

_U32: Final = 0xFFFFFFFF
#: joerl's call tag (``joerl._gen.CALL``, spelled here: this module imports no runtime module).
CALL: Final = "$gen_call"
CAST: Final = "$gen_cast"
#: ``'$gen_call'``: the tag of a gen_server call.
GEN_CALL: Final = Atom(CALL)
#: ``'$gen_cast'``: the tag of a gen_server cast (joerl's is the str ``"$gen_cast"``).
GEN_CAST: Final = Atom("$gen_cast")
#: ``alias``: the head of the ``[alias | Ref]`` call tag (OTP 24+).
ALIAS: Final = Atom("alias")
#: ``exception``: the tag of a joerl exception reason in Erlang.
EXCEPTION: Final = Atom("exception")
_SHUTDOWN: Final = Atom("shutdown")
_ALIAS_BIT: Final = 1 << 3
_LEAVES: Final = (int, float, str, bytes, bool, Atom, type(None))


def _pack(ids: tuple[int, ...], alias: bool) -> int:
    packed = len(ids) | (_ALIAS_BIT if alias else 0)
    for i, word in enumerate(ids):
        packed |= word << (4 + 32 * i)
    return packed


def _unpack(packed: int) -> tuple[tuple[int, ...], bool]:
    count = packed & 7
    return tuple((packed >> (4 + 32 * i)) & _U32 for i in range(count)), bool(packed & _ALIAS_BIT)


class TermMap:
    """The pid, ref, reason and call mapping of one node's Erlang links (see the module docstring).

    Args:
        name: our full node name (``"py@host"``).
        node_id: joerl's id of our node (pids of an earlier incarnation carry it).
        creation: our creation, stamped on our pids and refs.
        id_of: joerl's node id of a node name (the digest of the name).
        name_of: the name of a joerl node id that is not an Erlang node (None: unknown).
        records: the message types that cross as records or Elixir structs (``records.py``).
    """

    def __init__(
        self,
        name: str,
        node_id: int,
        creation: int,
        id_of: Callable[[str], int],
        name_of: Callable[[int], str | None],
        records: Records | None = None,
    ) -> None:
        self.atom = Atom(name)
        self.node_id = node_id
        self.creation = creation
        self._id_of = id_of
        self._name_of = name_of
        self.records = records
        #: The Erlang nodes met so far: joerl node id -> name atom.
        self.erlang: dict[int, Atom] = {}

    # -- nodes -----------------------------------------------------------------------

    def learn(self, name: str) -> int:
        """Record ``name`` as an Erlang node; return its joerl node id."""
        node_id = self._id_of(name)
        if node_id not in self.erlang:
            self.erlang[node_id] = Atom(name)
        return node_id

    def node_atom(self, node_id: int) -> Atom:
        """The name atom of the node with joerl id ``node_id`` (ours for 0)."""
        if node_id == 0 or node_id == self.node_id:
            return self.atom
        atom = self.erlang.get(node_id)
        if atom is not None:
            return atom
        name = self._name_of(node_id)
        return Atom(name if name else f"joerl_{node_id}@unknown")

    # -- pids and refs ------------------------------------------------------------------

    def pid_out(self, pid: Pid) -> ErlangPid:
        """A runtime pid as the Erlang peer names it."""
        creation = self.creation if pid.node == 0 else pid.creation
        return ErlangPid(self.node_atom(pid.node), pid.id & _U32, pid.id >> 32, creation)

    def pid_in(self, pid: ErlangPid) -> Pid:
        """An Erlang pid as the runtime names it (ours of this incarnation: ``node == 0``)."""
        if pid.node == self.atom:
            if pid.creation == self.creation:
                return Pid._unchecked(0, pid.serial << 32 | pid.id, 0)  # type: ignore[no-any-return]
            return Pid._unchecked(self.node_id, pid.serial << 32 | pid.id, pid.creation)  # type: ignore[no-any-return]
        return Pid._unchecked(self.learn(pid.node.name), pid.serial << 32 | pid.id, pid.creation)  # type: ignore[no-any-return]

    def ref_out(self, ref: Ref) -> ErlangRef:
        """A runtime ref as the Erlang peer names it (the inverse of :meth:`ref_in`)."""
        if ref.node == 0:
            return ErlangRef(self.atom, self.creation, (ref.id & _U32, (ref.id >> 32) & _U32, 0))
        atom = self.erlang.get(ref.node)
        if atom is not None:
            return ErlangRef(atom, ref.creation, _unpack(ref.id)[0])
        return ErlangRef(self.node_atom(ref.node), ref.creation, (ref.id & _U32, (ref.id >> 32) & _U32, 0))

    def ref_in(self, ref: ErlangRef, alias: bool = False) -> Ref:
        """An Erlang ref as the runtime names it; ``alias``: it came as an ``[alias | Ref]`` tag."""
        ids = ref.ids
        if ref.node == self.atom:
            if ref.creation == self.creation and len(ids) == 3 and ids[2] == 0:
                return Ref._unchecked(0, ids[0] | ids[1] << 32, 0)  # type: ignore[no-any-return]
            return Ref._unchecked(self.node_id, _pack(ids, False), ref.creation)  # type: ignore[no-any-return]
        return Ref._unchecked(self.learn(ref.node.name), _pack(ids, alias), ref.creation)  # type: ignore[no-any-return]

    @staticmethod
    def is_alias_tag(ref: Ref) -> bool:
        """Was ``ref`` (of an Erlang node) a call's ``[alias | Ref]`` tag?"""
        return ref.node != 0 and bool(ref.id & _ALIAS_BIT)

    # -- terms ----------------------------------------------------------------------------

    def to_erlang(self, term: Any) -> Any:
        """``term`` with every runtime pid and ref in it as the Erlang peer names it."""
        cls = term.__class__
        if cls in _LEAVES:
            return term
        if cls is Pid:
            return self.pid_out(term)
        if cls is Ref:
            return self.ref_out(term)
        records = self.records
        if records is not None and cls in records:
            return records.out(term, self.to_erlang)
        if isinstance(term, ExceptionReason | BaseException):
            return self.reason_out(term)
        if isinstance(term, tuple):
            return tuple([self.to_erlang(t) for t in term])
        if isinstance(term, list):
            return [self.to_erlang(t) for t in term]
        if isinstance(term, dict):
            return {self._key_out(k): self.to_erlang(v) for k, v in term.items()}
        if cls is ImproperList:
            return ImproperList(tuple([self.to_erlang(t) for t in term.items]), self.to_erlang(term.tail))
        return term

    def _key_out(self, key: Any) -> Any:
        value = self.to_erlang(key)
        if isinstance(value, list):
            return FrozenList(value)
        if isinstance(value, dict):
            return FrozenMap(value)
        return value

    def to_local(self, term: Any) -> Any:
        """``term`` from the Erlang peer with every pid and ref in it as the runtime names it."""
        cls = term.__class__
        if cls in _LEAVES:
            return term
        if cls is ErlangPid:
            return self.pid_in(term)
        if cls is ErlangRef:
            return self.ref_in(term)
        records = self.records
        if cls is tuple:
            if records is not None and term and term[0].__class__ is Atom:
                value = records.record_in(term, self.to_local)
                if value is not None:
                    return value
            return tuple([self.to_local(t) for t in term])
        if cls is list:
            return [self.to_local(t) for t in term]
        if cls is dict:
            if records is not None and STRUCT_KEY in term:
                value = records.struct_in(term, self.to_local)
                if value is not None:
                    return value
            return {self.to_local(k): self.to_local(v) for k, v in term.items()}
        if cls is ImproperList:
            return ImproperList(tuple([self.to_local(t) for t in term.items]), self.to_local(term.tail))
        if cls is FrozenList:
            return FrozenList(self.to_local(t) for t in term)
        if cls is FrozenMap:
            return FrozenMap({self.to_local(k): self.to_local(v) for k, v in term.items()})
        return term

    # -- exit reasons ------------------------------------------------------------------------

    def reason_out(self, reason: Any) -> Any:
        """A runtime exit reason as an Erlang term (see the module docstring)."""
        if isinstance(reason, str):
            return Atom(reason) if len(reason) <= 255 else reason
        if isinstance(reason, BaseException):
            reason = ExceptionReason.from_exception(reason)
        if isinstance(reason, ExceptionReason):
            return (EXCEPTION, reason.type, reason.message, reason.traceback)
        if reason.__class__ is tuple and len(reason) == 2 and reason[0] == "shutdown":
            return (_SHUTDOWN, self.to_erlang(reason[1]))
        return self.to_erlang(reason)

    def reason_in(self, reason: Any) -> Any:
        """An Erlang exit reason as the runtime's (the inverse of :meth:`reason_out`)."""
        cls = reason.__class__
        if cls is Atom:
            return reason.name
        if cls is tuple and len(reason) == 2 and reason[0] == _SHUTDOWN:
            return ("shutdown", self.to_local(reason[1]))
        if (
            cls is tuple
            and len(reason) == 4
            and reason[0] == EXCEPTION
            and all(isinstance(part, bytes) for part in reason[1:])
        ):
            return ExceptionReason(*(part.decode("utf-8", "replace") for part in reason[1:]))
        return self.to_local(reason)

    # -- calls ---------------------------------------------------------------------------------

    def call_in(self, msg: Any) -> Any:
        """A message from the Erlang peer for a process: a ``$gen_call`` becomes joerl's call.

        Returns:
            ``(CALL, (pid, ref), request)`` (``joerl._gen.as_call`` makes the
            pair a ``From``) for ``{'$gen_call', {Pid, Tag},
            Request}`` (``Tag`` a ref or ``[alias | Ref]``), ``(CAST, request)``
            for ``{'$gen_cast', Request}``, else the message mapped with :meth:`to_local`.
        """
        if msg.__class__ is tuple and len(msg) == 2 and msg[0] == GEN_CAST:
            return (CAST, self.to_local(msg[1]))
        if msg.__class__ is tuple and len(msg) == 3 and msg[0] == GEN_CALL:
            from_ = msg[1]
            if from_.__class__ is tuple and len(from_) == 2 and from_[0].__class__ is ErlangPid:
                tag = from_[1]
                if tag.__class__ is ErlangRef:
                    return (CALL, (self.pid_in(from_[0]), self.ref_in(tag)), self.to_local(msg[2]))
                if tag.__class__ is ImproperList and tag.items == (ALIAS,) and tag.tail.__class__ is ErlangRef:
                    ref = self.ref_in(tag.tail, alias=True)
                    return (CALL, (self.pid_in(from_[0]), ref), self.to_local(msg[2]))
        return self.to_local(msg)

    def message_out(self, msg: Any) -> Any:
        """A message for an Erlang process: :meth:`to_erlang`, and joerl's cast ``("$gen_cast", R)`` is
        ``{'$gen_cast', R}`` (so ``gen_server.cast`` reaches an Erlang gen_server)."""
        if msg.__class__ is tuple and len(msg) == 2 and msg[0] == CAST:
            return (GEN_CAST, self.to_erlang(msg[1]))
        return self.to_erlang(msg)

    def reply_out(self, from_: Any, value: Any) -> AliasSend | Send:
        """The control message that answers an Erlang caller's ``From`` with ``value``."""
        pid, ref = from_[0], from_[1]
        eref = self.ref_out(ref)
        if self.is_alias_tag(ref):
            tag = ImproperList((ALIAS,), eref)
            return AliasSend(self.pid_out(Pid._unchecked(0, 0, 0)), eref, (tag, self.to_erlang(value)))
        return Send(self.pid_out(pid), (eref, self.to_erlang(value)))

    def call_out(self, caller: Pid, ref: Ref, request: Any) -> tuple[Any, Any, Any]:
        """OTP 25's call message: ``{'$gen_call', {Caller, [alias | Ref]}, Request}``."""
        return (GEN_CALL, (self.pid_out(caller), ImproperList((ALIAS,), self.ref_out(ref))), self.to_erlang(request))

    def reply_in(self, msg: Any) -> tuple[Ref, Any] | None:
        """``{[alias | Ref], Reply}`` or ``{Ref, Reply}`` with a ref of ours: ``(ref, reply)``, else None."""
        if msg.__class__ is not tuple or len(msg) != 2:
            return None
        tag = msg[0]
        if tag.__class__ is ImproperList and tag.items == (ALIAS,):
            tag = tag.tail
        if tag.__class__ is not ErlangRef or tag.node != self.atom:
            return None
        return self.ref_in(tag), self.to_local(msg[1])
