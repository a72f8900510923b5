"""Remote spawn: factories peers may start here, and starting theirs from here.

No code travels and nothing is pickled: a node registers factories by name
(:meth:`Spawner.register_factory`) and a peer asks for one with arguments
(``SpawnRequest``). With ``link`` or ``monitor`` the spawning node sets the
link or monitor up before the child can run, and the requester records its
side (``Inbound.record_link`` / ``record_monitor``) when the ``SpawnReply``
is read, before any later frame from that node (the child's exit) is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import DistributionError, LinkDown
from ..pid import SYSTEM_PID, Pid, Ref
from . import protocol as P

if TYPE_CHECKING:
    from ..system import ActorSystem
    from .connection import Connection
    from .routing import Routing

__all__ = ["Spawner"]

log = logging.getLogger("joerl.node")


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
        self._requests: dict[Ref, tuple[Pid | None, bool, bool]] = {}  # ref -> (requester, link, monitor)

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
        refs: list[Ref] = []

        def request(gref: Ref) -> Any:
            ref = routing.local_ref(gref)
            refs.append(ref)
            self._requests[ref] = (requester, link, monitor)
            return P.SpawnRequest(gref, sender, name, payload, link, monitor)

        try:
            result = routing.request(peer, request, timeout)
        finally:
            for ref in refs:
                self._requests.pop(ref, None)
        if result is None or not result[0]:
            raise DistributionError(
                f"spawning {name!r} on node {node!r} failed: no answer within {timeout}s or the link was lost"
            )
        value = result[1]
        if not isinstance(value, Pid):
            raise DistributionError(f"spawning {name!r} on node {node!r} failed: {value}")
        return (value, refs[0]) if monitor else value

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
        """Our ``SpawnReply``: record the link or monitor before any later frame is read."""
        routing = self._routing
        ref = routing.local_ref(msg.ref)
        entry = self._requests.get(ref)
        result = msg.result
        if entry is not None and isinstance(result, Pid):
            requester, link, monitor = entry
            if requester is not None:
                if link:
                    routing.inbound.record_link(requester, result)
                if monitor:
                    routing.inbound.record_monitor(requester, ref, result)
        routing.pending.resolve(ref, (True, result))
