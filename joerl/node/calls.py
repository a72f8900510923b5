"""Remote calls: a GenServer call to a process of another node, at both ends.

The caller's end (:meth:`RemoteCalls.call`) monitors the server for the
duration of the call (by name when called as ``(name, node)``), so that its
death, or the loss of its node, fails the call at once, and waits in the
routing's :class:`~joerl._gen.Pending` table; a late reply is dropped.

On a link that takes CALL (``FLAG_CALL``, see ``protocol.py``) a call to a
pid is one frame, the monitor and the request together, and the server's
node (:meth:`RemoteCalls.reply`, the other end) drops that monitor as the
reply goes out, marking the reply ``released``: the caller then sends no
DEMONITOR. A call that ended otherwise (timed out, its server's ``Down``, a
reply from a process of a third node) sends DEMONITOR, which also makes the
server's node forget the call. Elsewhere (a call by name, a link that is not
up yet, a peer without ``FLAG_CALL``) a call is MONITOR then SEND of
``(CALL, (pid, ref), request)``, and DEMONITOR once it ended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._gen import CALL, From
from .._router import RemoteName
from ..errors import CallError, CallTimeout, LinkDown
from ..message import NOCONNECTION, NOPROC
from ..pid import BOUNDED_MAILBOX, SYSTEM_PID, Pid, make_ref
from . import protocol as P
from .hello import FLAG_CALL

if TYPE_CHECKING:
    from .peers import Peer
    from .routing import Routing

__all__ = ["RemoteCalls"]

_tuple_new = tuple.__new__
_SCALARS = frozenset({float, bool, bytes, type(None)})  # (ints and str: checked, see RemoteCalls.reply)
_I64, _U64 = -(1 << 63), (1 << 64) - 1


class RemoteCalls:
    """The remote calls of one node, both ends (see the module docstring).

    Args:
        routing: the node's routing (peers, codec, pending table, flow control, Inbound).
    """

    def __init__(self, routing: Routing) -> None:
        self._routing = routing
        self._pending = routing.pending
        self._codec = routing.codec
        self._stats = routing.stats
        self._by_id = routing.peers.by_id
        self._node_id = routing.node_id
        self._creation = routing.creation
        # A new ref's id, no Ref made (a CALL call's ref is kept by id alone: :meth:`_call`).
        self._ref_id = routing.ref_id
        self._glob_system = routing.glob_pid(SYSTEM_PID)  # (plain code's calls: the caller as peers see it)
        #: Calls to this node's processes that came as CALL frames and are not
        #: answered yet: their ref, as ``(node, id, creation)`` (a tuple hashes
        #: without a Python call), -> the local pid their monitor is on
        #: (:meth:`reply` drops the monitor; a DEMONITOR, ``dispatch.py``, or
        #: the loss of the caller's link, :meth:`forget`, forgets the call).
        self.served: dict[tuple[int, int, int], Pid] = {}
        #: This node's CALL calls waiting for an answer, by the node called:
        #: their refs' ids (ints: no Python hash per call; ``Peer.calls`` holds
        #: the waits of the other requests). :meth:`forget` fails them.
        self._waiting: dict[int, set[int]] = {}

    def reply(self, from_: From, value: Any) -> None:
        """Send the reply to the call ``from_`` (a ``From`` whose ref is of another node)."""
        routing = self._routing
        ref = from_[1]
        cls = value.__class__
        # A scalar the packer takes as it is (an int in range, ASCII text, ...)
        # may travel as itself in a reply to a CALL; anything else in the codec's bytes.
        plain = cls in _SCALARS or (cls is int and _I64 <= value <= _U64) or (cls is str and value.isascii())
        payload = None if plain else self._codec.encode(value)  # (NotSerializable: raised before anything)
        served = self.served
        local = served.pop((ref.node, ref.id, ref.creation), None) if served else None
        if local is None:  # (P.CallReply(...) without its Python-level __new__)
            msg = _tuple_new(P.CallReply, (ref, self._codec.encode(value) if payload is None else payload, False))
        else:
            # A CALL's reply leaving its server's node: drop the call's monitor here,
            # so that the caller sends no DEMONITOR (``released``, protocol.py).
            routing.inbound.remove_monitor(local, ref)
            msg = _tuple_new(P.CallReply, (ref, (value,) if payload is None else payload, True))
        peer = self._by_id.get(ref.node)
        conn = peer.conn if peer is not None else None
        if conn is None:
            routing.route(ref.node, msg)  # (a link to dial, a node id to look up)
            return
        try:
            conn.send_frame(conn.encoder.encode(msg))
        except LinkDown:
            pass  # (the caller's call fails with noconnection)

    def forget(self, peer: Peer) -> None:
        """``peer``'s link is lost: our CALL calls to it fail with ``noconnection``; its calls
        to us are forgotten (their monitors went with it: ``Inbound.node_down``)."""
        waiting = self._waiting.pop(peer.node_id, None)
        if waiting:
            for ref_id in list(waiting):
                self._pending.resolve_id(ref_id, (False, NOCONNECTION))
        served = self.served
        if served:
            for key in [key for key in served if key[0] == peer.node_id]:
                del served[key]

    def call(self, server: Pid | RemoteName, request: Any, timeout: float | None, caller: Pid | None) -> Any:
        """A GenServer call to ``server``, a process of another node (see the module docstring)."""
        routing = self._routing
        peer: Peer | None
        if server.__class__ is Pid:  # the usual call: a pid on a node linked to us, a link that takes CALL
            peer = self._by_id.get(server.node)
            conn = peer.conn if peer is not None else None
            if conn is not None and conn.flags & FLAG_CALL and server.node != self._node_id:
                gcaller = self._glob_system if caller is None else routing.glob_pid(caller)
                return self._call(peer, conn, server, request, timeout, self._ref_id(), gcaller)  # type: ignore[arg-type]
        target: Pid | str
        if isinstance(server, RemoteName):
            peer = routing.peers.peer(server.node)
            target = server.name
            shown: Any = server.name + "@" + server.node
        else:
            peer = routing.peers.for_id(server.node) if server.node != routing.node_id else None
            target = shown = server
            if peer is None:
                raise CallError(server, NOPROC)
        ref = routing.make_ref()
        gref = routing.glob_ref(ref)
        gcaller = routing.glob_pid(caller or SYSTEM_PID)
        conn = peer.conn
        if conn is not None and conn.flags & FLAG_CALL and target.__class__ is Pid:
            return self._call(peer, conn, target, request, timeout, ref.id, gcaller)
        # From crosses as a plain (pid, ref) pair (the codec keeps no
        # NamedTuple types); the server's node makes it a From again.
        payload = self._codec.encode((CALL, (gcaller, gref), request))
        monitor = P.Monitor(gcaller, target, gref)
        if isinstance(target, str):
            request_msg: Any = P.RegSend(routing.glob_opt(caller), target, payload)
        else:
            request_msg = P.Send(routing.glob_opt(caller), target, payload)
        waiter = self._pending.add(ref)
        peer.calls.add(ref)
        left = timeout
        try:
            bounded = isinstance(target, Pid) and bool(target.id & BOUNDED_MAILBOX)
            if bounded:  # flow control: a bounded server, charged on this link or the next one
                waited = routing.flow.admit(conn, target, timeout)  # type: ignore[arg-type]
                if waited is None:
                    raise CallTimeout(shown, timeout)  # type: ignore[arg-type]
                if timeout is not None:
                    left = timeout - waited
            if conn is not None:
                # Both frames in one write: the server's node wakes up once per call.
                try:
                    conn.send_frame(conn.encoder.encode(monitor) + conn.encoder.encode(request_msg))
                    conn.outbound.handed += 1  # (a message the peer acknowledges: delivery.py)
                    self._stats.sent += 1
                except LinkDown:  # the link's loss has failed this call with noconnection
                    self._stats.dropped_unreachable += 1
            else:
                routing.outbox.enqueue(peer, monitor)
                routing.outbox.enqueue(peer, request_msg)
                if bounded:
                    routing.flow.settle_unlinked(peer, target, request_msg)  # type: ignore[arg-type]
            result = self._pending.wait(waiter, ref, left)
        finally:
            self._pending.discard(ref)
            peer.calls.discard(ref)
            if peer.conn is not None:
                try:
                    peer.conn.send_later(P.Demonitor(gcaller, target, gref))  # (with the next call, if one follows)
                except LinkDown:
                    pass
        if result is None:
            raise CallTimeout(shown, timeout)  # type: ignore[arg-type]
        ok, value = result
        if ok:
            return value
        raise CallError(shown, value)

    def _call(
        self, peer: Peer, conn: Any, target: Pid, request: Any, timeout: float | None, ref_id: int, gcaller: Pid
    ) -> Any:  # fmt: skip
        """:meth:`call` on a link that takes CALL: the monitor and the request in one frame.

        The call's ref is of this node and observable nowhere on this side, so
        it is kept as its id alone (no Ref made): the wait is by id, and the
        wire carries the ref as peers name it, a triple.
        """
        body = conn.encoder.term(request)  # (a plain term travels as itself, as SEND_TERMS carries it)
        payload = self._codec.encode(request) if body is None else body
        pending = self._pending
        waiter = pending.open(ref_id)
        waiting = self._waiting.get(peer.node_id)
        if waiting is None:
            waiting = self._waiting[peer.node_id] = set()
        waiting.add(ref_id)
        left = timeout
        result = None
        try:
            if target.id & BOUNDED_MAILBOX:  # flow control: a bounded server
                waited = self._routing.flow.admit(conn, target, timeout)
                if waited is None:
                    raise CallTimeout(target, timeout)  # type: ignore[arg-type]
                if timeout is not None:
                    left = timeout - waited
            try:
                triple = (self._node_id, ref_id, self._creation)
                conn.send_frame(conn.encoder.call(gcaller, target, triple, payload, body is not None))
                conn.outbound.handed += 1  # (a message the peer acknowledges: delivery.py)
                self._stats.sent += 1
            except LinkDown:  # the link's loss has failed this call with noconnection
                self._stats.dropped_unreachable += 1
            result = pending.wait_id(waiter, ref_id, left)  # (closes the wait, however it ends)
        finally:
            if result is None:
                pending.discard_id(ref_id)  # (the wait may not have started)
            waiting.discard(ref_id)
            # (released: the server's node dropped the monitor as it replied)
            if (result is None or len(result) == 2) and peer.conn is not None:
                try:
                    demonitor = P.Demonitor(gcaller, target, make_ref(self._node_id, ref_id, self._creation))
                    peer.conn.send_later(demonitor)  # (with the next call, if one follows)
                except LinkDown:
                    pass
        if result is None:
            raise CallTimeout(target, timeout)  # type: ignore[arg-type]
        if result[0]:
            return result[1]
        raise CallError(target, result[1])
