"""Dispatch: what arrives from peers, applied to the process table through the Inbound.

:meth:`Dispatch.on_frame` runs for every control message of a link, in its
reader greenlet, or in the hub for the messages it lists as ``hub_safe``
(``link_reader.py``). Messages for processes go straight into their mailboxes (the hot
path); links, monitors and exit signals go through the node's
:class:`~joerl._router.Inbound`; answers (call replies, ``Down`` of a call's
monitor, alive and spawn replies) resolve the waits in the routing's
:class:`~joerl._gen.Pending` table. A reply for a call that did not cross
nodes (its server handed its ``From`` to a process of another node, which
replied from there) resolves the runtime's own call through
``Inbound.reply``. A reply nobody waits for any more is counted in
``stats.extra["late_replies"]`` and dropped.

A message for a *bounded* mailbox never blocks the reader: it goes through
:class:`FlowControl`, the IO half of flow control (the bookkeeping is
``flow.py``'s, with the protocol): what does not fit waits in the
destination's queue on this node, credit goes back to the sending nodes as
the mailbox drains, and at the sending end a greenlet with no credit left
waits for more. A message for a process that is not alive any more is
dropped and counted in the system's ``stats`` (``noproc``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from .._gen import CALL, From, as_call
from .._stats import DROP_NOPROC
from ..errors import LinkDown, SerializationError
from ..message import NOPROC
from ..pid import SYSTEM_PID, Pid
from . import protocol as P
from .flow_control import FlowControl

if TYPE_CHECKING:
    from ..mailbox import Mailbox
    from ..system import ActorSystem
    from .connection import Connection
    from .routing import Routing

__all__ = ["Dispatch", "FlowControl", "SpawnHandler"]

_tuple_new = tuple.__new__

log = logging.getLogger("joerl.node")


class SpawnHandler(Protocol):
    """The remote-spawn service (:class:`~joerl.node.spawn.Spawner`)."""

    def on_request(self, conn: Connection, msg: Any) -> None: ...
    def on_reply(self, msg: Any) -> None: ...


class Dispatch:
    """Frames from peers (see the module docstring).

    Args:
        routing: the node's routing (pid mapping, codec, pending waits, Inbound).
        system: the node's actor system, for names and liveness (its public API).
        spawns: the remote-spawn service.
    """

    def __init__(self, routing: Routing, system: ActorSystem, spawns: SpawnHandler) -> None:
        self._routing = routing
        self._inbound = routing.inbound
        self._mailbox = routing.inbound.mailbox
        self._codec = routing.codec
        self._stats = routing.stats
        self._pending = routing.pending
        self._served = routing.calls.served
        self._node_id = routing.node_id
        self._creation = routing.creation
        self._whereis = system.whereis
        self._is_alive = system.is_process_alive
        self._context_of = system.context_of
        self._boxes: dict[int, Mailbox] = {}  # local id -> the open mailbox of that process (see _box)
        self._servers: dict[int, Pid] = {}  # local id -> the pid object of a process called here (see _on_call)
        self._spawns = spawns
        self._drop = system.stats.drop
        #: Flow control for bounded mailboxes (both ends); installed as the routing's.
        self.flow = FlowControl(routing, system.stats.drop)
        self._arrive = self.flow.arrive

    def on_frame(self, conn: Connection, msg: Any) -> None:
        """One control message from ``conn``'s peer (its reader greenlet, or the hub: ``hub_safe``).

        A payload or reason this node cannot decode (an unknown message type,
        bytes over a limit) is counted in ``stats.bad_payloads`` and re-raised:
        the link logs and drops that frame, and carries on.
        """
        cls = msg.__class__
        if cls is P.SendTerms:  # the hot path, kept inline: plain terms, never a call
            sender, to, msgs = msg
            n = len(msgs)
            conn.messages_in += n  # (taken off the link: what the ACK counts)
            if to.node == self._node_id and to.creation == self._creation:
                mailbox = self._boxes.get(to.id)
                if mailbox is None or mailbox.closed:
                    mailbox = self._box(to.id)
                if mailbox is not None:
                    self._stats.received += n
                    if mailbox.maxsize is None:
                        mailbox.deliver_all(msgs, sender)
                    else:
                        self._arrive(conn, to, mailbox, msgs, sender)
                else:
                    self._dead(conn, to, n)
            else:
                self._stats.dropped_stale += n
            return
        try:
            if cls is P.Send:
                to = msg.to
                conn.messages_in += 1
                if to.node == self._node_id and to.creation == self._creation:
                    mailbox = self._boxes.get(to.id)
                    if mailbox is None or mailbox.closed:
                        mailbox = self._box(to.id)
                    if mailbox is not None:
                        payload = self._codec.decode(msg.payload)
                        if payload.__class__ is tuple and len(payload) == 3 and payload[0] == CALL:
                            payload = as_call(payload)  # (checked inline: a call per message costs)
                        self._stats.received += 1
                        if mailbox.maxsize is None:
                            mailbox.deliver(payload, msg.sender)
                        else:
                            self._arrive(conn, to, mailbox, (payload,), msg.sender)
                    else:
                        self._dead(conn, to, 1)
                else:
                    self._stats.dropped_stale += 1
            elif cls is P.Call:
                self._on_call(conn, msg)
            elif cls is P.CallReply:  # (a remote call's answer, inline: the caller's hot path)
                ref = msg.ref
                if ref.node == self._node_id and ref.creation == self._creation:  # (a ref of ours: a wait here)
                    payload = msg.payload  # ((value,): a plain term, as itself)
                    value = payload[0] if payload.__class__ is tuple else self._codec.decode(payload)
                    # (released: the server's node dropped the call's monitor; calls.py sends no DEMONITOR)
                    # (by id: a ref of ours is kept under its id, see Pending)
                    if not self._pending.resolve_id(ref.id, (True, value, True) if msg[2] else (True, value)):
                        self._unawaited(ref, value)
                else:
                    self._unawaited(None, None)
            else:
                self._on_control(conn, msg)
        except SerializationError:
            self._stats.bad_payloads += 1
            raise

    def _on_call(self, conn: Connection, msg: P.Call) -> None:
        """A CALL: what MONITOR then SEND of ``(CALL, From, request)`` would do, in one.

        The monitor is remembered in ``RemoteCalls.served`` (``calls.py``) until the reply goes
        out (``Routing.route_reply`` drops it then) or a DEMONITOR comes.
        """
        sender, to, ref, payload = msg
        conn.messages_in += 1  # (a message: what the ACK counts)
        routing = self._routing
        if to.node == self._node_id and to.creation == self._creation:  # (routing.local_target, inline)
            # The server's own pid object (ids are never reused): the runtime's
            # lookups of it (add_monitor, remove_monitor) then compare by identity.
            local: Pid | None = self._servers.get(to.id) or self._server(to.id)
        else:
            local = routing.local_target(to)  # (None: counted, logged)
        if local is not None and self._inbound.add_monitor(sender, local, ref):
            self._served[ref.node, ref.id, ref.creation] = local
        else:
            self._answer(conn, P.Down(to, sender, ref, routing.wire_reason(NOPROC)))
            if local is None:
                self._stats.dropped_stale += 1
                return
        mailbox = self._boxes.get(to.id)
        if mailbox is None or mailbox.closed:
            mailbox = self._box(to.id)
        if mailbox is None:
            self._dead(conn, to, 1)
            return
        request = payload[0] if payload.__class__ is tuple else self._codec.decode(payload)  # type: ignore[arg-type]
        call = (CALL, _tuple_new(From, (sender, ref)), request)  # ((request,): a plain term, as itself)
        self._stats.received += 1
        if mailbox.maxsize is None:
            mailbox.deliver(call, sender if sender.id else None)  # (id 0: plain code, no sender)
        else:
            self._arrive(conn, to, mailbox, (call,), sender if sender.id else None)

    def _box(self, local_id: int) -> Mailbox | None:
        """The mailbox of local process ``local_id`` (``Inbound.mailbox``), kept while open: a
        message for a process that has one open takes a dict lookup, not a call into the runtime."""
        mailbox = self._mailbox(local_id)
        boxes = self._boxes
        if mailbox is None or mailbox.closed:
            boxes.pop(local_id, None)
        else:
            if len(boxes) >= 4096:
                boxes.clear()
            boxes[local_id] = mailbox
        return mailbox

    def _server(self, local_id: int) -> Pid:
        """The pid of local process ``local_id``: its own object while it is alive (kept), else a new one."""
        pid: Pid = Pid._unchecked(0, local_id, 0)
        ctx = self._context_of(pid)
        if ctx is None:
            return pid  # (not alive: the call fails with noproc)
        if len(self._servers) >= 4096:
            self._servers.clear()
        own: Pid = ctx.pid
        self._servers[local_id] = own
        return own

    def _on_control(self, conn: Connection, msg: Any) -> None:
        """Every control message but ``Send`` and ``SendTerms``."""
        cls = msg.__class__
        inbound = self._inbound
        routing = self._routing
        if cls is P.Monitor:  # (a remote call's frames first)
            target = msg.to
            local = self._whereis(target) if isinstance(target, str) else routing.local_target(target)
            if local is None or not inbound.add_monitor(msg.sender, local, msg.ref):
                self._answer(conn, P.Down(target, msg.sender, msg.ref, routing.wire_reason(NOPROC)))
        elif cls is P.Demonitor:
            target = msg.to
            local = self._whereis(target) if isinstance(target, str) else routing.local_target(target)
            if local is not None:
                inbound.remove_monitor(local, msg.ref)
            if self._served:  # (a CALL's: it ended without our reply)
                ref = msg.ref
                self._served.pop((ref.node, ref.id, ref.creation), None)
        elif cls is P.RegSend:
            conn.messages_in += 1
            pid = self._whereis(msg.to_name)
            mailbox = self._mailbox(pid.id) if pid is not None else None
            if mailbox is not None:
                payload = as_call(self._codec.decode(msg.payload))
                self._stats.received += 1
                if mailbox.maxsize is None:
                    mailbox.deliver(payload, msg.sender)
                else:  # (a send to a name is never charged: no credit covers it)
                    self.flow.arrive_named(routing.glob_pid(pid), mailbox, payload, msg.sender)  # type: ignore[arg-type]
            else:
                self._drop(DROP_NOPROC)
        elif cls is P.Flow:
            self.flow.on_flow(conn, msg)
        elif cls is P.AliveRequest:
            local = routing.local_target(msg.pid)
            alive = local is not None and self._is_alive(local)
            self._answer(conn, P.AliveReply(msg.ref, alive))
        elif cls is P.AliveReply:
            self._pending.resolve(routing.local_ref(msg.ref), (True, bool(msg.alive)))
        elif cls is P.Link:
            local = routing.local_target(msg.to)
            if local is None or not inbound.add_link(local, msg.sender):
                self._answer(conn, P.Exit(msg.to, msg.sender, routing.wire_reason(NOPROC)))
        elif cls is P.Unlink:
            local = routing.local_target(msg.to)
            if local is not None:
                inbound.remove_link(local, msg.sender)
        elif cls is P.Exit or cls is P.Exit2:
            local = routing.local_target(msg.to)
            if local is not None:
                inbound.exit(msg.sender or SYSTEM_PID, local, routing.read_reason(msg.reason), cls is P.Exit)
        elif cls is P.Down:
            self._on_down(conn, msg)
        elif cls is P.SpawnRequest:
            self._spawns.on_request(conn, msg)
        elif cls is P.SpawnReply:
            self._spawns.on_reply(msg)
        else:
            log.debug("ignoring %s from %s", cls.__name__, conn.peer_name)

    def _unawaited(self, ref: Any, value: Any) -> None:
        """A CALL_REPLY no remote call waits for: a call of this node's runtime whose server
        handed its ``From`` to another node (``ref``, ours, and its ``value``), or late (counted)."""
        if ref is not None and self._inbound.reply(self._routing.local_ref(ref), value):
            return
        extra = self._stats.extra
        extra["late_replies"] = extra.get("late_replies", 0) + 1

    def _on_down(self, conn: Connection, msg: Any) -> None:
        routing = self._routing
        ref = routing.local_ref(msg.ref)
        reason = routing.read_reason(msg.reason)
        if self._pending.resolve(ref, (False, reason)):
            return  # the server of a remote call ended: the call fails
        watcher = routing.local_target(msg.to)
        if watcher is not None:
            pid = (
                msg.sender if isinstance(msg.sender, Pid) else Pid._unchecked(conn.peer.node_id, 0, conn.peer.creation)
            )
            self._inbound.down(watcher, ref, pid, reason)

    def _dead(self, conn: Connection, to: Pid, n: int) -> None:
        """``n`` messages from ``conn`` for ``to``, a process of this incarnation that is not alive: dropped, counted."""
        self._drop(DROP_NOPROC, n)
        self.flow.dead(conn, to)

    @staticmethod
    def _answer(conn: Connection, msg: Any) -> None:
        try:
            conn.send(msg)
        except LinkDown:
            pass  # the link is going: its NodeDown tells the rest


#: What ``on_frame`` may take in the hub (``link_reader.py``): these only append to
#: a mailbox (never waiting: a bounded one goes through flow control), wake a
#: waiter (a call's, a sender's waiting for credit), update a process's monitors,
#: or answer on a link (which the hub never waits for). Links, exit signals,
#: spawns and the rest take the reader greenlet.
Dispatch.on_frame.hub_safe = frozenset(  # type: ignore[attr-defined]
    {P.Send, P.SendTerms, P.RegSend, P.Call, P.CallReply, P.Monitor, P.Demonitor, P.Down, P.Flow}
)
