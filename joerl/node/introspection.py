"""A node's introspection: snapshots of its links, and the read-only service its peers query.

Every node (unless started with ``introspection=False``) runs a GenServer
registered as :data:`SERVICE`. It answers only the queries of
:data:`QUERIES`, each read-only but one (``count_messages`` turns the node's
message counts on or off: what the rates of ``joerl ps``, ``joerl top`` and
the observer need; see ``ActorSystem.count_messages`` for its cost);
anything else is refused. The requests and answers are plain terms (pids
are mapped at the wire boundary as any pid)::

    ("processes",)          -> ("ok", [process_info map, ...])
    ("process_info", pid)   -> ("ok", process_info map | None)
    ("node_info",)          -> ("ok", node_info map)
    ("get_state", pid)      -> ("ok", repr of the state) | ("error", why)
    ("metrics",)            -> ("ok", joerl.metrics.snapshot of the node)
    ("messages", pid)       -> ("ok", [repr of each of the first 20 queued messages] | None)
    ("count_messages", on)  -> ("ok", whether counts were on before)
    anything else           -> ("error", "not_allowed", what)

``get_state`` asks the process with a sys-style call (:mod:`joerl.sys_calls`),
so only GenServers and GenStatems answer it; the state travels as its
``repr`` (cut to :data:`MAX_STATE_REPR` characters), never as the object.

:class:`Introspection` (``node.introspection``) is the user's side: the same
snapshots of this node, or of another node through its service
(``introspection.processes("b@host")``); ``joerl ps``, ``joerl top`` and the
web observer use it from a hidden node.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from time import monotonic
from typing import TYPE_CHECKING, Any

from .. import gen_server, sys_calls
from ..actor import ActorContext
from ..errors import IntrospectionError
from ..gen_server import GenServer, NoReply, Reply
from ..introspect import (
    ProcessInfo,
    SystemInfo,
    as_dict,
    process_info,
    process_info_from,
    processes_info,
    queued_messages,
    system_info,
    system_info_from,
)
from ..pid import Pid
from ..ratelimit import TokenBucket

if TYPE_CHECKING:
    from .node import DistributedSystem
    from .peers import Peer, PeerTable

__all__ = ["MAX_STATE_REPR", "QUERIES", "SERVICE", "Introspection", "NodeReport", "PeerInfo"]

log = logging.getLogger("joerl.node")

#: The registered name of every node's introspection service.
SERVICE = "joerl_introspection"
#: What the service answers (the allow-list); every query is read-only.
QUERIES = frozenset({"processes", "process_info", "node_info", "get_state", "metrics", "messages", "count_messages"})
#: The longest state ``repr`` the service sends.
MAX_STATE_REPR = 4000


@dataclass(frozen=True)
class PeerInfo:
    """One peer of a node, as its link stands.

    Attributes:
        name: the peer node's name.
        state: ``"up"``, ``"dialing"``, ``"backing_off"`` or ``"idle"``.
        hidden: the link is hidden (either side is a hidden node).
        bytes_in, bytes_out, frames_in, frames_out: the link's traffic (0 without a link).
        queue_bytes: bytes queued on the link, not yet written.
        pending: messages waiting for the link to come up.
        silent_for: seconds since the peer was last heard (a frame or a tick), None without a link.
    """

    name: str
    state: str
    hidden: bool
    bytes_in: int
    bytes_out: int
    frames_in: int
    frames_out: int
    queue_bytes: int
    pending: int
    silent_for: float | None


@dataclass(frozen=True)
class NodeReport:
    """A node as a whole: its runtime, its links, its counters, its names.

    Attributes:
        node: the node's name; ``hidden``: whether it joined hidden.
        system: its runtime (:class:`~joerl.introspect.SystemInfo`).
        peers: its links (:class:`PeerInfo`), sorted by name.
        global_names: the cluster-wide names it knows, with their pids.
        stats: its traffic counters (``node.stats``: sent, received, dropped ...).
    """

    node: str
    hidden: bool
    system: SystemInfo
    peers: tuple[PeerInfo, ...]
    global_names: tuple[tuple[str, Pid], ...]
    stats: dict[str, Any]


def peer_info(peer: Peer) -> PeerInfo:
    """What :class:`PeerInfo` says of ``peer`` now."""
    link = peer.link
    stats = link.stats if link is not None else None
    return PeerInfo(
        name=peer.name,
        state=peer.state(monotonic()),
        hidden=peer.hidden,
        bytes_in=stats.bytes_in if stats else 0,
        bytes_out=stats.bytes_out if stats else 0,
        frames_in=stats.frames_in if stats else 0,
        frames_out=stats.frames_out if stats else 0,
        queue_bytes=link.queued_bytes if link is not None else 0,
        pending=len(peer.pending),
        silent_for=round(link.silent_for, 3) if link is not None else None,
    )


def report_as_dict(report: NodeReport) -> dict[str, Any]:
    """``report`` as plain terms (what the service sends, what the observer serves)."""
    return {
        "node": report.node,
        "hidden": report.hidden,
        "system": as_dict(report.system),
        "peers": [asdict(p) for p in report.peers],
        "global_names": [list(item) for item in report.global_names],
        "stats": dict(report.stats),
    }


def report_from(terms: Any) -> NodeReport:
    """A :class:`NodeReport` from what :func:`report_as_dict` gave.

    Raises:
        ValueError: ``terms`` is not such a map.
    """
    try:
        peers = tuple(PeerInfo(**{f.name: p[f.name] for f in fields(PeerInfo)}) for p in terms["peers"])
        return NodeReport(
            node=str(terms["node"]),
            hidden=bool(terms["hidden"]),
            system=system_info_from(terms["system"]),
            peers=peers,
            global_names=tuple((str(n), p) for n, p in terms["global_names"]),
            stats=dict(terms["stats"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a node_info map: {exc}") from None


class Introspection:
    """Snapshots of a node and, through their services, of its peers (``node.introspection``).

    Args:
        node: the node.
        peers: its peer table.
        serve: run the service that answers peers' queries.
    """

    def __init__(self, node: DistributedSystem, peers: PeerTable, *, serve: bool = True) -> None:
        self._node = node
        self._peers = peers
        self.service: Pid | None = None
        if serve:
            self.service = gen_server.start(node.system, _Service(self), name=SERVICE).pid

    def _is_self(self, node: str | None) -> bool:
        """Whether ``node`` names this node (None does; so does its name without ``@host``)."""
        name = self._node.node_name
        return node is None or node == name or ("@" not in node and node == name.partition("@")[0])

    def processes(self, node: str | None = None, timeout: float = 5.0) -> list[ProcessInfo]:
        """Every process of ``node`` (None: this one), oldest first.

        Raises:
            IntrospectionError: the node refused or sent something else (see :meth:`query`).
            NodeUnreachable, CallTimeout, CallError: as for any call to that node's service.
        """
        if self._is_self(node):
            return processes_info(self._node.system)
        return [process_info_from(t) for t in self.query(node, ("processes",), timeout)]

    def count_messages(self, node: str | None = None, on: bool = True, timeout: float = 5.0) -> bool:
        """Turn ``node``'s message counts on (or off); whether they were on before.

        The per-process counts (``ProcessInfo.received``/``sent``) and the
        metrics' ``messages_received`` are kept only while they are on (see
        ``ActorSystem.count_messages``).

        Raises:
            IntrospectionError, NodeUnreachable, CallTimeout, CallError: as for :meth:`processes`.
        """
        if self._is_self(node):
            system = self._node.system
            before, system.count_messages = system.count_messages, on
            return before
        return bool(self.query(node, ("count_messages", bool(on)), timeout))

    def process_info(self, pid: Pid, timeout: float = 5.0) -> ProcessInfo | None:
        """Process ``pid`` of any node (its own node is asked), or None if it is not alive."""
        if pid.node == 0 or pid.node == self._node.node_id:
            return process_info(self._node.system, pid)
        node = self._node.node_of(pid)
        if node is None:
            return None
        terms = self.query(node, ("process_info", pid), timeout)
        return None if terms is None else process_info_from(terms)

    def node_info(self, node: str | None = None, timeout: float = 5.0) -> NodeReport:
        """``node`` (None: this one) as a whole: runtime, links, counters, global names."""
        if self._is_self(node):
            return self.local_report()
        return report_from(self.query(node, ("node_info",), timeout))

    def messages(self, pid: Pid, timeout: float = 5.0) -> list[str] | None:
        """The ``repr`` of the first 20 messages queued for ``pid`` (of any node); None if it is not alive."""
        if pid.node == 0 or pid.node == self._node.node_id:
            return queued_messages(self._node.system, pid)
        node = self._node.node_of(pid)
        found: list[str] | None = None if node is None else self.query(node, ("messages", pid), timeout)
        return found

    def metrics(self, node: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        """``node``'s (None: this one's) counters and gauges, :func:`joerl.metrics.snapshot`."""
        if self._is_self(node):
            return _snapshot(self._node)
        answer: dict[str, Any] = self.query(node, ("metrics",), timeout)
        return answer

    def get_state(self, pid: Pid, timeout: float = 5.0) -> str:
        """The ``repr`` of a GenServer's or GenStatem's state, of any node (a sys-style call).

        Raises:
            IntrospectionError: the process answered no state (not a behaviour, or dead).
        """
        if pid.node == 0 or pid.node == self._node.node_id:
            answer = _state_of(self._node.system, pid, timeout)
        else:
            node = self._node.node_of(pid)
            answer = ("error", "unknown node") if node is None else self._call(node, ("get_state", pid), timeout)
        if isinstance(answer, tuple) and len(answer) == 2 and answer[0] == "ok":
            return str(answer[1])
        raise IntrospectionError(
            f"no state for {pid}: {answer[1] if isinstance(answer, tuple) and len(answer) > 1 else answer}"
        )

    def local_report(self) -> NodeReport:
        """This node's :class:`NodeReport`."""
        node = self._node
        gn = node.global_names
        names = tuple((n, p) for n in gn.registered() if (p := gn.whereis(n)) is not None) if gn is not None else ()
        return NodeReport(
            node=node.node_name,
            hidden=node.hidden,
            system=system_info(node.system),
            peers=tuple(peer_info(p) for p in sorted(self._peers, key=lambda p: p.name)),
            global_names=names,
            stats={k: v for k, v in asdict(node.stats).items() if isinstance(v, int)},
        )

    def query(self, node: str | None, request: tuple[Any, ...], timeout: float = 5.0) -> Any:
        """Ask ``node``'s service ``request`` (see the module docstring); the value it answered.

        Raises:
            IntrospectionError: the service refused the query or answered something else.
            NodeUnreachable, CallTimeout, CallError: as for any call.
        """
        answer = self._call(node, request, timeout)
        if isinstance(answer, tuple) and len(answer) == 2 and answer[0] == "ok":
            return answer[1]
        raise IntrospectionError(f"node {node!r} answered {request!r:.100} with {answer!r:.200}")

    def _call(self, node: str | None, request: tuple[Any, ...], timeout: float) -> Any:
        return self._node.system.call((SERVICE, node), request, timeout)


def _snapshot(node: DistributedSystem) -> dict[str, Any]:
    from ..metrics import snapshot  # (joerl.metrics imports the node: only when asked)

    return snapshot(node)


def _state_of(system: Any, pid: Pid, timeout: float) -> tuple[str, str]:
    try:
        state = sys_calls.get_state(pid, timeout, system=system)
    except Exception as exc:  # noqa: BLE001 - the asker gets the reason
        return ("error", f"{type(exc).__name__}: {exc}")
    text = repr(state)
    return ("ok", text if len(text) <= MAX_STATE_REPR else text[: MAX_STATE_REPR - 3] + "...")


class _Service(GenServer):
    """The introspection service of one node (every callback runs in its process)."""

    def __init__(self, introspection: Introspection) -> None:
        self.introspection = introspection
        #: Queries refused (not allow-listed).
        self.refused = 0
        self._refusal_log = TokenBucket(0.1, 1.0)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply | NoReply:
        what = request[0] if isinstance(request, tuple) and request else request
        if not isinstance(request, tuple) or what not in QUERIES:
            self.refused += 1
            if self._refusal_log.take():  # at most one line every 10 s
                log.warning(
                    "introspection: refused %.100r from %s (%d refused in all)", request, from_[0], self.refused
                )
            return Reply(("error", "not_allowed", what if isinstance(what, (str, int)) else repr(what)[:100]))
        system = self.introspection._node.system
        if what == "processes":
            return Reply(("ok", [as_dict(i) for i in processes_info(system)]))
        if what == "node_info":
            return Reply(("ok", report_as_dict(self.introspection.local_report())))
        if what == "metrics":
            return Reply(("ok", _snapshot(self.introspection._node)))
        if what == "count_messages":
            if len(request) != 2 or not isinstance(request[1], bool):
                return Reply(("error", "badarg", "True or False"))
            before, system.count_messages = system.count_messages, request[1]
            return Reply(("ok", before))
        pid = request[1] if len(request) == 2 else None
        if not isinstance(pid, Pid) or pid.node != 0:
            return Reply(("error", "badarg", "a pid of this node"))
        if what == "process_info":
            info = process_info(system, pid)
            return Reply(("ok", None if info is None else as_dict(info)))
        if what == "messages":
            return Reply(("ok", queued_messages(system, pid)))
        # get_state: a call to that process, from a helper so that this server never waits.
        self.ctx.spawn(_answer_state, pid, from_)
        return NoReply()


def _answer_state(ctx: ActorContext, pid: Pid, from_: Any) -> None:
    ctx.system.reply(from_, _state_of(ctx.system, pid, 5.0))
