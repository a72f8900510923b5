"""Admission control for the daemon: per-address limits, and which connection makes room.

Two limits apply to each remote IP address: at most ``max_per_address``
connections served at once (a count of live connections), and at most
``rate_per_address`` new connections per second, in bursts of as many
(a :class:`joerl.ratelimit.KeyedBuckets` token bucket per address). A
connection over either limit is closed unserved; it spends no token.

Loopback peers are exempt from those two limits by default, so a stranger on
the host can open as many connections as the daemon serves. The
:class:`Occupancy` keeps the daemon open to everyone else all the same: it
knows the connections served now, oldest first, and which of them have not
yet sent a whole request ("silent"); when a new connection fills the daemon
(``max_connections``), the oldest silent one is evicted, else the oldest
that holds no registration. A legitimate client sends its request as soon
as it connects, so it is never the oldest silent one; a registration is
never evicted.

No IO and no gevent: the daemon calls :meth:`Admission.admit` when it
accepts a connection and :meth:`Admission.release` when it closes one, and
keeps its connections in an :class:`Occupancy`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ..ratelimit import KeyedBuckets

__all__ = ["Admission", "Occupancy"]

C = TypeVar("C")


class Admission:
    """Per-address limits on connections.

    Args:
        max_per_address: connections served at once from one address.
        rate_per_address: new connections per second from one address; 0 or
            less admits none.
        clock: monotonic seconds (tests inject one).
        max_keys: addresses whose rate is tracked before idle ones are forgotten.
    """

    __slots__ = ("max_per_address", "rate_per_address", "_live", "_rate")

    def __init__(
        self,
        max_per_address: int,
        rate_per_address: float,
        clock: Callable[[], float],
        max_keys: int = 65536,
    ) -> None:
        self.max_per_address = max_per_address
        self.rate_per_address = rate_per_address
        self._live: dict[str, int] = {}  # ip -> connections served now (absent: none)
        self._rate = KeyedBuckets(rate_per_address, max_keys=max_keys, clock=clock) if rate_per_address > 0 else None

    def admit(self, ip: str) -> bool:
        """A connection from ``ip`` arrived: True (and counted) if it is within both limits."""
        live = self._live.get(ip, 0)
        if live >= self.max_per_address or self._rate is None or not self._rate.take(ip):
            return False
        self._live[ip] = live + 1
        return True

    def release(self, ip: str) -> None:
        """A connection :meth:`admit` counted has closed."""
        live = self._live.get(ip, 0) - 1
        if live > 0:
            self._live[ip] = live
        else:
            self._live.pop(ip, None)

    def live(self, ip: str | None = None) -> int:
        """Connections served now from ``ip`` (from every address if None)."""
        if ip is None:
            return sum(self._live.values())
        return self._live.get(ip, 0)


class Occupancy(Generic[C]):
    """The connections served now, oldest first, and which one makes room for a new one.

    Args:
        max_connections: connections served at once; a new connection that
            reaches this many looks for one to evict.
        holds: whether a connection holds a registration (never evicted).

    Raises:
        ValueError: ``max_connections`` is below 1.
    """

    __slots__ = ("max_connections", "evictions", "_holds", "_all", "_silent")

    def __init__(self, max_connections: int, holds: Callable[[C], bool]) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections!r}")
        self.max_connections = max_connections
        #: Connections evicted to make room for newer ones.
        self.evictions = 0
        self._holds = holds
        self._all: dict[C, None] = {}  # oldest first
        self._silent: dict[C, None] = {}  # no whole request yet, oldest first

    def __len__(self) -> int:
        return len(self._all)

    def __iter__(self) -> Iterator[C]:
        return iter(list(self._all))

    def add(self, conn: C) -> C | None:
        """A new connection (silent until :meth:`heard`).

        Returns:
            The connection to evict to make room for it (close it; it is
            forgotten here at once), or None: not full, or nothing evictable
            (every other connection holds a registration).
        """
        self._all[conn] = None
        self._silent[conn] = None
        if len(self._all) < self.max_connections:
            return None
        victim = next((c for c in self._silent if c is not conn), None)
        if victim is None:
            victim = next((c for c in self._all if c is not conn and not self._holds(c)), None)
        if victim is not None:
            self.discard(victim)
            self.evictions += 1
        return victim

    def heard(self, conn: C) -> None:
        """``conn`` sent a whole request: it is no longer silent."""
        self._silent.pop(conn, None)

    def discard(self, conn: C) -> None:
        """``conn`` is closed."""
        self._all.pop(conn, None)
        self._silent.pop(conn, None)
