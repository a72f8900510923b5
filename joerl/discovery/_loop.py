"""The discovery loop: one greenlet per node that keeps the node's links in line with a strategy.

Every ``strategy.interval`` seconds (or at once when the strategy sets its
``changed`` event) the loop asks the strategy for the node names that should
be in the cluster, sifts the answer (:mod:`._entries`: valid names only, at
most ``max_nodes``), connects to the names it has no link with, and
disconnects the names the source listed before and no longer does (NodeUp and
NodeDown reach the node's watchers as for any link).

A source that cannot be asked leaves the cluster as it is; it is asked
again after a back-off (:class:`~joerl.backoff.Backoff`). A listed name
whose node cannot be reached, or that fails the handshake (another cookie, not
in ``allowed_nodes``, a TLS certificate refused) is counted and tried again
after its own back-off, never in a hot loop. Nothing a source answers can
take the node down: every failure is caught, counted and logged (each kind
once, then at debug level).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING

import gevent
from gevent.pool import Pool

from ..backoff import Backoff
from ._entries import sift
from ._strategy import Member

if TYPE_CHECKING:
    from ..node.node import DistributedSystem
    from ._strategy import Discovery

__all__ = ["DiscoveryLoop", "DiscoveryStats"]

log = logging.getLogger("joerl.discovery")

#: Connections dialled at once.
DIAL_CONCURRENCY = 16
#: The longest wait before a listed node that failed is dialled again, seconds.
MAX_RETRY = 300.0
#: The longest a source may take to answer, seconds (past it, it counts as down).
SOURCE_TIMEOUT = 60.0


@dataclass
class DiscoveryStats:
    """What the loop did, counted since it started.

    Attributes:
        polls: answers the source gave.
        source_failures: times the source could not be asked.
        invalid_entries: entries left out as no node name.
        truncated: answers cut at ``max_nodes``.
        connects: links brought up because the source listed a node.
        connect_failures: dials of listed nodes that failed (unreachable,
            handshake refused).
        disconnects: links closed because the source stopped listing a node.
    """

    polls: int = 0
    source_failures: int = 0
    invalid_entries: int = 0
    truncated: int = 0
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0


class DiscoveryLoop:
    """Runs ``strategy`` for ``node`` (see the module docstring); started by the node.

    Args:
        node: the node (its public API: ``connect_to_node``, ``nodes``,
            ``disconnect_node``).
        strategy: the :class:`~joerl.discovery.Discovery` to follow.
        cookie: the node's cookie (for strategies that sign what they send).
    """

    def __init__(self, node: DistributedSystem, strategy: Discovery, cookie: bytes) -> None:
        self.node = node
        self.strategy = strategy
        self.stats = DiscoveryStats()
        #: The names the source listed last (validated), in its order.
        self.listed: list[str] = []
        self._member = Member(node.node_name, node.advertise_host, node.listen_port, cookie)
        self._backoff = Backoff(initial=min(1.0, strategy.interval), maximum=max(30.0, strategy.interval))
        self._retry: dict[str, tuple[float, Backoff]] = {}  # name -> (next attempt, its back-off)
        self._dialing: set[str] = set()
        self._warned: set[str] = set()  # the kinds of trouble logged at warning level already
        self._pool = Pool(DIAL_CONCURRENCY)
        self._greenlet: gevent.Greenlet | None = None
        self._down_since: float | None = None

    def __repr__(self) -> str:
        return f"<DiscoveryLoop {self.node.node_name} {self.strategy!r}>"

    @property
    def running(self) -> bool:
        return self._greenlet is not None and not self._greenlet.dead

    @classmethod
    def run(cls, node: DistributedSystem, strategy: Discovery | None, cookie: bytes) -> DiscoveryLoop | None:
        """A started loop for ``node`` (None without a strategy): what the node calls."""
        if strategy is None:
            return None
        loop = cls(node, strategy, cookie)
        loop.start()
        return loop

    @staticmethod
    def stop_of(loop: DiscoveryLoop | None) -> None:
        """Stop ``loop`` if there is one (what the node calls at shutdown)."""
        if loop is not None:
            loop.stop()

    def start(self) -> None:
        """Start the strategy and the loop's greenlet."""
        if self._greenlet is not None:
            return
        self.strategy.start(self._member)
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        """Stop the loop and its dials, then the strategy (the links stay)."""
        greenlet, self._greenlet = self._greenlet, None
        if greenlet is None:
            return
        greenlet.kill()
        self._pool.kill()
        try:
            self.strategy.stop()
        except Exception:  # noqa: BLE001 - a strategy's trouble never stops a shutdown
            log.exception("discovery: stopping %r failed", self.strategy)

    def poll_now(self) -> None:
        """Ask the source at once (as a strategy's ``changed`` event does)."""
        self.strategy.changed.set()

    # -- the loop -------------------------------------------------------------------

    def _run(self) -> None:
        changed = self.strategy.changed
        while True:
            changed.clear()
            delay = self._tick()
            changed.wait(delay)

    def _tick(self) -> float:
        """One round: ask, sift, connect and disconnect. Returns the wait before the next."""
        strategy = self.strategy
        try:
            with gevent.Timeout(SOURCE_TIMEOUT, TimeoutError(f"no answer within {SOURCE_TIMEOUT}s")):
                answer = strategy.nodes()
                entries = sift(answer, self.node.node_name, strategy.max_nodes)
        except Exception as exc:  # noqa: BLE001 - a source that is down, or broken, never takes the node down
            self.stats.source_failures += 1
            delay = self._backoff.delay()
            if self._down_since is None:
                self._down_since = monotonic()
                log.warning(
                    "discovery: %r cannot be asked (%s: %s); the cluster stays as it is, asking again with back-off",
                    strategy,
                    type(exc).__name__,
                    exc,
                )
            else:
                log.debug("discovery: %r still cannot be asked: %s", strategy, exc)
            return delay
        if self._down_since is not None:
            log.info("discovery: %r answers again after %.1fs", strategy, monotonic() - self._down_since)
            self._down_since = None
        self._backoff.reset()
        self.stats.polls += 1
        if entries.invalid:
            self.stats.invalid_entries += entries.invalid
            self._warn_once(
                "invalid", "discovery: %r listed %d entries that are no node name (first: %s); left out",
                strategy, entries.invalid, entries.first_invalid,
            )  # fmt: skip
        if entries.truncated:
            self.stats.truncated += 1
            self._warn_once(
                "truncated", "discovery: %r listed more than max_nodes=%d nodes; only the first %d are used",
                strategy, strategy.max_nodes, strategy.max_nodes,
            )  # fmt: skip
        self._apply(entries.names)
        return strategy.interval

    def _apply(self, names: list[str]) -> None:
        current = set(names)
        connected = set(self.node.nodes())
        for gone in self.listed:
            if gone in current:
                continue
            self._retry.pop(gone, None)
            if gone in connected:
                log.info("discovery: node %s is no longer listed: disconnecting", gone)
                if self.node.disconnect_node(gone):
                    self.stats.disconnects += 1
        self.listed = names
        now = monotonic()
        for name in names:
            if name in connected or name in self._dialing:
                continue
            retry = self._retry.get(name)
            if retry is not None and now < retry[0]:
                continue
            self._dialing.add(name)
            self._pool.spawn(self._connect, name)  # waits while DIAL_CONCURRENCY dials run

    def _connect(self, name: str) -> None:
        try:
            self.node.connect_to_node(name)
        except Exception as exc:  # noqa: BLE001 - unreachable, refused, or anything else: counted, retried later
            self.stats.connect_failures += 1
            _, backoff = self._retry.get(name) or (0.0, Backoff(initial=self.strategy.interval, maximum=MAX_RETRY))
            delay = backoff.delay()
            if name in self.listed:
                self._retry[name] = (monotonic() + delay, backoff)
            level = logging.DEBUG if backoff.failures > 1 else logging.WARNING
            log.log(level, "discovery: cannot connect to listed node %s (%s); next try in %.1fs", name, exc, delay)
        else:
            self._retry.pop(name, None)
            self.stats.connects += 1
            log.info("discovery: connected to listed node %s", name)
            if name not in self.listed and self.node.disconnect_node(name):  # dropped while we dialled
                self.stats.disconnects += 1
        finally:
            self._dialing.discard(name)

    def _warn_once(self, kind: str, msg: str, *args: object) -> None:
        level = logging.DEBUG if kind in self._warned else logging.WARNING
        self._warned.add(kind)
        log.log(level, msg, *args)
