"""Metrics: the counters and gauges of a runtime or a node, as one snapshot.

:func:`snapshot` reads what the runtime counts anyway (``system.stats``,
the send budget's count-down, a node's ``node.stats`` and its links'
counters) and adds nothing to the paths a message takes: it is cheap enough
to stay on. The one exception is ``messages_received``: each process's count
of the messages it takes, kept only while the system counts messages
(``ActorSystem(count_messages=True)``, about 5% of a local message; None
otherwise). The web observer, the
Prometheus exporter (:mod:`joerl.metrics.prometheus`, extra
``prometheus``) and tests all read it.

Counters only grow (``*_total`` in Prometheus); gauges are values now.
``mailbox_high_water`` is the deepest mailbox any snapshot has seen (a
sampled high-water mark: a burst between two snapshots can be missed; the
exporter samples at every scrape and :class:`Sampler` more often if asked).
"""

from __future__ import annotations

from typing import Any

import gevent
from gevent.event import Event

from ..node.node import DistributedSystem
from ..system import ActorSystem

__all__ = ["COUNTERS", "GAUGES", "PEER_COUNTERS", "PEER_GAUGES", "Sampler", "snapshot"]

#: The counters of :func:`snapshot`, with what they count.
COUNTERS: dict[str, str] = {
    "processes_spawned": "processes started",
    "processes_exited": "processes ended, for any reason",
    "processes_crashed": "processes that ended with a crash report",
    "restarts": "children restarted by supervisors",
    "messages_sent": "messages sent through send() on this system's thread",
    "messages_received": "messages taken from mailboxes (while the system counts messages)",
    "messages_dropped": "messages dropped, by reason (label reason)",
    "node_messages_sent": "messages sent to other nodes",
    "node_messages_received": "messages received from other nodes",
    "links_up": "node links that came up",
    "links_down": "node links that went down",
    "connects": "dials that brought a link up",
    "connect_failures": "dials that failed",
    "handshakes_failed": "inbound handshakes that failed (wrong cookie, TLS, protocol)",
    "connections_refused": "connections closed unauthenticated (admission, silence, rate)",
    "serialization_errors": "payloads from peers that could not be decoded",
    "tick_timeouts": "links declared down after the peer's silence (missed ticks)",
    "unconfirmed_at_link_down": "messages on links that went down before the peer acknowledged them",
}

#: The gauges of :func:`snapshot`.
GAUGES: dict[str, str] = {
    "processes_alive": "live processes",
    "mailbox_messages": "messages queued in all mailboxes",
    "mailbox_max": "the deepest mailbox now",
    "mailbox_high_water": "the deepest mailbox seen by a snapshot",
    "links_alive": "node links up now",
}

#: Per peer (``snapshot(node)["peers"][name]``): counters and gauges.
PEER_COUNTERS: dict[str, str] = {
    "bytes_in": "bytes received on the link",
    "bytes_out": "bytes written to the link",
    "frames_in": "frames received (ticks excluded)",
    "frames_out": "frames written (ticks included)",
    "bad_frames": "frames dropped as bad",
    "ticks_in": "ticks received",
    "ticks_out": "ticks sent",
    "messages_out": "messages handed to the link",
    "messages_in": "messages taken off the link",
    "acked": "messages the peer acknowledged taking off the link",
}
PEER_GAUGES: dict[str, str] = {
    "queue_bytes": "bytes queued for the link's writer",
    "pending": "messages waiting for the link to come up",
    "silent_for": "seconds since the peer last sent anything",
}


def snapshot(target: ActorSystem | DistributedSystem) -> dict[str, Any]:
    """The counters and gauges of a runtime or a node, now.

    Args:
        target: an :class:`~joerl.ActorSystem` or a
            :class:`~joerl.DistributedSystem` (then the node's counters and
            its links are included).

    Returns:
        A dict: ``"name"`` (the system's or node's name), every key of
        :data:`COUNTERS` and :data:`GAUGES` that applies (``messages_dropped``
        is a dict by reason; the node keys only for a node) and, for a node,
        ``"peers"``: ``{peer name: {key: value}}`` with :data:`PEER_COUNTERS`
        and :data:`PEER_GAUGES`. Every value is a plain int or float.

    Must run in the system's thread (any greenlet of it); it never switches.
    """
    if isinstance(target, DistributedSystem):
        node: DistributedSystem | None = target
        system = target.system
    elif isinstance(target, ActorSystem):
        node, system = None, target
    else:
        raise TypeError(f"metrics of {target!r}: expected an ActorSystem or a DistributedSystem")
    stats = system.stats
    received = stats.ended_received
    queued = deepest = 0
    for pid in system.processes():
        ctx = system.context_of(pid)
        if ctx is None:
            continue
        if ctx._counting:
            received += int(ctx._received)  # (a float: see ActorContext)
        depth = ctx.mailbox_len
        queued += depth
        if depth > deepest:
            deepest = depth
    if deepest > stats.mailbox_high_water:
        stats.mailbox_high_water = deepest
    out: dict[str, Any] = {
        "name": node.node_name if node is not None else system.name,
        "processes_alive": len(system.processes()),
        "processes_spawned": stats.spawned,
        "processes_exited": stats.exited,
        "processes_crashed": stats.crashed,
        "restarts": stats.restarts,
        "messages_sent": system.messages_sent,
        "messages_received": received if system.count_messages else None,
        "messages_dropped": dict(stats.dropped_by_reason),
        "mailbox_messages": queued,
        "mailbox_max": deepest,
        "mailbox_high_water": stats.mailbox_high_water,
    }
    if node is not None:
        out.update(_node(node))
    return out


def _node(node: DistributedSystem) -> dict[str, Any]:
    ns = node.stats
    dropped = {
        "stale_incarnation": ns.dropped_stale,
        "unreachable_node": ns.dropped_unreachable,
        "unknown_node": ns.dropped_unknown_node,
        "too_large": getattr(ns, "dropped_too_large", 0),
    }
    peers = node.link_stats()
    return {
        "node_messages_sent": ns.sent,
        "node_messages_received": ns.received,
        "node_messages_dropped": {k: v for k, v in dropped.items() if v},
        "links_up": ns.links_up,
        "links_down": ns.links_down,
        "links_alive": len(node.nodes("connected")),
        "connects": ns.connects,
        "connect_failures": ns.connect_failures,
        "handshakes_failed": ns.handshakes_failed,
        "connections_refused": ns.refused_connections,
        "serialization_errors": ns.bad_payloads,
        "tick_timeouts": ns.tick_timeouts,
        "unconfirmed_at_link_down": getattr(ns, "unconfirmed_at_link_down", 0),
        "peers": peers,
    }


class Sampler:
    """Takes a :func:`snapshot` every ``interval`` seconds in a greenlet of its
    own, so that ``mailbox_high_water`` sees more than the scrapes do; the
    last snapshot is :attr:`last`. Stop it with :meth:`stop` (a node's
    shutdown does not).

    Args:
        target: the system or node.
        interval: seconds between samples.
    """

    def __init__(self, target: ActorSystem | DistributedSystem, interval: float = 1.0) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.target = target
        self.interval = interval
        self.last: dict[str, Any] = snapshot(target)
        self._stop = Event()
        self._greenlet = gevent.spawn(self._loop)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self.target.closed:
                return
            self.last = snapshot(self.target)

    def stop(self) -> None:
        """Stop sampling (waits for the greenlet to end)."""
        self._stop.set()
        self._greenlet.join()
