"""Using joerl from OS threads and from asyncio (docs/threads.md).

A counter GenServer runs in the main thread's hub. Four worker threads cast
and call it; an asyncio loop in another thread awaits calls and sends, as an
ASGI app beside a joerl node would. Nothing is monkey-patched.

Run: python examples/threads_and_asyncio.py
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from gevent.event import Event

from joerl import aio, gen_server
from joerl.gen_server import GenServer, Reply
from joerl.system import ActorSystem


class Counter(GenServer):
    def init(self, args: Any) -> int:
        return 0

    def handle_cast(self, request: Any, state: int) -> int:
        return state + request

    def handle_call(self, request: Any, from_: Any, state: int) -> Any:
        return Reply(state, state)


def worker(counter: Any, n: int, results: list[int]) -> None:
    """An OS thread: casts n increments, then calls (it blocks only itself)."""
    for _ in range(n):
        counter.cast(1)
    results.append(counter.call("get"))


async def asyncio_side(system: ActorSystem) -> int:
    """An asyncio loop in its own thread: awaits calls, sends without blocking."""
    for i in range(3):
        aio.send(system, "log", f"hello from asyncio {i}")
    aio.cast(system, "counter", 100)
    value: int = await aio.call(system, "counter", "get", timeout=5.0)
    return value


def main() -> None:
    with ActorSystem("threads-demo") as system:
        counter = gen_server.start(system, Counter(), name="counter")
        lines: list[str] = []
        logged = Event()

        def log(ctx: Any) -> None:
            while True:
                lines.append(ctx.receive())
                if len(lines) == 3:
                    logged.set()

        system.spawn_fn(log, name="log")

        results: list[int] = []
        threads = [threading.Thread(target=worker, args=(counter, 1000, results)) for _ in range(4)]
        for t in threads:
            t.start()
        async_result: list[int] = []
        loop_thread = threading.Thread(target=lambda: async_result.append(asyncio.run(asyncio_side(system))))
        loop_thread.start()

        # The hub must keep running while the threads work: wait here with gevent.
        while any(t.is_alive() for t in [*threads, loop_thread]):
            logged.wait(0.05)
        for t in [*threads, loop_thread]:
            t.join()

        assert logged.wait(5), "the asyncio sends did not arrive"
        for line in lines:
            print(f"log: {line}")
        print(f"threads saw counts up to {max(results)}")
        total = counter.call("get")
        print(f"asyncio read the counter: {async_result[0]}")
        print(f"final count: {total}")
        assert total == 4 * 1000 + 100, total
    print("done")


if __name__ == "__main__":
    main()
