"""NodeStats: the traffic counters of one node (``node.stats``), shared by its parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["NodeStats", "link_counters"]


@dataclass
class NodeStats:
    """Counters of one node's traffic (for tests, benchmarks and operators)."""

    #: Messages handed to links. The rest of a burst from one process to one
    #: remote process joins its open batch without the per-message path
    #: (``Routing.route_send``'s lane) and is counted as that batch closes
    #: (written, or dropped with its link): during a burst ``sent`` and a
    #: link's ``messages_out`` may be one batch behind.
    sent: int = 0
    received: int = 0
    dropped_stale: int = 0
    dropped_unreachable: int = 0
    dropped_unknown_node: int = 0
    #: Messages queued while a link came up that proved over the peer's size
    #: limit (``max_frame``) once it announced it: dropped, logged.
    dropped_too_large: int = 0
    bad_payloads: int = 0
    connects: int = 0
    connect_failures: int = 0
    refused_connections: int = 0
    #: Links that came up and went down (either direction), inbound
    #: handshakes that failed (a wrong cookie, TLS), links declared down
    #: after the peer's silence (missed ticks).
    links_up: int = 0
    links_down: int = 0
    handshakes_failed: int = 0
    tick_timeouts: int = 0
    #: Messages handed to links that went down before the peer acknowledged
    #: them (lost, or delivered within the last ack interval; ``FLAG_ACK``
    #: links only). Not counted in any ``dropped_*``.
    unconfirmed_at_link_down: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def link_counters(peer: Any) -> dict[str, Any]:
    """A peer's link as plain numbers (its :class:`~joerl.node.connection.LinkStats`,
    its queues, its silence); ``peer`` is a :class:`~joerl.node.peers.Peer` with a link."""
    link = peer.link
    s = link.stats
    return {
        "bytes_in": s.bytes_in,
        "bytes_out": s.bytes_out,
        "frames_in": s.frames_in,
        "frames_out": s.frames_out,
        "bad_frames": s.bad_frames,
        "ticks_in": s.ticks_in,
        "ticks_out": s.ticks_out,
        "messages_out": link.outbound.handed,
        "messages_in": link.messages_in,
        "acked": link.inbound.acked,
        "queue_bytes": link.queued_bytes,
        "pending": len(peer.pending),
        "silent_for": round(link.silent_for, 3),
    }
