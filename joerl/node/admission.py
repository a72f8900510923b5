"""Admission of inbound connections: per source address, counting only unfinished handshakes.

Erlang has no global gate on its listener, and a node must not have one that
strangers can fill: 64 idle sockets reopened a few times a second used to
lock every legitimate peer out. So:

* a handshake costs a slot only while it is unfinished; a finished one (a
  link) costs nothing, so any number of peers may mesh from one address;
* each source address has its own bound of unfinished handshakes
  (``max_per_address``) and its own rate of new connections
  (``rate_per_address``, a :class:`~joerl.ratelimit.KeyedBuckets`), spent
  only by connections that arrive while that address has handshakes
  unfinished: a flood from one address exhausts that address only, and
  nodes that link one after another (however fast) spend nothing;
* all addresses together have a generous bound (``max_total``); past it (or
  past an address's own bound) the *oldest silent* handshake is evicted to
  make room: the oldest that has sent nothing yet, else the oldest unfinished.
  A legitimate peer finishes in a round trip or two, so it is never the oldest.

Nothing here does IO: a :class:`Ticket` carries the callable that evicts its
connection (the links shut its socket down), and the clock is injected.
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic

from ..ratelimit import KeyedBuckets

__all__ = ["Admission", "Ticket"]


class Ticket:
    """One admitted connection whose handshake is unfinished.

    Args:
        host: the source address.
        evict: closes the connection (called at most once, by :class:`Admission`).
        since: when it was admitted (monotonic seconds).
    """

    __slots__ = ("host", "evict", "since", "heard", "evicted")

    def __init__(self, host: str, evict: Callable[[], None], since: float) -> None:
        self.host = host
        self.evict = evict
        self.since = since
        #: The peer has sent its first bytes.
        self.heard = False
        #: Evicted to make room for a newer connection.
        self.evicted = False


class Admission:
    """Who may start a handshake now (see the module docstring).

    Args:
        max_total: unfinished handshakes from all addresses at once (past it,
            the oldest silent one is evicted).
        max_per_address: unfinished handshakes from one address at once
            (past it, that address's oldest silent one is evicted).
        rate_per_address: new connections per second from one address while
            it has handshakes unfinished (in bursts of
            ``max(rate_per_address, max_per_address)``); more are refused.
        clock: monotonic seconds.

    Raises:
        ValueError: a bound or the rate is not positive.
    """

    def __init__(
        self,
        max_total: int,
        max_per_address: int,
        rate_per_address: float,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        if max_total < 1 or max_per_address < 1 or rate_per_address <= 0:
            raise ValueError(
                "the handshake bounds and the connection rate must be positive, got "
                f"max_total={max_total!r}, max_per_address={max_per_address!r}, rate={rate_per_address!r}"
            )
        self.max_total = max_total
        self.max_per_address = max_per_address
        self._rate = KeyedBuckets(rate_per_address, max(rate_per_address, float(max_per_address)), clock=clock)
        self._clock = clock
        self._open: dict[Ticket, None] = {}  # in admission order (oldest first)
        self._by_host: dict[str, dict[Ticket, None]] = {}
        #: Connections refused by an address's rate, and handshakes evicted.
        self.refused = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._open)

    def from_host(self, host: str) -> int:
        """Unfinished handshakes from ``host`` now."""
        return len(self._by_host.get(host, ()))

    def admit(self, host: str, evict: Callable[[], None]) -> Ticket | None:
        """Admit a new connection from ``host``, evicting an old silent one if need be.

        Args:
            host: the source address.
            evict: closes this connection should it be evicted later.

        Returns:
            Its :class:`Ticket` (give it back to :meth:`done`), or None when
            ``host`` is over its connection rate (close it at once).
        """
        mine = self._by_host.get(host)
        if mine and not self._rate.take(host):
            self.refused += 1
            return None
        if mine is not None and len(mine) >= self.max_per_address:
            self._evict(_oldest_silent(mine))
        if len(self._open) >= self.max_total:
            self._evict(_oldest_silent(self._open))
        ticket = Ticket(host, evict, self._clock())
        self._open[ticket] = None
        self._by_host.setdefault(host, {})[ticket] = None
        return ticket

    def heard(self, ticket: Ticket) -> None:
        """The connection sent its first bytes (it is no longer silent)."""
        ticket.heard = True

    def done(self, ticket: Ticket) -> None:
        """The handshake finished, failed or was evicted: its slot is free."""
        self._forget(ticket)

    def _forget(self, ticket: Ticket) -> None:
        if ticket in self._open:
            del self._open[ticket]
            mine = self._by_host[ticket.host]
            del mine[ticket]
            if not mine:
                del self._by_host[ticket.host]

    def _evict(self, ticket: Ticket) -> None:
        self._forget(ticket)
        ticket.evicted = True
        self.evictions += 1
        ticket.evict()


def _oldest_silent(tickets: dict[Ticket, None]) -> Ticket:
    """The oldest ticket that has sent nothing, else the oldest (``tickets`` is not empty)."""
    for ticket in tickets:
        if not ticket.heard:
            return ticket
    return next(iter(tickets))
