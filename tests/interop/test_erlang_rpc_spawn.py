"""rpc and spawn_request between a joerl node and a real erl node: ``rpc:call`` from erl runs only
the handlers the joerl node registered (one registry: joerl.rpc's) and answers ``{badrpc, _}``
for anything else; a joerl node runs functions on erl through its ``rex``; ``spawn_request`` from
erl starts a factory the joerl node registered, and anything else is answered with an error."""

from __future__ import annotations

from typing import Any

import pytest
from erl_shell import ErlShell

from joerl import rpc
from joerl.erlang import Atom
from joerl.errors import RpcError
from joerl.testing import Probe

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

PY = "'py@127.0.0.1'"


@pytest.fixture(scope="module", autouse=True)
def handlers(py_node: Any) -> None:
    rpc.register(py_node, "math:add", lambda a, b: a + b)
    rpc.register(py_node, "py:fail", lambda: 1 / 0)


def test_rpc_call_from_erl_runs_a_registered_handler(e1: ErlShell) -> None:
    assert e1.eval(f"rpc:call({PY}, math, add, [2, 40])") == 42
    assert e1.eval(f"erpc:call({PY}, math, add, [1, 1])") == 2
    assert e1.eval(f"[rpc:call({PY}, math, add, [N, 1]) || N <- lists:seq(1, 20)]") == list(range(2, 22))


def test_rpc_call_from_erl_reaches_nothing_else(e1: ErlShell) -> None:
    for mfa in ('os, cmd, ["id"]', "erlang, halt, []", "math, sub, [1, 2]"):
        answer = e1.eval(f"rpc:call({PY}, {mfa})")
        assert answer[0] == Atom("badrpc"), answer
        assert answer[1][0] == Atom("EXIT") and answer[1][1][0] == Atom("undef"), answer


def test_a_handler_that_raises_is_a_badrpc_with_the_exception(e1: ErlShell) -> None:
    answer = e1.eval(f"rpc:call({PY}, py, fail, [])")
    assert answer[0] == Atom("badrpc")
    reason = answer[1][1][0]
    assert reason[0] == Atom("exception") and reason[1] == b"ZeroDivisionError"


def test_joerl_runs_a_function_on_erl_through_rex(py_node: Any, e1: ErlShell) -> None:
    assert rpc.call(py_node, "e1@127.0.0.1", "erlang:node") == Atom("e1@127.0.0.1")
    assert rpc.call(py_node, "e1@127.0.0.1", "lists:reverse", [1, 2, 3]) == [3, 2, 1]
    with pytest.raises(RpcError) as info:
        rpc.call(py_node, "e1@127.0.0.1", "no_such_module:f", 1)
    assert "undef" in info.value.remote_message


def test_spawn_request_from_erl_starts_a_registered_factory(py_node: Any, e1: ErlShell) -> None:
    def worker(ctx: Any, report_to: Any, word: Any) -> None:
        ctx.send(report_to, (word, ctx.pid))

    py_node.register_factory("worker", worker, function=True)
    with Probe(py_node, name="reports", timeout=10) as reports:
        pid = e1.eval(
            f"R = spawn_request({PY}, joerl, worker, [{{reports, {PY}}}, hello], [monitor]), "
            "receive {spawn_reply, R, ok, P} -> receive {'DOWN', R, process, P, Why} -> {P, Why} "
            "after 10000 -> no_down end; {spawn_reply, R, error, E} -> {error, E} after 10000 -> timeout end"
        )
        assert pid[1] == Atom("normal"), pid
        msg = reports.receive()
        assert msg[0] == Atom("hello") and py_node.erlang.to_erlang(msg[1]) == pid[0]


def test_spawn_request_of_anything_else_is_answered_with_an_error(e1: ErlShell) -> None:
    for mfa in ("joerl, nothing, []", 'os, cmd, ["id"]'):
        answer = e1.eval(
            f"R = spawn_request({PY}, {mfa}, []), "
            "receive {spawn_reply, R, Kind, What} -> {Kind, What} after 10000 -> timeout end"
        )
        assert answer == (Atom("error"), Atom("badarg")), answer
