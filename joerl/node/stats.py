"""NodeStats: the traffic counters of one node (``node.stats``), shared by its parts."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["NodeStats"]


@dataclass
class NodeStats:
    """Counters of one node's traffic (for tests, benchmarks and operators)."""

    sent: int = 0
    received: int = 0
    dropped_stale: int = 0
    dropped_unreachable: int = 0
    dropped_unknown_node: int = 0
    bad_payloads: int = 0
    connects: int = 0
    connect_failures: int = 0
    refused_connections: int = 0
    extra: dict[str, int] = field(default_factory=dict)
