"""Links, monitors and exit signals between a joerl node and real erl nodes, both ways: by pid and
(monitors) by registered name, exit reasons mapped both ways (normal, kill/killed, noproc,
{shutdown, _}, joerl's exception reasons as tuples), and noconnection when a link drops."""

from __future__ import annotations

from typing import Any

import pytest
from erl_shell import ErlShell, erlang_node

from joerl import rpc
from joerl.erlang import Atom, encode
from joerl.message import Down, ExceptionReason, Exit, NodeDown
from joerl.testing import Probe, wait_until

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

PY = "'py@127.0.0.1'"
#: A round trip to the joerl node over the same link (signals on one link stay in order):
#: a call to a name nobody holds there is answered noproc, after what was sent before it.
SYNC = "catch gen_server:call({nobody, case T of {_, N} -> N; _ -> node(T) end}, sync, 10000)"


def lit(node: Any, term: Any) -> str:
    """Erlang source for ``term`` (joerl pids and refs as the Erlang node sees them)."""
    return f'binary_to_term(binary:decode_hex(<<"{encode(node.erlang.to_erlang(term)).hex()}">>))'


def watch_from_erl(e: ErlShell, how: str, target: str) -> None:
    """An Erlang process that links to (``link``) or monitors (``monitor``) ``target`` and reports what it gets."""
    setup = "process_flag(trap_exit, true), link(T)" if how == "link" else "erlang:monitor(process, T)"
    e.eval(
        "catch unregister(watcher), S = self(), T = " + target + ", "
        "W = spawn(fun() -> " + setup + ", " + SYNC + ", S ! ready, receive X -> S ! {got, X} end end), "
        "register(watcher, W), receive ready -> ok after 10000 -> timeout end"
    )


def sync(node: Any, erl_node: str = "e1@127.0.0.1") -> None:
    """A round trip to ``erl_node`` over the link: what was sent before has arrived there, in order."""
    assert rpc.call(node, erl_node, "erlang:node", timeout=10) == Atom(erl_node)


def got(e: ErlShell) -> Any:
    return e.eval("receive {got, X} -> X after 10000 -> timeout end")


def erl_process(e: ErlShell, name: str) -> None:
    """A registered Erlang process that exits with whatever reason it is sent."""
    e.eval(f"catch unregister({name}), register({name}, spawn(fun() -> receive R -> exit(R) end end))")


def pid_of(node: Any, e: ErlShell, name: str) -> Any:
    with Probe(node, timeout=10) as p:
        e.eval(f"{lit(node, p.pid)} ! whereis({name})")
        return p.receive()


@pytest.mark.parametrize(
    ("reason", "seen"),
    [
        ("normal", Atom("normal")),
        (("shutdown", Atom("bye")), (Atom("shutdown"), Atom("bye"))),
        (ValueError("bad"), None),
    ],
)
def test_erl_links_to_a_joerl_process_and_gets_its_exit(py_node: Any, e1: ErlShell, reason: Any, seen: Any) -> None:
    target = Probe(py_node)
    watch_from_erl(e1, "link", lit(py_node, target.pid))
    target.stop(reason)
    tag, pid, why = got(e1)
    assert tag == Atom("EXIT") and pid == py_node.erlang.to_erlang(target.pid)
    if seen is not None:
        assert why == seen
    else:
        assert why[:3] == (Atom("exception"), b"ValueError", b"bad")


def test_erl_monitors_a_joerl_process_by_pid_and_by_name(py_node: Any, e1: ErlShell) -> None:
    target = Probe(py_node, name="watched")
    watch_from_erl(e1, "monitor", lit(py_node, target.pid))
    target.stop(("shutdown", 1))
    down = got(e1)
    assert down[0] == Atom("DOWN") and down[4] == (Atom("shutdown"), 1)
    target = Probe(py_node, name="watched")
    watch_from_erl(e1, "monitor", f"{{watched, {PY}}}")
    target.stop("normal")
    down = got(e1)
    assert down[3] == (Atom("watched"), Atom("py@127.0.0.1")) and down[4] == Atom("normal")
    watch_from_erl(e1, "monitor", f"{{nobody, {PY}}}")
    assert got(e1)[4] == Atom("noproc")


def test_erl_sends_exit_signals_to_a_joerl_process(py_node: Any, e1: ErlShell) -> None:
    with Probe(py_node, trap_exit=True, timeout=10) as probe:
        e1.eval(f"exit({lit(py_node, probe.pid)}, {{shutdown, bye}})")
        msg = probe.receive(Exit)
        assert msg.reason == ("shutdown", Atom("bye"))
    victim = Probe(py_node)
    e1.eval(f"exit({lit(py_node, victim.pid)}, kill)")
    wait_until(lambda: not py_node.system.is_process_alive(victim.pid), timeout=10, what="killed")
    assert victim.ref.exit_reason == "killed"


@pytest.mark.parametrize(
    ("sent", "reason"),
    [("normal", "normal"), ("{shutdown, x}", ("shutdown", Atom("x"))), ("kill", "killed"), ("boom", "boom")],
)
def test_a_joerl_process_links_to_an_erl_process_and_gets_its_exit(
    py_node: Any, e1: ErlShell, sent: str, reason: Any
) -> None:
    erl_process(e1, "victim")
    pid = pid_of(py_node, e1, "victim")
    with Probe(py_node, trap_exit=True, timeout=10) as probe:
        probe.ctx.link(pid)
        sync(py_node)
        if sent == "kill":
            e1.eval("exit(whereis(victim), kill)")
        else:
            e1.eval(f"victim ! {sent}")
        msg = probe.receive(Exit)
        assert msg.pid == pid and msg.reason == reason


def test_a_joerl_process_exits_linked_erl_processes_with_its_reason(py_node: Any, e1: ErlShell) -> None:
    with Probe(py_node, timeout=10) as probe:
        watch_from_erl(e1, "link", lit(py_node, probe.pid))
        probe.ctx.exit(py_node.erlang.to_local(e1.eval("whereis(watcher)")), ("shutdown", "from_py"))  # exit/2
        tag, _, why = got(e1)
        assert tag == Atom("EXIT") and why == (Atom("shutdown"), b"from_py")


def test_a_joerl_process_monitors_erl_processes_by_pid_and_by_name(py_node: Any, e1: ErlShell) -> None:
    erl_process(e1, "victim")
    pid = pid_of(py_node, e1, "victim")
    with Probe(py_node, timeout=10) as probe:
        ref = probe.ctx.monitor(pid)
        sync(py_node)
        e1.eval("victim ! {shutdown, done}")
        down = probe.receive(Down)
        assert down.ref == ref and down.pid == pid and down.reason == ("shutdown", Atom("done"))
        erl_process(e1, "victim")
        ref = probe.ctx.monitor(("victim", "e1@127.0.0.1"))
        sync(py_node)
        e1.eval("victim ! normal")
        assert probe.receive(Down).reason == "normal"
        ref = probe.ctx.monitor(("nobody", "e1@127.0.0.1"))
        down = probe.receive(Down)
        assert down.ref == ref and down.reason == "noproc"


def test_noconnection_when_the_link_to_an_erlang_node_drops(py_node: Any, epmd_port: int) -> None:
    e5 = ErlShell(epmd_port, "e5")
    try:
        erl_process(e5, "victim")
        pid = pid_of(py_node, e5, "victim")
        with Probe(py_node, trap_exit=True, timeout=10) as probe:
            probe.ctx.link(pid)
            ref = probe.ctx.monitor(pid)
            py_node.monitor_node(probe.pid, "e5@127.0.0.1")
            sync(py_node, "e5@127.0.0.1")
            e5.kill()
            assert probe.receive(Exit) == Exit(pid, "noconnection")
            assert probe.receive(Down) == Down(ref, pid, "noconnection")
            assert probe.receive(NodeDown) == NodeDown("e5@127.0.0.1", "noconnection")
    finally:
        e5.close()


def test_erl_sees_noconnection_when_a_joerl_node_goes(epmd_port: int, e1: ErlShell) -> None:
    other = erlang_node(epmd_port, "brief@127.0.0.1")
    try:
        target = Probe(other)
        watch_from_erl(e1, "link", lit(other, target.pid))
    finally:
        other.shutdown()
    tag, _, why = got(e1)
    assert tag == Atom("EXIT") and why == Atom("shutdown")  # (its exit signal, flushed before the link closed)


def test_exception_reasons_cross_as_tuples_and_come_back(py_node: Any, e1: ErlShell) -> None:
    erl_process(e1, "victim")
    pid = pid_of(py_node, e1, "victim")
    reason = ExceptionReason("KeyError", "'k'", "Traceback ...")
    with Probe(py_node, trap_exit=True, timeout=10) as probe:
        probe.ctx.link(pid)
        sync(py_node)
        e1.eval(f"victim ! {lit(py_node, reason)}")
        assert probe.receive(Exit).reason == reason


def test_is_process_alive_asks_the_erlang_node(py_node: Any, e1: ErlShell) -> None:
    erl_process(e1, "victim")
    pid = pid_of(py_node, e1, "victim")
    assert py_node.is_process_alive(pid) is True
    assert py_node.node_of(pid) == "e1@127.0.0.1"
    e1.eval("exit(whereis(victim), kill)")
    wait_until(lambda: not py_node.is_process_alive(pid), timeout=10, what="gone")
