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

Silence is the peer's, not this node's: :func:`unread` tells the tick
check whether the peer's bytes wait in the socket, unread. A node whose hub
was kept from polling (a sender and its link's writer handing the hub
callback after callback, a long burst on a busy machine) runs its tick timer
before the read watcher of the same pass (libev invokes the later-queued
timer first) and would otherwise call a peer that did speak silent for as
long as the hub was late; as Erlang's tick counts the bytes that reached
the socket, not those its connection process has handled.
"""

from __future__ import annotations

import select
import time
from typing import Any

from gevent import monkey

__all__ = ["first_tick", "unread"]

_poll = monkey.get_original("select", "poll")  # (a poll of no time: never waits, in the hub too)


def first_tick(interval: float, now: float | None = None) -> float:
    """Seconds from ``now`` (default ``time.time()``) to the next multiple of
    ``interval``: when a repeating tick timer of that interval first fires
    (never 0: a tick due now waits for the next grid point if closer than a
    hundredth of the interval)."""
    if now is None:
        now = time.time()
    wait = interval - now % interval
    return wait if wait >= interval / 100 else wait + interval


def unread(sock: Any) -> bool:
    """Whether bytes (or the end of the stream) wait unread in ``sock``: the
    kernel's buffer, or a TLS socket's decrypted ones."""
    try:
        pending = getattr(sock, "pending", None)
        if pending is not None and pending():
            return True
        poller = _poll()
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):  # closed meanwhile
        return False
