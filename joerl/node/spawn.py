"""Remote spawn: factories peers may start here, and starting theirs from here.

No code travels and nothing is pickled: a node registers factories by name
(:meth:`Spawner.register_factory`) and a peer asks for one with arguments
(``SpawnRequest``). With ``link`` or ``monitor`` the spawning node sets the
link or monitor up before the child can run, and the requester records its
side (``Inbound.record_link`` / ``record_monitor``) when the ``SpawnReply``
is read, before any later frame from that node (the child's exit) is.

``link=True`` is atomic, as ``spawn_link``: no child stays linked to a process
that has ended. The requester is watched while the spawn is in flight; if it
ends before the reply is read (killed while waiting, say), the child gets the
exit signal with the requester's exit reason as soon as both are known. A
request the requester gives up on while alive (no answer in time) is
abandoned as Erlang's ``spawn_request_abandon`` says: a linked child gets
the exit signal ``abandoned``, a monitor is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import gevent

from ..errors import DistributionError, LinkDown
from ..message import NOPROC
from ..pid import SYSTEM_PID, Pid, Ref
from . import protocol as P

if TYPE_CHECKING:
    from ..system import ActorSystem
    from .connection import Connection
    from .peers import Peer
    from .routing import Routing

__all__ = ["ABANDONED", "Spawner"]

log = logging.getLogger("joerl.node")

#: The exit signal a linked child gets when its requester gave up on the spawn (Erlang's).
ABANDONED: Final = "abandoned"


class _Request:
    """One remote spawn in flight, from the request until its reply is read."""

    __slots__ = ("requester", "link", "monitor", "node", "watch", "abandoned", "reason", "child")

    def __init__(self, requester: Pid | None, link: bool, monitor: bool, node: str) -> None:
        self.requester = requester
        self.link = link
        self.monitor = monitor
        self.node = node
        #: The runtime monitor of the requester (link=True), while it is needed.
        self.watch: Ref | None = None
        #: The requester no longer waits for the reply.
        self.abandoned = False
        #: The exit signal the child gets, once known (the requester's exit reason, or "abandoned").
        self.reason: Any = None
        #: The child, once the reply is read.
        self.child: Pid | None = None


class Spawner:
    """Remote spawn for one node (see the module docstring).

    Args:
        system: the node's actor system (its public API).
        routing: the node's routing (pid mapping, codec, pending waits, Inbound).
        connect: ``connect(node_name)`` makes sure a link is up (raises NodeUnreachable).
    """

    def __init__(self, system: ActorSystem, routing: Routing, connect: Callable[[str], Any]) -> None:
        self._system = system
        self._routing = routing
        self._connect = connect
        self._factories: dict[str, tuple[Callable[..., Any], bool]] = {}
        self._requests: dict[Ref, _Request] = {}  # spawns in flight (and abandoned ones not answered yet)
        routing.peer_lost_hooks.append(self._peer_lost)

    @property
    def in_flight(self) -> int:
        """Spawns requested from here whose reply has not been read (abandoned ones included)."""
        return len(self._requests)

    def register_factory(self, name: str, factory: Callable[..., Any], *, function: bool = False) -> None:
        """Let peers spawn ``factory`` here by ``name`` (see ``DistributedSystem.register_factory``)."""
        if not callable(factory):
            raise TypeError(f"factory {name!r} must be callable")
        self._factories[name] = (factory, function)

    def spawn_local(self, name: str, args: tuple[Any, ...]) -> Pid:
        """Start the factory registered as ``name`` on this node.

        Raises:
            DistributionError: no such factory.
        """
        entry = self._factories.get(name)
        if entry is None:
            raise DistributionError(f"no factory {name!r} registered on node {self._routing.node_name!r}")
        factory, function = entry
        if function:
            return self._system.spawn_fn(factory, *args).pid
        return self._system.spawn(factory(*args)).pid

    def spawn_remote(
        self, node: str, name: str, args: tuple[Any, ...], link: bool, monitor: bool, caller: Any, timeout: float
    ) -> Any:
        """``DistributedSystem.spawn_remote`` (its docstring says it all)."""
        system = self._system
        requester: Pid | None = getattr(caller, "pid", caller)
        if (link or monitor) and (requester is None or system.context_of(requester) is None):
            raise ValueError("link/monitor need a live local caller process (pass caller=ctx)")
        if node == self._routing.node_name:
            pid = self.spawn_local(name, args)
            if link:
                system.link(requester, pid)
            if monitor:
                return pid, system.monitor(requester, pid)
            return pid
        self._connect(node)
        routing = self._routing
        peer = routing.peers.peer(node)
        sender = routing.glob_pid(requester or SYSTEM_PID)
        payload = routing.codec.encode(tuple(args))
        req = _Request(requester, link, monitor, node)
        refs: list[Ref] = []

        def request(gref: Ref) -> Any:
            ref = routing.local_ref(gref)
            refs.append(ref)
            self._requests[ref] = req
            if link and requester is not None:
                req.watch = system.monitor_callback(
                    requester, lambda _r, _p, reason: self._requester_ended(ref, reason)
                )
            return P.SpawnRequest(gref, sender, name, payload, link, monitor)

        try:
            result = routing.request(peer, request, timeout)
        except BaseException as exc:
            # Interrupted: an exit signal ends the requester (the child gets its
            # exit reason), or the caller gave up (gevent.Timeout, ...).
            for ref in refs:
                self._abandon(ref, req, dying=not isinstance(exc, (Exception, gevent.Timeout)))
            raise
        if req.child is not None:
            result = (True, req.child)  # read, even if the wait timed out just before
        for ref in refs:
            if result is None:
                self._abandon(ref, req, dying=False)  # no answer in time: it may still come
            elif self._requests.pop(ref, None) is not None:
                self._unwatch(req)  # failed with the link (or its dial): no answer will come
        if result is None or not result[0]:
            raise DistributionError(
                f"spawning {name!r} on node {node!r} failed: no answer within {timeout}s or the link was lost"
            )
        value = result[1]
        if not isinstance(value, Pid):
            raise DistributionError(f"spawning {name!r} on node {node!r} failed: {value}")
        return (value, refs[0]) if monitor else value

    def _unwatch(self, req: _Request) -> None:
        if req.watch is not None and req.requester is not None:
            self._system.demonitor_callback(req.watch, req.requester)
        req.watch = None

    def _abandon(self, ref: Ref, req: _Request, dying: bool) -> None:
        """The requester no longer waits for the reply under ``ref`` (if not read yet).

        ``dying``: it is being ended; the child gets its exit reason when it
        is known. Else it gave up alive: a linked child gets ``abandoned``.
        """
        if self._requests.get(ref) is not req:
            return  # the reply was read: the link and monitor are recorded
        req.abandoned = True
        if req.link and req.reason is None and not dying:
            req.reason = ABANDONED
            self._unwatch(req)

    def _requester_ended(self, ref: Ref, reason: Any) -> None:
        """The monitor callback of a linking requester (runs in the greenlet that ends it)."""
        req = self._requests.get(ref)
        if req is None:
            return
        req.watch = None
        if req.reason is None:
            req.reason = reason
        if req.child is not None:  # its reply was read while the requester was ending
            del self._requests[ref]
            self._routing.route_link_exit(req.requester or SYSTEM_PID, req.child, req.reason)

    def _peer_lost(self, peer: Peer) -> None:
        """``peer``'s link or dial is lost: no reply will come (its children got ``noconnection`` there)."""
        for ref, req in list(self._requests.items()):
            if req.node == peer.name:
                del self._requests[ref]
                self._unwatch(req)

    def on_request(self, conn: Connection, msg: Any) -> None:
        """A peer's ``SpawnRequest`` (its link's reader greenlet)."""
        routing = self._routing
        try:
            pid = self.spawn_local(msg.factory, tuple(routing.codec.decode(msg.args)))
        except Exception as exc:  # noqa: BLE001 - the error goes back to the caller
            reply = P.SpawnReply(msg.ref, msg.sender, f"{type(exc).__name__}: {exc}")
        else:
            # The child has not run yet: link and monitor before it can exit.
            if msg.link:
                routing.inbound.add_link(pid, msg.sender)
            if msg.monitor:
                routing.inbound.add_monitor(msg.sender, pid, msg.ref)
            reply = P.SpawnReply(msg.ref, msg.sender, routing.glob_pid(pid))
        try:
            conn.send(reply)
        except LinkDown:
            pass  # the requester learns of it from the link's loss

    def on_reply(self, msg: Any) -> None:
        """Our ``SpawnReply``: record the link or monitor before any later frame is read.

        A child whose requester has ended, or abandoned the request, gets
        the exit signal at once (or as soon as the requester's reason is known).
        """
        routing = self._routing
        ref = routing.local_ref(msg.ref)
        req = self._requests.get(ref)
        result = msg.result
        if req is not None and isinstance(result, Pid):
            req.child = result
            requester = req.requester
            if req.abandoned:
                if req.monitor and requester is not None:
                    routing.route_demonitor(requester, result, ref)
                if req.link and req.reason is None:
                    return  # the requester is ending: _requester_ended sends its reason
            elif requester is not None:
                if req.monitor:
                    routing.inbound.record_monitor(requester, ref, result)
                if req.link:
                    self._unwatch(req)
                    if req.reason is None and not routing.inbound.record_link(requester, result):
                        req.reason = NOPROC  # it had ended unwatched (Erlang's answer to a link to the dead)
            if req.link and req.reason is not None:
                routing.route_link_exit(requester or SYSTEM_PID, result, req.reason)
        self._requests.pop(ref, None)
        routing.pending.resolve(ref, (True, result))
