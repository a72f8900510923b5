"""The observer's charts: process count, queued messages and message rate of each node, over the last minutes.

One greenlet samples, every ``interval`` seconds, the nodes the pages asked
about lately (and the default node), keeping ``keep`` samples of each.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent

__all__ = ["History"]

log = logging.getLogger("joerl.observer")

#: Seconds a node keeps being sampled after a page last asked about it.
WATCH_FOR = 120.0


class History:
    """Samples of each watched node: ``(time, processes, queued, messages per second)``.

    Args:
        report: ``report(node)``: the node's counters and gauges (``Source.metrics``).
        default: the node always sampled.
        interval: seconds between samples.
        keep: samples kept per node (``keep * interval`` seconds of history).
    """

    def __init__(self, report: Callable[[str], dict[str, Any]], default: str, interval: float, keep: int) -> None:
        self._report = report
        self._interval = interval
        self._keep = keep
        self._samples: dict[str, deque[tuple[float, int, int, float]]] = {}
        self._last: dict[str, tuple[float, int]] = {}
        self._watched: dict[str, float] = {default: float("inf")}
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        """Start sampling (in a greenlet of its own)."""
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)
            self._greenlet.name = "joerl-observer-history"

    def stop(self) -> None:
        """Stop sampling."""
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=1.0)
            self._greenlet = None

    def watch(self, node: str) -> None:
        """Keep sampling ``node`` for the next :data:`WATCH_FOR` seconds."""
        until = time.monotonic() + WATCH_FOR
        if self._watched.get(node, 0.0) < until:
            self._watched[node] = until

    def series(self, node: str) -> dict[str, list[float]]:
        """The samples of ``node``, column by column (``t`` in seconds since the epoch)."""
        self.watch(node)
        samples = list(self._samples.get(node, ()))
        return {
            "t": [s[0] for s in samples],
            "processes": [s[1] for s in samples],
            "queued": [s[2] for s in samples],
            "rate": [s[3] for s in samples],
        }

    def sample(self, node: str) -> None:
        """Take one sample of ``node`` now."""
        metrics = self._report(node)
        now, received = time.time(), int(metrics["messages_received"] or 0)  # (None: not counted)
        last = self._last.get(node)
        rate = max(0.0, (received - last[1]) / (now - last[0])) if last and now > last[0] else 0.0
        self._last[node] = (now, received)
        samples = self._samples.get(node)
        if samples is None:
            samples = self._samples[node] = deque(maxlen=self._keep)
        samples.append((now, int(metrics["processes_alive"]), int(metrics["mailbox_messages"]), round(rate, 2)))

    def _run(self) -> None:
        while True:
            now = time.monotonic()
            for node, until in list(self._watched.items()):
                if until < now:
                    del self._watched[node]
                    self._samples.pop(node, None)
                    self._last.pop(node, None)
                    continue
                try:
                    self.sample(node)
                except Exception as exc:  # noqa: BLE001 - a node that does not answer has a gap
                    log.debug("observer: no sample of %s: %s", node, exc)
            gevent.sleep(self._interval)  # the sampling period
