"""Worker pools: checkout/checkin, overflow workers, blocking and non-blocking
checkout, the checkout timeout, transactions that return the worker even when
the borrower crashes, dead workers replaced, map in input order. Real
processes; tests wait on replies, joins and Down callbacks, never on sleeps."""

from __future__ import annotations

from typing import Any

import pytest
from gevent.event import AsyncResult, Event

import joerl.pool
from joerl.actor import ActorContext
from joerl.errors import CallError
from joerl.gen_server import From, GenServer, Reply
from joerl.pid import Pid
from joerl.pool import Pool, PoolFull, PoolTimeout, start_pool
from joerl.supervisor import ChildSpec
from joerl.system import ActorSystem
from joerl.testing import wait_until

WAIT = 5.0


class Echo(GenServer):
    """Answers a call with (its pid, the request)."""

    def handle_call(self, request: Any, from_: From, state: Any) -> Reply:
        if request == "crash":
            raise RuntimeError("worker crashed on purpose")
        return Reply((self.ctx.pid, request))


def watch(system: ActorSystem, pid: Pid) -> AsyncResult:
    result = AsyncResult()
    system.monitor_callback(pid, lambda _ref, _pid, reason: result.set(reason))
    return result


def test_checkout_and_checkin(system: ActorSystem) -> None:
    pool = start_pool(system, Echo, size=2)
    a = pool.checkout()
    b = pool.checkout()
    assert a != b
    assert system.call(a, "hi") == (a, "hi")
    assert pool.status() == {"size": 2, "max_overflow": 0, "idle": 0, "checked_out": 2, "overflow": 0, "waiting": 0}
    pool.checkin(a)
    assert pool.checkout() == a  # the same worker comes back
    pool.checkin(a)
    pool.checkin(b)
    assert pool.status()["idle"] == 2


def test_non_blocking_checkout_fails_when_all_are_out(system: ActorSystem) -> None:
    pool = start_pool(system, Echo, size=1)
    w = pool.checkout()
    with pytest.raises(PoolFull, match="no free worker"):
        pool.checkout(block=False)
    pool.checkin(w)
    assert pool.checkout(block=False) == w


def test_blocking_checkout_times_out_with_a_clear_error(system: ActorSystem) -> None:
    pool = start_pool(system, Echo, size=1)
    w = pool.checkout()
    with pytest.raises(PoolTimeout) as err:
        pool.checkout(timeout=0.05)
    assert isinstance(err.value, TimeoutError) and "within 0.05s" in str(err.value)
    assert pool.status()["waiting"] == 0  # the timed-out checkout is forgotten
    pool.checkin(w)
    assert pool.checkout(timeout=WAIT) == w


def test_blocking_checkout_waits_for_a_checkin(system: ActorSystem) -> None:
    pool = start_pool(system, Echo, size=1)
    w = pool.checkout()
    got: AsyncResult = AsyncResult()

    def borrower(ctx: ActorContext) -> None:
        got.set(pool.checkout(timeout=WAIT, via=ctx))
        ctx.receive()

    system.spawn_fn(borrower)
    wait_until(lambda: pool.status()["waiting"] == 1, WAIT, what="the borrower waits")
    assert not got.ready()
    pool.checkin(w)
    assert got.get(timeout=WAIT) == w


def test_overflow_workers_are_started_and_ended(system: ActorSystem) -> None:
    pool = start_pool(system, Echo, size=1, max_overflow=2)
    base = pool.checkout()
    extra = [pool.checkout(), pool.checkout()]
    assert pool.status()["overflow"] == 2
    with pytest.raises(PoolFull):
        pool.checkout(block=False)
    gone = [watch(system, pid) for pid in extra]
    for pid in extra:
        pool.checkin(pid)
    assert [g.get(timeout=WAIT) for g in gone] == ["shutdown", "shutdown"]
    assert pool.status() == {
        "size": 1,
        "max_overflow": 2,
        "idle": 0,
        "checked_out": 1,
        "overflow": 0,
        "waiting": 0,
    }
    pool.checkin(base)
    assert pool.status()["idle"] == 1


def test_transaction_returns_the_worker(system: ActorSystem) -> None:
    pool = start_pool(system, Echo, size=1)
    with pool.transaction(WAIT) as worker:
        assert system.call(worker, 1) == (worker, 1)
        assert pool.status()["checked_out"] == 1
    assert pool.status()["idle"] == 1
    assert pool.transaction(lambda w: system.call(w, 2)) == (worker, 2)
    with pytest.raises(ZeroDivisionError):
        pool.transaction(lambda w: 1 / 0)
    assert pool.status()["idle"] == 1


def test_a_crashed_borrower_gives_its_worker_back(system: ActorSystem) -> None:
    pool = start_pool(system, Echo, size=1)
    lent: AsyncResult = AsyncResult()

    def borrower(ctx: ActorContext) -> None:
        lent.set(pool.checkout(via=ctx))
        raise RuntimeError("borrower crashed holding a worker")

    ref = system.spawn_fn(borrower)
    worker = lent.get(timeout=WAIT)
    assert ref.join(WAIT)
    assert pool.checkout(timeout=WAIT) == worker  # back in the pool


def test_a_dead_worker_is_replaced(system: ActorSystem) -> None:
    pool = start_pool(system, Echo, size=2)
    w = pool.checkout()
    reason = watch(system, w)
    with pytest.raises(CallError):
        system.call(w, "crash")
    assert isinstance(reason.get(timeout=WAIT), RuntimeError)
    status = pool.status()
    assert status["idle"] == 2 and status["checked_out"] == 0
    assert w not in {pool.checkout(), pool.checkout()}


def test_pool_map_keeps_input_order_and_reraises_the_first_error(system: ActorSystem) -> None:
    pool = start_pool(system, Echo, size=3)
    assert pool.map(lambda w, x: system.call(w, x)[1] * 2, range(10)) == [x * 2 for x in range(10)]
    used: set[Pid] = set()

    def job(w: Pid, x: int) -> int:
        used.add(w)
        if x in (4, 7):
            raise ValueError(f"item {x}")
        return x

    with pytest.raises(ValueError, match="item 4"):
        pool.map(job, range(10), workers=2)
    assert pool.status()["idle"] == 3  # every worker came back


def test_module_map_runs_functions_on_k_workers(system: ActorSystem) -> None:
    def square(x: int) -> int:
        return x * x

    assert joerl.pool.map(system, square, range(20), workers=4) == [x * x for x in range(20)]

    def bad(x: int) -> int:
        if x == 3:
            raise KeyError(x)
        return x

    with pytest.raises(KeyError) as err:
        joerl.pool.map(system, bad, range(6), workers=2)
    assert any("in bad" in note for note in getattr(err.value, "__notes__", []))


def test_a_childspec_worker_and_stopping_the_pool(system: ActorSystem) -> None:
    started = Event()

    def worker(ctx: ActorContext) -> None:
        started.set()
        ctx.receive(lambda m: False)

    pool = start_pool(system, ChildSpec.worker_fn("w", worker), size=2, name="the_pool")
    assert started.wait(WAIT)
    w = Pool(system, system.whereis("the_pool")).checkout()  # type: ignore[arg-type]
    gone = watch(system, w)
    assert pool.stop()
    assert gone.get(timeout=WAIT) == "shutdown"


def test_bad_arguments(system: ActorSystem) -> None:
    with pytest.raises(ValueError):
        start_pool(system, Echo, size=-1)
    with pytest.raises(ValueError):
        start_pool(system, Echo, size=0, max_overflow=0)
    pool = start_pool(system, Echo, size=1)
    with pytest.raises(ValueError):
        pool.map(lambda w, x: x, [1], workers=0)
