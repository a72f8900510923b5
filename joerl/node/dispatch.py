"""Dispatch: what arrives from peers, applied to the process table through the Inbound.

:meth:`Dispatch.on_frame` runs in a link's reader greenlet for every control
message. Messages for processes go straight into their mailboxes (the hot
path); links, monitors and exit signals go through the node's
:class:`~joerl._router.Inbound`; answers (call replies, ``Down`` of a call's
monitor, alive and spawn replies) resolve the waits in the routing's
:class:`~joerl._gen.Pending` table. A reply for a call that did not cross
nodes (its server handed its ``From`` to a process of another node, which
replied from there) resolves the runtime's own call through
``Inbound.reply``. A reply nobody waits for any more is counted in
``stats.extra["late_replies"]`` and dropped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from .._gen import CALL, as_call
from ..errors import LinkDown, SerializationError
from ..message import NOPROC
from ..pid import SYSTEM_PID, Pid
from . import protocol as P

if TYPE_CHECKING:
    from ..system import ActorSystem
    from .connection import Connection
    from .routing import Routing

__all__ = ["Dispatch", "SpawnHandler"]

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
        self._node_id = routing.node_id
        self._creation = routing.creation
        self._whereis = system.whereis
        self._is_alive = system.is_process_alive
        self._spawns = spawns

    def on_frame(self, conn: Connection, msg: Any) -> None:
        """One control message from ``conn``'s peer (its reader greenlet).

        A payload or reason this node cannot decode (an unknown message type,
        bytes over a limit) is counted in ``stats.bad_payloads`` and re-raised:
        the link logs and drops that frame, and carries on.
        """
        cls = msg.__class__
        if cls is P.SendTerms:  # the hot path, kept inline: plain terms, never a call
            to = msg[1]
            if to.node == self._node_id and to.creation == self._creation:
                mailbox = self._mailbox(to.id)
                if mailbox is not None:
                    msgs = msg[2]
                    self._stats.received += len(msgs)
                    mailbox.deliver_all(msgs, msg[0])
            else:
                self._stats.dropped_stale += len(msg[2])
            return
        try:
            if cls is P.Send:
                to = msg.to
                if to.node == self._node_id and to.creation == self._creation:
                    mailbox = self._mailbox(to.id)
                    if mailbox is not None:
                        payload = self._codec.decode(msg.payload)
                        if payload.__class__ is tuple and len(payload) == 3 and payload[0] == CALL:
                            payload = as_call(payload)  # (checked inline: a call per message costs)
                        self._stats.received += 1
                        mailbox.deliver(payload, msg.sender)
                else:
                    self._stats.dropped_stale += 1
            else:
                self._on_control(conn, msg)
        except SerializationError:
            self._stats.bad_payloads += 1
            raise

    def _on_control(self, conn: Connection, msg: Any) -> None:
        """Every control message but ``Send`` and ``SendTerms``."""
        cls = msg.__class__
        inbound = self._inbound
        routing = self._routing
        if cls is P.RegSend:
            pid = self._whereis(msg.to_name)
            mailbox = self._mailbox(pid.id) if pid is not None else None
            if mailbox is not None:
                payload = as_call(self._codec.decode(msg.payload))
                self._stats.received += 1
                mailbox.deliver(payload, msg.sender)
        elif cls is P.CallReply:
            ref = routing.local_ref(msg.ref)
            if ref in self._pending:
                self._pending.resolve(ref, (True, self._codec.decode(msg.payload)))
            elif ref.node != 0 or not inbound.reply(ref, self._codec.decode(msg.payload)):
                extra = self._stats.extra
                extra["late_replies"] = extra.get("late_replies", 0) + 1
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
        elif cls is P.Monitor:
            target = msg.to
            local = self._whereis(target) if isinstance(target, str) else routing.local_target(target)
            if local is None or not inbound.add_monitor(msg.sender, local, msg.ref):
                self._answer(conn, P.Down(target, msg.sender, msg.ref, routing.wire_reason(NOPROC)))
        elif cls is P.Demonitor:
            target = msg.to
            local = self._whereis(target) if isinstance(target, str) else routing.local_target(target)
            if local is not None:
                inbound.remove_monitor(local, msg.ref)
        elif cls is P.Down:
            self._on_down(conn, msg)
        elif cls is P.SpawnRequest:
            self._spawns.on_request(conn, msg)
        elif cls is P.SpawnReply:
            self._spawns.on_reply(msg)
        else:
            log.debug("ignoring %s from %s", cls.__name__, conn.peer_name)

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

    @staticmethod
    def _answer(conn: Connection, msg: Any) -> None:
        try:
            conn.send(msg)
        except LinkDown:
            pass  # the link is going: its NodeDown tells the rest
