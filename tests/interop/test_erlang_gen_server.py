"""gen_server calls between a joerl node and a real erl node, both ways: replies, timeouts, servers
that crash or do not exist (the caller sees what Erlang's callers see), with OTP 25's alias and
monitor protocol."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from erl_shell import ErlShell

from joerl import gen_server
from joerl.erlang import Atom, ImproperList
from joerl.errors import CallError, CallTimeout
from joerl.gen_server import GenServer, NoReply, Reply

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

PY = "'py@127.0.0.1'"

ECHO_SRV = """
-module(echo_srv).
-behaviour(gen_server).
-export([start/1, init/1, handle_call/3, handle_cast/2]).
start(Name) -> gen_server:start({local, Name}, echo_srv, [], []).
init([]) -> {ok, []}.
handle_call(crash, _From, _S) -> erlang:error(boom);
handle_call({sleep, Ms}, _From, S) -> timer:sleep(Ms), {reply, slept, S};
handle_call(get, _From, S) -> {reply, {state, S}, S};
handle_call(Req, {Pid, Tag}, S) -> {reply, {echoed, Req, Pid, Tag}, S}.
handle_cast({store, X}, _S) -> {noreply, X};
handle_cast(_, S) -> {noreply, S}.
"""


class Echo(GenServer):
    """Replies with the request; ``hang`` is never answered; ``crash`` raises; ``get`` gives what was cast."""

    def handle_cast(self, request: Any, state: Any) -> Any:
        return request

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply | NoReply:
        if request == Atom("get"):
            return Reply(("state", state))
        if request == Atom("hang"):
            return NoReply()
        if request == Atom("crash"):
            raise ValueError("boom")
        return Reply(request)


@pytest.fixture
def echo(py_node: Any) -> Iterator[str]:
    ref = gen_server.start(py_node.system, Echo(), name="echo")
    yield "echo"
    if py_node.system.is_process_alive(ref.pid):
        ref.stop()


@pytest.fixture(scope="module")
def esrv(e1: ErlShell) -> str:
    e1.load_module(ECHO_SRV)
    assert e1.eval("{ok, P} = echo_srv:start(esrv), is_pid(P)") is True
    return "esrv"


def test_erl_calls_a_joerl_gen_server(echo: str, e1: ErlShell) -> None:
    assert e1.eval(f'gen_server:call({{echo, {PY}}}, {{req, 1, [a, b], <<"x">>}})') == (
        Atom("req"),
        1,
        [Atom("a"), Atom("b")],
        b"x",
    )
    many = e1.eval(f"[gen_server:call({{echo, {PY}}}, N) || N <- lists:seq(1, 50)]")
    assert many == list(range(1, 51))


def test_an_erl_call_that_times_out_exits_with_timeout(echo: str, e1: ErlShell) -> None:
    got = e1.eval(f"catch gen_server:call({{echo, {PY}}}, hang, 300)")
    assert got[0] == Atom("EXIT") and got[1][0] == Atom("timeout"), got
    assert e1.eval(f"gen_server:call({{echo, {PY}}}, still_up)") == Atom("still_up")


def test_an_erl_call_to_a_crashing_joerl_server_exits_with_its_reason(echo: str, e1: ErlShell) -> None:
    got = e1.eval(f"catch gen_server:call({{echo, {PY}}}, crash)")
    assert got[0] == Atom("EXIT"), got
    reason, where = got[1]
    assert reason[:3] == (Atom("exception"), b"ValueError", b"boom") and b"Traceback" in reason[3]
    assert where[:2] == (Atom("gen_server"), Atom("call"))


def test_an_erl_call_to_no_such_joerl_server_exits_with_noproc(py_node: Any, e1: ErlShell) -> None:
    got = e1.eval(f"catch gen_server:call({{nobody, {PY}}}, hello, 5000)")
    assert got[0] == Atom("EXIT") and got[1][0] == Atom("noproc"), got


def test_joerl_calls_an_erl_gen_server_by_name_with_otp_25s_alias_tag(py_node: Any, esrv: str) -> None:
    reply = py_node.call((esrv, "e1@127.0.0.1"), ("hello", 1), timeout=10)
    assert reply[:2] == (Atom("echoed"), (b"hello", 1))
    tag = reply[3]
    assert isinstance(tag, ImproperList) and tag.items == (Atom("alias"),)  # [alias | Ref]


def test_joerl_calls_an_erl_gen_server_by_pid(py_node: Any, e1: ErlShell, esrv: str) -> None:
    from joerl.testing import Probe

    with Probe(py_node, name="asker", timeout=10) as asker:
        e1.eval(f"{{asker, {PY}}} ! {{srv, whereis(esrv)}}")
        pid = asker.receive()[1]
    assert py_node.call(pid, 7, timeout=10)[:2] == (Atom("echoed"), 7)


def test_a_joerl_call_to_erl_times_out(py_node: Any, esrv: str) -> None:
    with pytest.raises(CallTimeout):
        py_node.call((esrv, "e1@127.0.0.1"), (Atom("sleep"), 1500), timeout=0.3)
    assert py_node.call((esrv, "e1@127.0.0.1"), 1, timeout=10)[1] == 1  # the late reply was dropped


def test_a_joerl_call_to_a_crashing_or_missing_erl_server_fails_with_its_reason(
    py_node: Any, e1: ErlShell, esrv: str
) -> None:
    with pytest.raises(CallError) as info:
        py_node.call(("nobody", "e1@127.0.0.1"), 1, timeout=10)
    assert info.value.reason == "noproc"
    with pytest.raises(CallError) as info:
        py_node.call((esrv, "e1@127.0.0.1"), Atom("crash"), timeout=10)
    assert info.value.reason[0] == Atom("boom")
    assert e1.eval("{ok, P} = echo_srv:start(esrv), is_pid(P)") is True  # (for the tests after)


def test_casts_both_ways(py_node: Any, echo: str, e1: ErlShell, esrv: str) -> None:
    assert e1.eval(f"gen_server:cast({{echo, {PY}}}, {{stored, 1}})") == Atom("ok")
    assert e1.eval(f"gen_server:call({{echo, {PY}}}, get)") == (b"state", (Atom("stored"), 1))
    gen_server.cast(py_node.system, (esrv, "e1@127.0.0.1"), (Atom("store"), "from_py"))
    assert py_node.call((esrv, "e1@127.0.0.1"), Atom("get"), timeout=10) == (Atom("state"), b"from_py")
