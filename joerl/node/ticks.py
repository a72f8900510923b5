"""When a node link's ticks go out: on a grid of wall-clock time shared by every node.

An idle link sends a tick every ``tick_interval`` (a quarter of the tick time;
see ``connection.py``). Each link's timer is a repeating libev timer. Started
whenever its link came up, the timers of a node's links would fire at as many
different instants, and the ticks of its peers arrive at as many others: an
idle node of an N-node mesh woke about 2N times per tick interval, each
wake-up a return from ``epoll_wait``, a pass of the hub and, on a busy
machine, a context switch (what an idle mesh costs is mostly these, not the
few hundred instructions of a tick).

So every link's first tick is put on the grid of multiples of its interval
in wall-clock time (``time.time()``): the links of a node with one interval
fire in one pass of the hub, and on machines whose clocks agree (NTP) the
peers' ticks arrive together too, several in one wake-up. Only the phase
changes: a tick still goes out only when nothing else was written for a
whole interval, and a peer is still declared down after the tick time of
silence (the first interval is merely shorter).
"""

from __future__ import annotations

import time

__all__ = ["first_tick"]


def first_tick(interval: float, now: float | None = None) -> float:
    """Seconds from ``now`` (default ``time.time()``) to the next multiple of
    ``interval``: when a repeating tick timer of that interval first fires
    (never 0: a tick due now waits for the next grid point if closer than a
    hundredth of the interval)."""
    if now is None:
        now = time.time()
    wait = interval - now % interval
    return wait if wait >= interval / 100 else wait + interval
