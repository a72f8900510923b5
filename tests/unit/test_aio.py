"""joerl.aio: an asyncio loop in another OS thread awaits calls and sends to a joerl system."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from gevent.event import Event
from test_threads import in_thread

from joerl import aio, gen_server
from joerl.errors import CallError, CallTimeout, NotRegistered
from joerl.gen_server import GenServer, NoReply, Reply
from joerl.system import ActorSystem

pytestmark = pytest.mark.timeout(60)


class Echo(GenServer):
    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "never":
            return NoReply(state)
        if request == "state":
            return Reply(state, state)
        return Reply(request, state)

    def handle_cast(self, request: Any, state: Any) -> Any:
        return state + [request]


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    with ActorSystem("aio") as s:
        yield s


def run_asyncio(main: Callable[[], Coroutine[Any, Any, Any]], timeout: float = 30.0) -> Any:
    """Run ``main()`` on an asyncio loop in a new OS thread while this thread's hub runs."""
    return in_thread(lambda: asyncio.run(main()), timeout)


def test_await_call_reply_timeout_dead(system: ActorSystem) -> None:
    server = gen_server.start(system, Echo(), [], name="echo")

    async def main() -> Any:
        replies = await asyncio.gather(*(aio.call(system, "echo", i) for i in range(50)))
        with pytest.raises(CallTimeout) as timed_out:
            await aio.call(system, server, "never", timeout=0.2)
        return replies, timed_out.value.timeout

    replies, timeout = run_asyncio(main)
    assert replies == list(range(50)) and timeout == 0.2
    server.stop()

    async def dead() -> Any:
        with pytest.raises(CallError) as failed:
            await aio.call(system, server, "hello")
        return failed.value.reason

    assert run_asyncio(dead) == "noproc"


def test_call_does_not_block_the_asyncio_loop(system: ActorSystem) -> None:
    server = gen_server.start(system, Echo(), [])

    async def main() -> Any:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)  # the ticker's period: what it shows is that the loop keeps running
                ticks += 1

        task = asyncio.create_task(ticker())
        with pytest.raises(CallTimeout):
            await aio.call(system, server, "never", timeout=0.5)
        task.cancel()
        return ticks

    assert run_asyncio(main) >= 5  # the loop kept running while the call waited


def test_send_and_cast_keep_order(system: ActorSystem) -> None:
    got: list[Any] = []
    done = Event()

    def sink(ctx: Any) -> None:
        while True:
            got.append(ctx.receive())
            if len(got) == 1000:
                done.set()

    system.spawn_fn(sink, name="sink")
    server = gen_server.start(system, Echo(), [])

    async def main() -> Any:
        for i in range(1000):
            aio.send(system, "sink", i)
        for i in range(100):
            aio.cast(system, server, i)
        with pytest.raises(NotRegistered):
            aio.send(system, "nobody", 1)
        aio.cast(system, "nobody", 1)  # a cast never fails
        return await aio.call(system, server, "state")

    assert run_asyncio(main) == list(range(100))
    assert done.wait(timeout=20)
    assert got == list(range(1000))


def test_rejects_what_is_not_a_system() -> None:
    async def main() -> Any:
        with pytest.raises(TypeError):
            await aio.call(object(), "x", 1)
        with pytest.raises(TypeError):
            aio.send(42, "x", 1)

    asyncio.run(main())
