"""The send budget: a tight loop of sends yields to the hub (joerl/_budget.py).

A ticker greenlet sleeps 1 ms over and over beside a loop of sends and records
its worst lateness. The bounds are generous (a loaded machine); the figures
are in benchmarks/bench_fairness.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from gevent.event import Event

from joerl import gen_server
from joerl._budget import SendBudget
from joerl.gen_server import GenServer, Reply
from joerl.system import ActorSystem
from joerl.testing import node_cluster, wait_until

pytestmark = pytest.mark.timeout(120)


def sink(system: ActorSystem, expected: int) -> tuple[Any, Event]:
    done = Event()
    count = 0

    def body(ctx: Any) -> None:
        nonlocal count
        while True:
            ctx.receive()
            count += 1
            if count == expected:
                done.set()

    return system.spawn_fn(body).pid, done


def longest_stall(system: ActorSystem, pid: Any, n: int, done: Event) -> float:
    """Seconds: the ticker's worst lateness while a greenlet sends ``n`` messages to ``pid``."""
    worst = 0.0
    running = True
    ticking = Event()

    def ticker() -> None:
        nonlocal worst
        while running:
            t0 = time.perf_counter()
            gevent.sleep(0.001)  # the ticker's period: what it measures is its lateness
            worst = max(worst, time.perf_counter() - t0 - 0.001)
            ticking.set()

    tick = gevent.spawn(ticker)
    assert ticking.wait(5)  # it has ticked once: the loop below starts against a running ticker
    worst = 0.0

    def sender() -> None:
        for i in range(n):
            system.send(pid, i)

    gevent.spawn(sender).join()
    assert done.wait(60)
    running = False
    tick.join(5)
    return worst


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    with ActorSystem("fair") as s:
        yield s


def test_local_send_loop_yields_to_timers(system: ActorSystem) -> None:
    pid, done = sink(system, 200_000)
    assert longest_stall(system, pid, 200_000, done) < 0.25


class WhereIs(GenServer):
    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return Reply(self.ctx.system.whereis(request), state)


def test_remote_send_loop_yields_to_timers() -> None:
    with node_cluster("fa", "fb") as (a, b):
        a.connect_to_node("fb")
        pid, done = sink(b.system, 100_000)
        b.system.register("sink", pid)
        gen_server.start(b.system, WhereIs(), None, name="whereis")
        remote = a.system.call(("whereis", "fb"), "sink")  # the sink as node fa names it
        # Both nodes share this process's hub, so the receiving node's reader
        # (which delivers a whole read at once) counts in the stall too: a
        # generous bound, a regression guard only (benchmarks/bench_fairness.py measures).
        assert longest_stall(a.system, remote, 100_000, done) < 1.0


def test_budget_yields_every_n_sends_and_can_be_turned_off(system: ActorSystem) -> None:
    pid, _ = sink(system, -1)
    turns = 0

    def counter() -> None:
        nonlocal turns
        while True:
            gevent.sleep(0)
            turns += 1

    for budget, expect_yield in ((100, True), (0, False), (None, False)):
        system.send_budget = budget
        g = gevent.spawn(counter)
        gevent.sleep(0)
        before = turns
        for i in range(1000):
            system.send(pid, i)
        assert (turns > before) is expect_yield, (budget, turns - before)
        g.kill()
    assert system.send_budget == 0


@pytest.mark.parametrize("budget", [1, 2, 100, 256, 512, 4000])  # (a budget over 256 is spent in equal rounds)
def test_the_yield_comes_at_exactly_the_budgets_send(
    system: ActorSystem, budget: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid, _ = sink(system, -1)
    system.send_budget = budget
    start = system.messages_sent
    sending = 0
    yields: list[int] = []
    monkeypatch.setattr(SendBudget, "_yield_to_loop", lambda self: yields.append(sending))
    for i in range(3 * budget + 5):
        sending = i + 1
        system.send(pid, i)
        assert system.messages_sent - start == sending
    assert yields == list(range(budget, 3 * budget + 6, budget))


def test_sends_from_the_hub_and_other_threads_never_yield(system: ActorSystem) -> None:
    system.send_budget = 10
    pid, done = sink(system, 2000)

    def from_hub() -> None:
        for i in range(1000):
            system.send(pid, i)  # in the hub: yielding there would raise

    gevent.get_hub().loop.run_callback(from_hub)
    t = threading.Thread(target=lambda: [system.send(pid, i) for i in range(1000)], daemon=True)
    t.start()
    assert done.wait(30)
    wait_until(lambda: not t.is_alive(), timeout=10)


def test_bad_budget_is_refused() -> None:
    for bad in (-1, 1.5, "10", True):
        with pytest.raises(ValueError, match="send_budget"):
            ActorSystem(send_budget=bad)  # type: ignore[arg-type]
