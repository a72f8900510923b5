"""ActorSystem: plain-code use from the main greenlet (with and without
monkey-patching), send rules, introspection, and shutdown that leaves no
process and no greenlet behind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import gevent
import greenlet
import pytest
from gevent.event import Event

from joerl.actor import Actor, ActorContext
from joerl.errors import DistributionError, NotRegistered, SystemShutdown
from joerl.message import SHUTDOWN, Down
from joerl.pid import Pid
from joerl.system import SYSTEM_PID, ActorSystem
from joerl.testing import live_greenlets, wait_until

ROOT = Path(__file__).resolve().parents[2]


class Stoppable(Actor):
    """Records its stopped() reason into a shared list, tagged."""

    def __init__(self, tag: Any, log: list[Any], trap: bool = False, busy: Event | None = None) -> None:
        self.tag, self.log, self.trap, self.busy = tag, log, trap, busy
        self.running = Event()

    def started(self, ctx: ActorContext) -> None:
        ctx.trap_exit(self.trap)
        self.running.set()

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if self.busy is not None:
            self.busy.wait()  # stuck in a hook: shutdown must still end it

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        self.log.append((self.tag, reason))


# -- use from plain code ---------------------------------------------------------


def test_plain_code_in_the_main_greenlet(system: ActorSystem) -> None:
    assert gevent.getcurrent() is greenlet.getcurrent()
    results: list[int] = []

    def adder(ctx: ActorContext, total: int) -> None:
        while True:
            msg = ctx.receive()
            if msg == "done":
                results.append(total)
                return
            total += msg

    ref = system.spawn_fn(adder, 100)
    for i in range(10):
        system.send(ref.pid, i)
    ref.send("done")
    assert ref.join(2.0)
    assert results == [145]


SCRIPT = textwrap.dedent(
    """
    import sys
    if sys.argv[1] == "patched":
        from gevent import monkey
        monkey.patch_all()
    import time
    from joerl.actor import Actor
    from joerl.system import ActorSystem

    class Pong(Actor):
        def handle_message(self, msg, ctx):
            ctx.send(ctx.sender, ("pong", msg))

    def ping(ctx, pong, n):
        for i in range(n):
            ctx.send(pong, i)
            assert ctx.receive(timeout=5) == ("pong", i)
        ctx.send_after(0.01, ctx.pid, "tick")
        ctx.receive(timeout=5)
        if sys.argv[1] == "patched":
            time.sleep(0.01)  # patched: cooperative
        print("pinged", n, flush=True)

    with ActorSystem() as system:
        pong = system.spawn(Pong(), name="pong")
        pinger = system.spawn_fn(ping, "pong", 200)
        assert pinger.join(10)
        assert system.processes() == [pong.pid]
    assert system.processes() == []
    print("OK", sys.argv[1], flush=True)
    """
)


@pytest.mark.parametrize("mode", ["patched", "unpatched"])
def test_usable_with_and_without_monkey_patching(tmp_path: Path, mode: str) -> None:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["pinged 200", f"OK {mode}"]


def test_context_manager() -> None:
    log: list[Any] = []
    with ActorSystem("cm") as system:
        system.spawn(Stoppable("a", log))
        system.spawn_fn(lambda ctx: ctx.receive())
        assert len(system.processes()) == 2
    assert system.closed
    assert system.processes() == []
    assert log == [("a", SHUTDOWN)]


def test_context_manager_shuts_down_on_error() -> None:
    with pytest.raises(KeyError):
        with ActorSystem() as system:
            system.spawn_fn(lambda ctx: ctx.receive())
            raise KeyError("x")
    assert system.closed and system.processes() == []


# -- sending ------------------------------------------------------------------------


def test_sends_to_dead_pids_are_dropped_silently(system: ActorSystem, probe: Any) -> None:
    dead = system.spawn_fn(lambda ctx: None)
    assert dead.join(2.0)
    system.send(dead.pid, "x")
    system.try_send(dead.pid, "x")
    dead.send("x")
    system.send(Pid(0, 10**9), "never existed")

    def body(ctx: ActorContext) -> None:
        ctx.send(dead.pid, "x")
        ctx.send(probe.pid, "still alive")

    system.spawn_fn(body)
    assert probe.receive() == "still alive"


def test_send_destinations(system: ActorSystem, probe: Any) -> None:
    system.register("p", probe.pid)
    system.send(probe.pid, 1)
    system.send(probe.ref, 2)
    system.send("p", 3)
    system.send(("p", "anynode"), 4)  # a local system resolves (name, node) here
    assert [probe.receive() for _ in range(4)] == [1, 2, 3, 4]
    with pytest.raises(TypeError, match="cannot send"):
        system.send(42, "x")
    with pytest.raises(NotRegistered):
        system.send("nobody", "x")
    with pytest.raises(DistributionError, match="not distributed"):
        system.send(Pid.with_node(42, 1), "x")


def test_message_order_between_two_processes(system: ActorSystem, probe: Any) -> None:
    def sender(ctx: ActorContext) -> None:
        for i in range(500):
            ctx.send(probe.pid, i)

    system.spawn_fn(sender)
    assert [probe.receive() for _ in range(500)] == list(range(500))


# -- introspection ------------------------------------------------------------------


def test_processes_and_is_process_alive(system: ActorSystem) -> None:
    assert system.processes() == []
    refs = [system.spawn_fn(lambda ctx: ctx.receive()) for _ in range(3)]
    assert system.processes() == [r.pid for r in refs]  # oldest first
    assert all(system.is_process_alive(r.pid) for r in refs)
    refs[1].send("go")
    assert refs[1].join(2.0)
    assert system.processes() == [refs[0].pid, refs[2].pid]
    assert not system.is_process_alive(refs[1].pid)
    assert not system.is_process_alive(Pid(0, 10**9))
    assert not system.is_process_alive(SYSTEM_PID)
    assert system.context_of(refs[0].pid).pid == refs[0].pid  # type: ignore[union-attr]
    assert system.context_of(refs[1].pid) is None
    assert "processes=2" in repr(system)


def test_join_timeout(system: ActorSystem) -> None:
    ref = system.spawn_fn(lambda ctx: ctx.receive())
    assert system.join(ref.pid, 0.01) is False
    ref.send("go")
    assert system.join(ref.pid, 2.0) is True
    assert system.join(ref.pid, 0) is True


# -- shutdown -----------------------------------------------------------------------


def test_shutdown_stops_everything_with_reason_shutdown() -> None:
    log: list[Any] = []
    busy = Event()
    system = ActorSystem()
    plain = Stoppable("plain", log)
    trapping = Stoppable("trapping", log, trap=True)
    stuck = Stoppable("stuck", log, busy=busy)
    for actor in (plain, trapping, stuck):
        system.spawn(actor)
        assert actor.running.wait(2.0)
    system.send(system.processes()[2], "work")  # stuck now waits inside handle_message
    system.spawn_fn(lambda ctx: ctx.receive())
    system.spawn_fn(lambda ctx: None)
    t0 = time.monotonic()
    system.shutdown(timeout=5.0)
    assert time.monotonic() - t0 < 2.0
    assert system.processes() == [] and system.closed
    assert sorted(log) == [("plain", SHUTDOWN), ("stuck", SHUTDOWN), ("trapping", SHUTDOWN)]
    system.shutdown()  # twice is fine
    with pytest.raises(SystemShutdown):
        system.spawn_fn(lambda ctx: None)


def test_shutdown_order_newest_first_supervisors_first() -> None:
    log: list[Any] = []

    class Sup(Stoppable):
        _joerl_supervisor = True

    system = ActorSystem()
    system.spawn(Stoppable("old", log))
    system.spawn(Sup("sup", log))
    system.spawn(Stoppable("new", log))
    system.shutdown()
    assert log == [("sup", SHUTDOWN), ("new", SHUTDOWN), ("old", SHUTDOWN)]


def test_shutdown_with_monitors_between_processes() -> None:
    got: list[Any] = []
    system = ActorSystem()
    target = system.spawn_fn(lambda ctx: ctx.receive())

    class Watcher(Actor):
        def started(self, ctx: ActorContext) -> None:
            self.ref = ctx.monitor(target.pid)

        def stopped(self, reason: Any, ctx: ActorContext) -> None:
            got.append(reason)

    system.spawn(Watcher())
    system.shutdown()  # newest first: the watcher goes before its target
    assert got == [SHUTDOWN]
    assert system.processes() == []


def test_shutdown_leaves_no_greenlet_behind() -> None:
    gevent.get_hub()
    before = live_greenlets(greenlet.greenlet)
    log: list[Any] = []
    never = Event()
    system = ActorSystem()
    full = system.spawn_fn(lambda ctx: never.wait(), mailbox_size=1)
    full.send("fill")
    for i in range(20):
        system.spawn(Stoppable(i, log, trap=bool(i % 2)))
        system.spawn_fn(lambda ctx: ctx.receive())
        system.spawn_fn(lambda ctx, pid: ctx.send(pid, "blocked"), full.pid)  # blocks on the full mailbox
        system.spawn_fn(lambda ctx: never.wait())
    gevent.sleep(0)
    system.send_after(60, full.pid, "timer")
    assert len(live_greenlets(greenlet.greenlet) - before) == 81
    system.shutdown()
    assert system.processes() == []
    assert live_greenlets(greenlet.greenlet) - before == set()
    assert len(log) == 20


def test_shutdown_of_many_processes_is_fast() -> None:
    system = ActorSystem()
    for _ in range(5000):
        system.spawn_fn(lambda ctx: ctx.receive())
    t0 = time.monotonic()
    system.shutdown()
    assert time.monotonic() - t0 < 5.0
    assert system.processes() == []


def test_shutdown_kills_a_hanging_stopped_hook_before_returning() -> None:
    gevent.get_hub()
    before = live_greenlets(greenlet.greenlet)
    never = Event()

    class Hangs(Actor):
        def stopped(self, reason: Any, ctx: ActorContext) -> None:
            never.wait()

    system = ActorSystem()
    system.spawn(Hangs())
    gevent.sleep(0)
    t0 = time.monotonic()
    try:
        system.shutdown(timeout=0.1)
        assert time.monotonic() - t0 < 1.0  # killed once the timeout is out
        assert system.processes() == []
        assert live_greenlets(greenlet.greenlet) - before == set()
    finally:
        # Let the pending kill land: nothing may leak into later tests.
        wait_until(lambda: not (live_greenlets(greenlet.greenlet) - before), timeout=2.0)


def test_shutdown_from_inside_an_actor() -> None:
    log: list[Any] = []
    system = ActorSystem()
    system.spawn(Stoppable("other", log))
    caller = system.spawn_fn(lambda ctx: (ctx.receive(), ctx.system.shutdown(timeout=1.0)))
    caller.send("go")
    t0 = time.monotonic()
    try:
        assert caller.join(3.0)
        assert time.monotonic() - t0 < 0.5
        system.shutdown()  # waits for the shutdown the caller started
        assert system.closed and system.processes() == []
        assert log == [("other", SHUTDOWN)]
    finally:
        system.shutdown()


def test_down_from_shutdown_seen_by_plain_monitor(system: ActorSystem, probe: Any) -> None:
    # a process stopped while the system runs reports the reason it was given
    target = system.spawn_fn(lambda ctx: ctx.receive())
    ref = system.monitor(probe.pid, target.pid)
    assert system.stop(target.pid, SHUTDOWN)
    assert probe.receive() == Down(ref, target.pid, SHUTDOWN)


# -- shutdown from inside a process ---------------------------------------------------


class ShutsDownOnStop(Actor):
    """Calls ``ctx.system.shutdown(timeout)`` from its "stop" handler."""

    def __init__(self, log: list[Any], timeout: float) -> None:
        self.log, self.timeout = log, timeout
        self.running = Event()

    def started(self, ctx: ActorContext) -> None:
        self.running.set()

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if msg == "stop":
            ctx.system.shutdown(self.timeout)
            self.log.append("shutdown() returned")  # it must not: the caller is stopped too

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        self.log.append(("caller", reason))


def test_shutdown_from_a_stop_handler_stops_every_process_within_the_timeout() -> None:
    log: list[Any] = []
    busy = Event()
    system = ActorSystem()
    others = [Stoppable("plain", log), Stoppable("trapping", log, trap=True), Stoppable("stuck", log, busy=busy)]
    for actor in others:
        system.spawn(actor)
        assert actor.running.wait(2.0)
    system.send(system.processes()[2], "work")  # stuck now waits inside handle_message
    caller = ShutsDownOnStop(log, timeout=2.0)
    ref = system.spawn(caller)
    assert caller.running.wait(2.0)
    t0 = time.monotonic()
    ref.send("stop")
    try:
        assert ref.join(10.0)
        system.shutdown()  # waits for the shutdown the caller started
        assert time.monotonic() - t0 < 2.0 + 3.0  # the timeout, plus a loaded machine's slack
        assert system.closed and system.processes() == []
        assert sorted(map(repr, log)) == sorted(
            map(repr, [("plain", SHUTDOWN), ("trapping", SHUTDOWN), ("stuck", SHUTDOWN), ("caller", SHUTDOWN)])
        )
    finally:
        busy.set()
        system.shutdown()


def test_shutdown_from_a_stopped_hook_does_not_wait_on_itself() -> None:
    log: list[Any] = []
    system = ActorSystem()

    class ShutsDownAsItEnds(Actor):
        def stopped(self, reason: Any, ctx: ActorContext) -> None:
            ctx.system.shutdown(2.0)  # starts the shutdown and returns: this process is ending already
            log.append(("ender", reason))

    other = Stoppable("other", log)
    system.spawn(other)
    assert other.running.wait(2.0)
    ender = system.spawn(ShutsDownAsItEnds())
    try:
        assert ender.stop("bye", timeout=5.0)
        system.shutdown()
        assert system.closed and system.processes() == []
        assert sorted(log) == [("ender", "bye"), ("other", SHUTDOWN)]
    finally:
        system.shutdown()


# -- every destination, and every drop counted -------------------------------------------


def test_try_send_takes_every_destination_send_takes(system: ActorSystem, probe: Any) -> None:
    system.register("p", probe.pid)
    system.try_send(probe.pid, 1)
    system.try_send(probe.ref, 2)
    system.try_send("p", 3)
    system.try_send(("p", "anynode"), 4)  # (name, node) of a local system
    probe.ref.try_send(5)
    assert [probe.receive() for _ in range(5)] == [1, 2, 3, 4, 5]
    with pytest.raises(TypeError, match="cannot send"):
        system.try_send(42, "x")
    with pytest.raises(NotRegistered):
        system.try_send("nobody", "x")
    with pytest.raises(DistributionError, match="not distributed"):
        system.try_send(Pid.with_node(42, 1), "x")
    assert system.stats.dropped == 0


def test_try_send_to_another_node_by_name() -> None:
    from joerl.testing import Probe, node_cluster

    with node_cluster("try_a", "try_b") as (a, b):
        probe = Probe(b.system, timeout=5.0)
        b.system.register("inbox", probe.pid)
        a.system.try_send(("inbox", "try_b"), "by name")
        a.system.send_after(0, ("inbox", "try_b"), "by timer")
        assert sorted([probe.receive(), probe.receive()]) == ["by name", "by timer"]


def test_dropped_messages_are_counted(system: ActorSystem) -> None:
    stats = system.stats
    assert (stats.dropped, stats.dropped_by_reason) == (0, {})
    dead = system.spawn_fn(lambda ctx: None)
    assert dead.join(2.0)
    system.send(dead.pid, "x")
    system.try_send(dead.pid, "x")
    dead.send("x")
    system.send(Pid(0, 10**9), "never existed")
    assert (stats.dropped, stats.dropped_by_reason) == (4, {"noproc": 4})
    started = Event()

    def holds_its_mail(ctx: ActorContext) -> None:
        started.set()
        ctx.receive(match=lambda m: m == "quit")

    ref = system.spawn_fn(holds_its_mail)
    assert started.wait(2.0)
    for i in range(3):
        ref.send(i)
    ref.send("quit")  # 0, 1, 2 are still queued when it ends
    assert ref.join(2.0)
    assert stats.dropped_by_reason == {"noproc": 4, "exited": 3}
    assert stats.dropped == 7
    assert "dropped=7" in repr(stats)


def test_a_send_waiting_for_room_is_counted_when_its_receiver_ends(system: ActorSystem) -> None:
    release = Event()

    def full(ctx: ActorContext) -> None:
        release.wait()  # never reads: its one slot stays taken

    ref = system.spawn_fn(full, mailbox_size=1)
    system.send(ref.pid, "takes the slot")
    waiting = gevent.spawn(system.send, ref.pid, "waits for room")
    wait_until(lambda: len(ref.system.context_of(ref.pid)._mailbox._putters or ()) == 1, timeout=5.0)  # type: ignore[union-attr]
    system.exit(ref.pid, "kill")
    waiting.join(5.0)
    assert waiting.successful()
    # "takes the slot" was queued when it ended; "waits for room" never got in.
    assert system.stats.dropped_by_reason == {"exited": 1, "noproc": 1}
