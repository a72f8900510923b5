"""Tasks, worker pools and a dynamic supervisor, from a plain synchronous script.

Run: python examples/tasks_and_pools.py
"""

from __future__ import annotations

import logging
from typing import Any

import joerl.pool
from joerl.gen_server import From, GenServer, Reply
from joerl.pool import start_pool
from joerl.supervisor import ChildSpec, DynamicSupervisor, start_supervisor
from joerl.system import ActorSystem
from joerl.task import TaskError, TaskSupervisor, async_nolink, supervisor_async_nolink, yield_many

# The task below crashes on purpose; keep its crash report off stderr (the
# example prints the traceback the awaiter gets instead).
logging.getLogger("joerl.actor").setLevel(logging.CRITICAL)


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def parse(text: str) -> int:
    return int(text)


class Counter(GenServer):
    """A pool worker: counts the calls it answered."""

    def init(self, args: Any) -> int:
        return 0

    def handle_call(self, request: Any, from_: From, state: int) -> Reply:
        return Reply((self.ctx.pid, request * 10), state + 1)


def main() -> None:
    with ActorSystem("example") as system:
        # Tasks: run functions as processes, await their results.
        tasks = [async_nolink(system, fib, n) for n in (10, 15, 20)]
        print("task results:", [t.await_(5.0) for t in tasks])
        print("yield_many:", [outcome for _, outcome in yield_many(tasks, 1.0)])
        try:
            async_nolink(system, parse, "forty-two").await_(5.0)
        except TaskError as err:
            last = (err.traceback or "").strip().splitlines()[-1]
            print("task crashed:", last)
        future = async_nolink(system, fib, 12).as_future()
        print("as a concurrent.futures.Future:", future.result(timeout=5.0))

        # Tasks under a TaskSupervisor (a DynamicSupervisor of temporary children).
        tasks_sup = start_supervisor(system, TaskSupervisor({"fib": fib}), name="tasks")
        print("supervised by name:", supervisor_async_nolink(system, "tasks", "fib", 16).await_(5.0))
        print("task supervisor children after:", tasks_sup.count_children()["active"])

        # A dynamic supervisor with a template: each start_child gives the args.
        sup = start_supervisor(system, DynamicSupervisor(ChildSpec.worker("counter", Counter), max_children=3))
        for _ in range(3):
            sup.start_child(())
        print("dynamic children:", sup.count_children())

        # A pool of 2 workers (+1 overflow): checkout/checkin and transactions.
        pool = start_pool(system, Counter, size=2, max_overflow=1)
        with pool.transaction(5.0) as worker:
            print("transaction answer:", system.call(worker, 4)[1])
        doubled = pool.map(lambda w, x: system.call(w, x)[1], range(6), workers=3)
        print("pool.map:", doubled)
        print("pool status:", pool.status())

        # The "run N jobs on K workers" case.
        print("joerl.pool.map:", joerl.pool.map(system, fib, range(12), workers=4))
    print("done")


if __name__ == "__main__":
    main()
