"""The discovery contract: what a strategy offers the node's discovery loop.

A strategy answers one question, "which nodes should be in the cluster?", as
an iterable of node names (:meth:`Discovery.nodes`). The loop
(:class:`~joerl.discovery.DiscoveryLoop`) asks it every ``interval`` seconds,
or at once when the strategy sets its :attr:`~Discovery.changed` event (a
watch fired, a beacon arrived), validates and bounds what it answers, and
connects and disconnects. A strategy that cannot ask its source raises: the
loop keeps the cluster as it is and asks again with back-off.

Strategies that take part themselves (register a key, send beacons) do so
between :meth:`~Discovery.start` and :meth:`~Discovery.stop`, which the loop
calls with the node's :class:`Member` card.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gevent.event import Event
from zope.interface import Attribute, Interface, classImplements

__all__ = ["DEFAULT_INTERVAL", "DEFAULT_MAX_NODES", "Discovery", "IDiscovery", "Member"]

#: Seconds between two questions to a source (a strategy may be asked sooner).
DEFAULT_INTERVAL = 5.0
#: The most node names the loop takes from one answer (the rest are left out, logged once).
DEFAULT_MAX_NODES = 1000


@dataclass(frozen=True)
class Member:
    """This node as a strategy that registers it sees it.

    Attributes:
        name: the node's full name.
        host: the host peers dial (the node's ``advertise_host``).
        port: the node's listening port.
        cookie: the node's cookie (what a beacon is signed with); never printed.
    """

    name: str
    host: str
    port: int
    cookie: bytes = field(repr=False)


class IDiscovery(Interface):  # type: ignore[misc]  # zope.interface ships no types
    """What the discovery loop asks of a strategy (see :class:`Discovery`)."""

    interval = Attribute("seconds between two calls of nodes()")
    max_nodes = Attribute("the most names taken from one answer")
    changed = Attribute("a gevent Event the strategy sets to be asked at once")

    def start(member: Member) -> None:  # a zope method: no self
        """The node is up: take part (register, send beacons); no blocking IO."""

    def nodes() -> Iterable[str]:  # type: ignore[misc,empty-body]  # a zope method: no self, no body
        """The node names that should be in the cluster now; raises if the source cannot be asked."""

    def stop() -> None:  # type: ignore[misc]  # a zope method: no self
        """The node is going: stop taking part (unregister, stop greenlets)."""


class Discovery:
    """The base of every strategy (implements :class:`IDiscovery`).

    Subclasses override :meth:`nodes`, and :meth:`start` / :meth:`stop` when
    they take part themselves.

    Args:
        interval: seconds between two calls of :meth:`nodes` (positive).
        max_nodes: the most names the loop takes from one answer (positive).

    Raises:
        ValueError: ``interval`` or ``max_nodes`` is not positive.
    """

    def __init__(self, *, interval: float = DEFAULT_INTERVAL, max_nodes: int = DEFAULT_MAX_NODES) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
            raise ValueError(f"max_nodes must be a positive int, got {max_nodes!r}")
        self.interval = float(interval)
        self.max_nodes = max_nodes
        #: Set by the strategy (from any greenlet) to be asked :meth:`nodes` at once.
        self.changed = Event()
        #: The node this strategy serves, once started.
        self.member: Member | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} interval={self.interval}>"

    def start(self, member: Member) -> None:
        """Called once by the loop when the node is up (in the node's greenlet; must not block).

        Args:
            member: this node's card.
        """
        self.member = member

    def nodes(self) -> Iterable[str]:
        """The node names that should be in the cluster now (called from the loop's greenlet).

        Returns:
            Node names; the loop validates them, leaves out this node's own
            name and takes at most ``max_nodes``.

        Raises:
            Exception: any, when the source cannot be asked (the loop keeps the
                cluster as it is and asks again with back-off).
        """
        raise NotImplementedError

    def stop(self) -> None:
        """Called once by the loop when the node shuts down (may do short IO)."""


classImplements(Discovery, IDiscovery)
