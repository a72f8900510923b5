"""Other OS threads send to and call an actor system (joerl/_threads.py).

Real threads, not monkey-patched (one test runs a patched child interpreter):
the hub's thread runs the system and waits on events with deadlines; the
threads send, cast and call, and block only themselves.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from gevent.event import Event

from joerl import gen_server
from joerl.errors import CallError, CallTimeout, MailboxFull, NotRegistered
from joerl.gen_server import GenServer, NoReply, Reply
from joerl.system import ActorSystem
from joerl.testing import node_cluster, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    with ActorSystem("threads") as s:
        yield s


class Echo(GenServer):
    """Replies to ``("echo", x)``, never to ``"never"``, crashes on ``"crash"``."""

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "never":
            return NoReply(state)
        if request == "crash":
            raise RuntimeError("asked to crash")
        if request == "where is sink":
            return Reply(self.ctx.system.whereis("sink"), state)
        return Reply(request, state)

    def handle_cast(self, request: Any, state: Any) -> Any:
        return state + [request]


def in_thread(fn: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Run ``fn`` in a new OS thread while this one's hub keeps running; its result or exception."""
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    t = threading.Thread(target=body, daemon=True)
    t.start()
    wait_until(lambda: not t.is_alive(), timeout=timeout, what="the thread to end")
    if "error" in box:
        raise box["error"]
    return box["value"]


def collector(system: ActorSystem, expected: int) -> tuple[Any, list[Any], Event]:
    """A process keeping every message it gets; the event is set at the ``expected``-th."""
    got: list[Any] = []
    done = Event()

    def body(ctx: Any) -> None:
        while True:
            got.append(ctx.receive())
            if len(got) == expected:
                done.set()

    return system.spawn_fn(body), got, done


def test_100_threads_x_1000_sends_none_lost_order_kept(system: ActorSystem) -> None:
    threads_n, per_thread = 100, 1000
    ref, got, done = collector(system, threads_n * per_thread)
    start = threading.Barrier(threads_n)

    def sender(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            if t % 3 == 0:
                system.send(ref.pid, (t, i))
            elif t % 3 == 1:
                ref.send((t, i))
            else:
                ref.try_send((t, i))

    threads = [threading.Thread(target=sender, args=(t,), daemon=True) for t in range(threads_n)]
    for th in threads:
        th.start()
    assert done.wait(timeout=90), f"only {len(got)} of {threads_n * per_thread} messages arrived"
    wait_until(lambda: not any(th.is_alive() for th in threads), timeout=30)
    assert len(got) == threads_n * per_thread
    last = [-1] * threads_n
    for t, i in got:
        assert i == last[t] + 1, f"thread {t}: message {i} after {last[t]}"
        last[t] = i


def test_send_from_thread_to_idle_hub_is_delivered_promptly(system: ActorSystem) -> None:
    # Nothing else happens in this process: the hub sleeps in the loop until the
    # thread's wake-up (without it, the message would wait for the 30 s timeout).
    ref, _, done = collector(system, 1)
    gevent.sleep(0)  # the collector starts and parks in receive()
    threading.Thread(target=ref.send, args=("hello",), daemon=True).start()
    assert done.wait(timeout=30)


def test_send_by_name_and_errors_from_thread(system: ActorSystem) -> None:
    ref, got, done = collector(system, 2)
    system.register("sink", ref.pid)
    in_thread(lambda: system.send("sink", "by name"))
    in_thread(lambda: system.send(("sink", None), "by (name, node)"))
    assert done.wait(timeout=10)
    assert got == ["by name", "by (name, node)"]
    with pytest.raises(NotRegistered):
        in_thread(lambda: system.send("nobody", 1))


def test_bounded_mailbox_from_thread_waits_for_room_or_refuses(system: ActorSystem) -> None:
    release = Event()
    got: list[Any] = []

    def slow(ctx: Any) -> None:
        release.wait()
        while True:
            got.append(ctx.receive())

    ref = system.spawn_fn(slow, mailbox_size=2)
    in_thread(lambda: [ref.send(1), ref.send(2)])
    with pytest.raises(MailboxFull):
        in_thread(lambda: ref.try_send(3))
    # a send into the full mailbox blocks the thread (not the hub) until there is room
    t = threading.Thread(target=lambda: [ref.send(i) for i in range(3, 10)], daemon=True)
    t.start()
    ctx = system.context_of(ref.pid)
    assert ctx is not None
    wait_until(lambda: ctx._mailbox.waiting_writers == 1, timeout=10)  # the thread's send(3) waits for room
    assert t.is_alive() and got == [] and len(ctx._mailbox) == 2
    release.set()
    wait_until(lambda: len(got) == 9, timeout=20)
    assert got == list(range(1, 10)) and ctx._mailbox.waiting_writers == 0
    t.join(5)


def test_calls_from_threads_reply_timeout_dead_server(system: ActorSystem) -> None:
    server = gen_server.start(system, Echo(), [], name="echo")
    assert in_thread(lambda: server.call(("echo", 1))) == ("echo", 1)
    assert in_thread(lambda: gen_server.call("echo", 2, system=system)) == 2
    assert in_thread(lambda: system.call(server.pid, 3)) == 3
    assert in_thread(lambda: gen_server.call(server, 4)) == 4
    with pytest.raises(CallTimeout) as timed_out:
        in_thread(lambda: server.call("never", timeout=0.2))
    assert timed_out.value.timeout == 0.2
    with pytest.raises(CallError) as crashed:
        in_thread(lambda: server.call("crash"))
    assert isinstance(crashed.value.reason, RuntimeError)
    with pytest.raises(CallError) as dead:
        in_thread(lambda: server.call(("echo", 5)))
    assert dead.value.reason == "noproc"
    with pytest.raises(CallError):
        in_thread(lambda: system.call("nobody", 1))


def test_casts_from_threads_and_concurrent_calls(system: ActorSystem) -> None:
    server = gen_server.start(system, Echo(), [])
    results: list[Any] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        for i in range(50):
            gen_server.cast(system, server, (t, i))
            value = server.call(("echo", t, i))
            with lock:
                results.append(value)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(8)]
    for th in threads:
        th.start()
    wait_until(lambda: not any(th.is_alive() for th in threads), timeout=60)
    assert sorted(results) == sorted(("echo", t, i) for t in range(8) for i in range(50))


def test_call_from_thread_blocks_only_that_thread(system: ActorSystem) -> None:
    server = gen_server.start(system, Echo(), [])
    ticks: list[int] = []

    def ticker() -> None:
        for i in range(5):
            gevent.sleep(0.01)  # the ticker's period: what it shows is that the hub keeps running
            ticks.append(i)

    g = gevent.spawn(ticker)
    with pytest.raises(CallTimeout):
        in_thread(lambda: server.call("never", timeout=0.3))
    g.join(5)
    assert ticks == [0, 1, 2, 3, 4]


def test_remote_sends_and_call_from_thread() -> None:
    with node_cluster("ta", "tb") as (a, b):
        a.connect_to_node("tb")
        ref, got, done = collector(b.system, 3000)
        b.system.register("sink", ref.pid)
        gen_server.start(b.system, Echo(), [], name="echo")

        def work() -> Any:
            sink = a.system.call(("echo", "tb"), "where is sink")  # the sink's pid, as node ta names it
            for i in range(1000):
                a.system.send(sink, ("x", i))
            for i in range(1000):
                a.system.try_send(sink, ("y", i))
            for i in range(1000):
                a.system.send(("sink", "tb"), ("z", i))
            return a.system.call(("echo", "tb"), "over there")

        assert in_thread(work) == "over there"
        assert done.wait(timeout=30)
        for tag in "xyz":
            assert [m for m in got if m[0] == tag] == [(tag, i) for i in range(1000)]


PATCHED = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import threading
    from gevent.event import Event
    from joerl import gen_server
    from joerl.gen_server import GenServer, Reply
    from joerl.system import ActorSystem

    class Echo(GenServer):
        def handle_call(self, request, from_, state):
            return Reply(request, state)

    with ActorSystem() as system:
        server = gen_server.start(system, Echo(), None)
        got, done = [], Event()

        def body(ctx):
            while True:
                got.append(ctx.receive())
                if len(got) == 2000:
                    done.set()

        sink = system.spawn_fn(body)
        answers = []

        def work(tag):
            for i in range(1000):
                sink.send((tag, i))
            answers.append(server.call((tag, "call")))

        OsThread = monkey.get_original("threading", "Thread")
        t = OsThread(target=work, args=("os",), daemon=True)
        t.start()
        pool = gevent.get_hub().threadpool
        job = pool.spawn(work, "pool")
        assert done.wait(timeout=30), len(got)
        job.get(timeout=30)
        assert sorted(answers) == [("os", "call"), ("pool", "call")], answers
        for tag in ("os", "pool"):
            assert [m for m in got if m[0] == tag] == [(tag, i) for i in range(1000)]
        print("patched ok")
    """
).replace("from gevent.event import Event", "import gevent\nfrom gevent.event import Event")


def test_threads_under_monkey_patch_all() -> None:
    run = subprocess.run([sys.executable, "-c", PATCHED], capture_output=True, text=True, timeout=90, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "patched ok" in run.stdout
