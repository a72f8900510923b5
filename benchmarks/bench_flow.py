"""Flow control (issue 15): a bystander's round trips on a link while a flood fills a bounded mailbox.

Two nodes in this process, on loopback. A *bystander* pair (a pinger on node
A, an echo on node B) exchanges round trips on the link. Beside it, in the
same run: the same round trips while a flooder on A sends to a bounded
mailbox (``mailbox_size=10``) on B whose reader never reads (the flooder is
paused by credit, the link flows on). Before flow control, the flood blocked
B's link reader and the bystander's round trips stalled for seconds.

Figures are round trips per second (higher is better); the aim is the
flooded rate within half of the quiet one. Quick: 3 samples of 1,000 round
trips each; full: 5 of 3,000. The extra holds the slowest round trip (ms).
"""

from __future__ import annotations

import time
from typing import Any

from gevent.event import Event

from joerl.actor import ActorContext
from joerl.testing import Probe, node_cluster

from .harness import Figure, Row


def _echo(ctx: ActorContext) -> None:
    while True:
        msg = ctx.receive()
        ctx.send(msg[0], msg[1])


def _stuck(never: Event) -> Any:
    def body(ctx: ActorContext) -> None:
        never.wait()

    return body


def _flooder(dest: Any, sent: list[int]) -> Any:
    def body(ctx: ActorContext) -> None:
        while True:
            ctx.send(dest, ("flood", sent[0]))
            sent[0] += 1

    return body


def _round_trips(pinger: Probe, echo: Any, n: int) -> tuple[float, float]:
    """Round trips per second over ``n``, and the slowest (seconds)."""
    slowest = 0.0
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        pinger.ctx.send(echo, (pinger.pid, i))
        pinger.receive(timeout=30)
        slowest = max(slowest, time.perf_counter() - t)
    return n / (time.perf_counter() - start), slowest


def run(quick: bool) -> list[Row]:
    """The bystander's round-trip rate with and without a flood to a full bounded mailbox, in turns."""
    samples, n = (3, 1000) if quick else (5, 3000)
    quiet: list[float] = []
    flooded: list[float] = []
    slowest = 0.0
    paused_at: list[int] = []
    with node_cluster("fa", "fb", global_names=False) as (a, b):
        pinger = Probe(a)
        echo = b.global_pid(b.system.spawn_fn(_echo).pid)
        _round_trips(pinger, echo, 100)  # warm up the link
        for _ in range(samples):
            quiet.append(_round_trips(pinger, echo, n)[0])
            never = Event()
            target = b.system.spawn_fn(_stuck(never), mailbox_size=10)
            sent = [0]
            flooder = a.system.spawn_fn(_flooder(b.global_pid(target.pid), sent))
            rate, worst = _round_trips(pinger, echo, n)
            flooded.append(rate)
            slowest = max(slowest, worst)
            paused_at.append(sent[0])
            flooder.stop("kill")
            target.stop("kill")
    return [
        Row(
            "flow",
            Figure("bystander round trips during a flood to a full bounded mailbox", "rt/s", flooded),
            Figure("bystander round trips, no flood", "rt/s", quiet),
            target=0.5,
            note="a flooder on A sends to a bounded mailbox on B that is never read, on the same link "
            "as the bystander pair; flow control pauses the flooder and the link flows on",
            extra={"slowest_round_trip_ms": round(slowest * 1000, 2), "flooder_sent_before_pause": paused_at},
        )
    ]
