"""Fairness (issue 14): how long a loop of sends holds the hub, with and without the send budget.

Delivering into a mailbox never switches greenlets, so a greenlet sending in
a tight loop keeps every other greenlet, timer and socket of its thread
waiting until it stops; the send budget (``ActorSystem(send_budget=N)``) makes
the sender yield every N sends. A *ticker* greenlet sleeps 1 ms over and over
and records how late it wakes: its worst lateness is the longest stall of the
hub. Each figure (the default budget) stands beside the same loop with the
budget off (``send_budget=0``), in turns.

* ``local``: 200,000 ``system.send(pid, i)`` from one greenlet to an Actor
  that counts them (full mode: the same; quick: 3 samples, full: 5).
* ``remote``: 100,000 ``system.send(pid, i)`` to an Actor of another node (two
  nodes in this process, on loopback).

Figures are milliseconds (lower is better); the aim is a longest stall under
20 ms with the budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event

from joerl.actor import Actor, ActorContext
from joerl.gen_server import GenServer, Reply
from joerl.gen_server import start as start_server
from joerl.system import ActorSystem
from joerl.testing import node_cluster

from .harness import Figure, Row

TICK = 0.001


class _Sink(Actor):
    """Counts messages; sets ``done`` at the ``expected``-th."""

    def __init__(self) -> None:
        self.expected = 0
        self.count = 0
        self.done = Event()

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        self.count += 1
        if self.count == self.expected:
            self.done.set()


class _WhereIs(GenServer):
    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return Reply(self.ctx.system.whereis(request), state)


def _longest_stall(send: Callable[[Any, Any], Any], pid: Any, sink: _Sink, n: int) -> float:
    """Send ``n`` messages in a tight loop beside a ticker; the ticker's worst lateness, in ms."""
    sink.count, sink.expected = 0, n
    sink.done.clear()
    worst = 0.0
    running = True

    def ticker() -> None:
        nonlocal worst
        while running:
            t0 = time.perf_counter()
            gevent.sleep(TICK)
            worst = max(worst, time.perf_counter() - t0 - TICK)

    tick = gevent.spawn(ticker)
    gevent.sleep(0.02)  # the ticker is ticking
    worst = 0.0

    def sender() -> None:
        for i in range(n):
            send(pid, i)

    gevent.spawn(sender).join()
    if not sink.done.wait(60):
        raise RuntimeError(f"only {sink.count} of {n} messages arrived")
    running = False
    tick.join()
    return worst * 1000


def _local(n: int, repeats: int) -> Row:
    samples: dict[str, list[float]] = {"budget": [], "off": []}
    systems = {"budget": ActorSystem("fair"), "off": ActorSystem("unfair", send_budget=0)}
    try:
        sinks = {k: _Sink() for k in systems}
        pids = {k: s.spawn(sinks[k]).pid for k, s in systems.items()}
        for _ in range(repeats):
            for key, system in systems.items():
                samples[key].append(_longest_stall(system.send, pids[key], sinks[key], n))
    finally:
        for system in systems.values():
            system.shutdown()
    return _row("fairness/local", f"longest stall, {n:,} local sends", samples, systems["budget"].send_budget)


def _remote(n: int, repeats: int) -> Row:
    samples: dict[str, list[float]] = {"budget": [], "off": []}
    with node_cluster("fair_a", "fair_b") as (a, b):
        a.connect_to_node("fair_b")
        sink = _Sink()
        b.system.spawn(sink, name="sink")
        start_server(b.system, _WhereIs(), None, name="whereis")
        pid = a.system.call(("whereis", "fair_b"), "sink")
        budget = a.system.send_budget
        for _ in range(repeats):
            for key in samples:
                a.system.send_budget = budget if key == "budget" else 0
                samples[key].append(_longest_stall(a.system.send, pid, sink, n))
        a.system.send_budget = budget
    return _row("fairness/remote", f"longest stall, {n:,} sends to a node", samples, budget)


def _row(group: str, name: str, samples: dict[str, list[float]], budget: int) -> Row:
    return Row(
        group,
        Figure(f"{name}, send_budget={budget}", "ms", samples["budget"]),
        Figure(f"{name}, send_budget=0 (off)", "ms", samples["off"]),
        lower_is_better=True,
        note="a ticker greenlet sleeps 1 ms over and over beside a tight loop of sends: its worst "
        "lateness (ms), beside the same loop with the budget off; the aim is < 20 ms",
        extra={"aim_ms": 20.0, "met": max(samples["budget"]) < 20.0},
    )


def run(quick: bool) -> list[Row]:
    """The two rows: local and remote sends, each beside the budget off."""
    repeats = 3 if quick else 5
    return [_local(200_000, repeats), _remote(100_000, repeats)]
