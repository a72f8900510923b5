"""The helpers of joerl.testing themselves: probes, handshake pairs, child processes, waits."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import gevent
import pytest

from joerl.actor import ActorContext
from joerl.errors import AuthenticationError
from joerl.message import Down, Exit
from joerl.node import protocol as P
from joerl.pid import Pid
from joerl.system import ActorSystem
from joerl.testing import (
    ACCEPTOR_IDENTITY,
    INITIATOR_IDENTITY,
    ChildProcess,
    FakeClock,
    Probe,
    ProcessGroup,
    Received,
    child_env,
    fields,
    fixed_random,
    free_port,
    handshake_engines,
    linked_pair,
    live_greenlets,
    node_cluster,
    run_handshake,
    stdin_lines,
    wait_until,
)

# -- Probe --------------------------------------------------------------------------------


def test_probe_receives_in_order_with_senders(system: ActorSystem) -> None:
    probe = Probe(system)
    system.send(probe.pid, 1)
    other = Probe(system)
    other.ctx.send(probe.pid, 2)
    assert probe.receive() == 1
    assert probe.receive_with_sender() == (2, other.pid)


def test_probe_selective_receive_keeps_the_rest_in_order(system: ActorSystem) -> None:
    probe = Probe(system)
    for msg in ["a", ("tag", 1), 3, ("other", 2), 4.5]:
        system.send(probe.pid, msg)
    assert probe.receive(float) == 4.5  # by type
    assert probe.receive("other") == ("other", 2)  # a tuple by its tag
    assert probe.receive(lambda m: m == 3) == 3  # by predicate
    assert probe.receive((int, tuple)) == ("tag", 1)  # a tuple of types
    assert probe.pending() == ["a"]
    assert probe.receive() == "a"


def test_probe_timeout_says_what_arrived_instead(system: ActorSystem) -> None:
    probe = Probe(system)
    system.send(probe.pid, "unrelated")
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match=r"no message matching 'reply' within 0.05s.*'unrelated'"):
        probe.receive("reply", timeout=0.05)
    assert time.monotonic() - t0 < 2.0
    assert probe.pending() == ["unrelated"]


def test_probe_expect_nothing(system: ActorSystem) -> None:
    probe = Probe(system)
    probe.expect_nothing(0.01)
    system.send(probe.pid, "late")
    with pytest.raises(AssertionError, match="expected no message, got 'late'"):
        probe.expect_nothing(0.5)
    system.send(probe.pid, "other")
    probe.expect_nothing(0.01, match=int)  # watches for ints only
    assert probe.pending() == ["other"]


def test_probe_sync_proves_nothing_was_queued_before(system: ActorSystem) -> None:
    probe = Probe(system)
    assert probe.sync() == []
    system.send(probe.pid, "before")
    assert probe.sync() == ["before"]
    assert probe.receive() == "before"


def test_trapping_probe_gets_exits_and_monitors_work(system: ActorSystem) -> None:
    probe = Probe(system, trap_exit=True)

    def dies(ctx: ActorContext) -> None:
        ctx.receive()

    worker = system.spawn_fn(dies)
    probe.ctx.link(worker.pid)
    ref = probe.ctx.monitor(worker.pid)
    system.send(worker.pid, "go")
    assert probe.receive(Down) == Down(ref, worker.pid, "normal")
    assert probe.receive(Exit) == Exit(worker.pid, "normal")


def test_probe_registered_name_and_stop(system: ActorSystem) -> None:
    with Probe(system, name="watcher") as probe:
        assert system.whereis("watcher") == probe.pid
        assert probe.gpid == probe.pid  # on no node
        system.send("watcher", "by name")
        assert probe.receive() == "by name"
    assert not probe.ref.is_alive()
    probe.stop()  # idempotent


def test_probe_on_a_node_names_itself_for_other_nodes() -> None:
    with node_cluster("pa", "pb") as (a, b):
        probe = Probe(a)
        assert probe.gpid == Pid(a.node_id, probe.pid.id, a.creation)
        b.system.send(probe.gpid, "across")
        assert probe.receive() == "across"


# -- handshake pairs ----------------------------------------------------------------------


def test_run_handshake_is_reproducible_and_established_on_both_sides() -> None:
    first = run_handshake(*handshake_engines())
    again = run_handshake(*handshake_engines())
    assert first[:4] == again[:4]  # fixed challenges: the same bytes
    assert first.initiator.peer.name == ACCEPTOR_IDENTITY.name
    assert first.acceptor.peer.name == INITIATOR_IDENTITY.name
    assert first.initiator.status == first.acceptor.status == "ok"
    assert fixed_random(7)(3) == b"\x07\x08\x09"


def test_run_handshake_with_a_wrong_cookie_fails() -> None:
    with pytest.raises(AuthenticationError):
        run_handshake(*handshake_engines(acceptor_cookie=b"another"))


def test_handshake_engines_options_reach_the_engines() -> None:
    ini, acc = handshake_engines(expected_peer="someone-else", acceptor_options={"tick_ms": 1234})
    with pytest.raises(P.HandshakeRefused):
        run_handshake(ini, acc)
    t = run_handshake(*handshake_engines(acceptor_options={"tick_ms": 1234}))
    assert t.initiator.peer.tick_ms == 1234


def test_linked_pair_carries_frames_both_ways_and_cleans_up() -> None:
    gevent.get_hub()
    before = live_greenlets()
    a_in, b_in = Received(), Received()
    with linked_pair(initiator_handler=a_in, acceptor_handler=b_in) as (a, b):
        assert a.peer.name == ACCEPTOR_IDENTITY.name and b.peer.name == INITIATOR_IDENTITY.name
        a.send(P.RegSend(None, "logger", b"to b"))
        b.send(P.RegSend(None, "logger", b"to a"))
        assert b_in.wait_for(1) == [P.RegSend(None, "logger", b"to b")]
        assert a_in.wait_for(1) == [P.RegSend(None, "logger", b"to a")]
    assert a.closed and b.closed
    wait_until(lambda: not (live_greenlets() - before), what="the links' greenlets to end")


def test_linked_pair_with_a_wrong_cookie_raises_and_leaves_nothing() -> None:
    gevent.get_hub()
    before = live_greenlets()
    with pytest.raises(AuthenticationError), linked_pair(acceptor_cookie=b"another"):
        pytest.fail("no link")
    wait_until(lambda: not (live_greenlets() - before), what="the handshake's greenlets to end")


def test_linked_pair_not_started_leaves_the_sockets_to_the_test() -> None:
    with linked_pair(start=False) as (a, b):
        assert a.sock.getpeername() == b.sock.getsockname()
        with pytest.raises(AssertionError, match="got 0 of 1"):
            Received().wait_for(1, timeout=0.01)


# -- child processes ----------------------------------------------------------------------

CHILD = """
import sys
print("starting", flush=True)
print("READY port=4370 node=x", flush=True)
print("oops", file=sys.stderr, flush=True)
for line in sys.stdin:
    print("echo " + line.strip(), flush=True)
    if line.strip() == "quit":
        break
"""


def child(code: str = CHILD, **kw: Any) -> ChildProcess:
    return ChildProcess([sys.executable, "-c", code], timeout=10.0, **kw)


def test_child_process_ready_line_commands_and_clean_exit() -> None:
    with child() as proc:
        assert proc.wait_ready() == {"port": "4370", "node": "x"} == proc.ready
        proc.write_line("hello")
        assert proc.wait_line(lambda line: "hello" in line) == "echo hello"
        proc.write_line("quit")
        assert proc.wait() == 0
        assert proc.lines == ["starting", "READY port=4370 node=x", "echo hello", "echo quit"]
    assert "oops" in proc.stderr()  # still readable after close
    assert not proc.alive()


def test_child_process_that_exits_before_the_line_fails_with_its_output() -> None:
    with child("print('bye'); raise SystemExit(3)") as proc:
        with pytest.raises(AssertionError, match=r"exited \(3\) before 'READY'.*bye"):
            proc.wait_ready()


def test_child_process_deadline() -> None:
    with child() as proc:
        with pytest.raises(AssertionError, match="no line 'NEVER' within 0.2s"):
            proc.wait_line("NEVER", timeout=0.2)


def test_child_process_terminate_and_close_reap_it() -> None:
    proc = child()
    proc.wait_ready()
    assert proc.terminate(5.0) == -signal.SIGTERM
    assert proc.proc.returncode is not None  # reaped: no zombie
    frozen = child()
    frozen.wait_ready()
    frozen.send_signal(signal.SIGSTOP)
    frozen.close()  # a frozen child is killed too
    assert frozen.proc.returncode == -signal.SIGKILL
    frozen.close()  # idempotent


def test_stdin_lines_splits_across_reads_and_keeps_a_last_line_without_newline() -> None:
    r, w = os.pipe()
    try:
        lines = stdin_lines(r)
        os.write(w, b"a\nb")
        assert next(lines) == "a"
        os.write(w, b"c\n\xff\n\n")
        assert [next(lines), next(lines), next(lines)] == ["bc", "\ufffd", ""]
        os.write(w, b"last")
        os.close(w)
        w = -1
        assert list(lines) == ["last"]
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


STDIN_CHILD = """
import gevent
from joerl.testing import stdin_lines
gevent.spawn(print, "the hub runs", flush=True)  # runs only if waiting for input lets the hub run
print("READY", flush=True)
for line in stdin_lines():
    print("got " + line, flush=True)
print("EOF", flush=True)
"""


def test_stdin_lines_in_a_child_waits_without_blocking_its_hub() -> None:
    with child(STDIN_CHILD) as proc:
        proc.wait_ready()
        proc.wait_line("the hub runs")
        proc.write_line("hello")
        assert proc.wait_line("got") == "got hello"
        assert proc.proc.stdin is not None
        proc.proc.stdin.close()
        proc.wait_line("EOF")
        assert proc.wait() == 0


def test_child_process_without_stdin_reads_eof() -> None:
    with child(stdin=False) as proc:
        proc.wait_ready()
        assert proc.wait() == 0  # its stdin loop ended at once
        with pytest.raises(ValueError):
            proc.write_line("x")


def test_child_env_and_fields() -> None:
    env = child_env("sesame")
    assert env["JOERL_COOKIE"] == "sesame"
    assert "JOERL_EPMD_ADDRESS" not in env
    import joerl

    root = str(__import__("pathlib").Path(joerl.__file__).resolve().parents[1])
    assert env["PYTHONPATH"].split(":")[0] == root
    assert fields("READY port=1 b=x=y junk") == {"port": "1", "b": "x=y"}


# -- waits ----------------------------------------------------------------------------------


def test_wait_until_returns_the_value_or_times_out() -> None:
    box: list[int] = []
    gevent.spawn_later(0.01, box.append, 5)
    assert wait_until(lambda: box, timeout=5.0) == [5]
    with pytest.raises(TimeoutError, match="never"):
        wait_until(lambda: False, timeout=0.02, what="never")


def test_fake_clock_and_free_port() -> None:
    clock = FakeClock(10.0)
    clock.advance(2.5)
    assert clock() == 12.5
    assert 0 < free_port() < 65536


def test_process_group_kills_and_reaps_every_child() -> None:
    with ProcessGroup(timeout=10.0) as group:
        first = group.start([sys.executable, "-c", CHILD])
        second = group.start([sys.executable, "-c", CHILD], stdin=False)
        first.wait_ready()
        second.wait_ready()
    assert first.proc.returncode == -signal.SIGKILL and second.proc.returncode is not None
    assert group.children == []
