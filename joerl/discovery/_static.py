"""The static strategy: a fixed list of node names (libcluster's Epmd strategy)."""

from __future__ import annotations

from collections.abc import Iterable

from ._strategy import DEFAULT_INTERVAL, DEFAULT_MAX_NODES, Discovery

__all__ = ["StaticDiscovery"]


class StaticDiscovery(Discovery):
    """Always the same node names: the node connects to each, and again after it drops.

    Args:
        names: the node names of the cluster (this node's own may be among them).
        interval: seconds between two rounds (a node that went is dialled again then).
        max_nodes: the most names used.
    """

    def __init__(
        self, names: Iterable[str], *, interval: float = DEFAULT_INTERVAL, max_nodes: int = DEFAULT_MAX_NODES
    ) -> None:
        super().__init__(interval=interval, max_nodes=max_nodes)
        self.names = list(names)

    def __repr__(self) -> str:
        return f"<StaticDiscovery {len(self.names)} names>"

    def nodes(self) -> list[str]:
        return self.names
