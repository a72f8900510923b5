"""Admission control for the daemon: per remote address, live connections and a connection rate.

Two limits apply to each remote IP address: at most ``max_per_address``
connections served at once (a count of live connections), and at most
``rate_per_address`` new connections per second, in bursts of as many
(a :class:`joerl.ratelimit.KeyedBuckets` token bucket per address). A
connection over either limit is closed unserved; it spends no token.

No IO and no gevent: the daemon calls :meth:`Admission.admit` when it
accepts a connection and :meth:`Admission.release` when it closes one.
"""

from __future__ import annotations

from collections.abc import Callable

from ..ratelimit import KeyedBuckets

__all__ = ["Admission"]


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
