"""joerl.rpc between nodes in one process: calls by registered name, errors with
the remote traceback, unknown names, missing servers, unreachable nodes,
timeouts, casts and multicalls; and the RpcHandlers table on its own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from gevent.event import Event

from joerl import rpc
from joerl.errors import CallTimeout, NodeUnreachable
from joerl.node.node import DistributedSystem
from joerl.pid import Pid
from joerl.rpc import RpcError, RpcHandlers
from joerl.testing import Probe, node_cluster, wait_until

pytestmark = pytest.mark.timeout(60)

WAIT = 15.0


@pytest.fixture
def trio() -> Iterator[list[DistributedSystem]]:
    with node_cluster("a", "b", "c", global_names=False) as nodes:
        yield nodes


def add(x: int, y: int) -> int:
    return x + y


def boom(what: str) -> None:
    raise ValueError(f"bad {what}")


def test_call_a_registered_function(trio: list[DistributedSystem]) -> None:
    a, b, _ = trio
    rpc.register(b, "math:add", add)
    assert rpc.call(a, "b", "math:add", 20, 22) == 42
    assert rpc.call(b, "b", "math:add", 1, 2) == 3  # the node's own name: a local call
    assert rpc.call(a, "b", "math:add", [1], [2]) == [1, 2]  # plain data crosses


def test_a_handler_that_raises_gives_its_type_message_and_traceback(trio: list[DistributedSystem]) -> None:
    a, b, _ = trio
    rpc.register(b, "boom", boom)
    with pytest.raises(RpcError) as info:
        rpc.call(a, "b", "boom", "input")
    err = info.value
    assert (err.kind, err.node, err.name) == ("raised", "b", "boom")
    assert err.remote_type == "ValueError" and err.remote_message == "bad input"
    assert "Traceback" in err.remote_traceback and "in boom" in err.remote_traceback
    assert "ValueError: bad input" in str(err)
    rpc.register(b, "add", add)  # the server survived
    assert rpc.call(a, "b", "add", 1, 1) == 2


def test_unknown_names_and_nodes_without_a_server(trio: list[DistributedSystem]) -> None:
    a, b, c = trio
    rpc.start(b)
    with pytest.raises(RpcError, match="no such handler") as info:
        rpc.call(a, "b", "os:system", "rm -rf /")
    assert info.value.kind == "no_such_handler"
    with pytest.raises(RpcError) as info:
        rpc.call(a, "c", "anything")  # c runs no rpc server
    assert info.value.kind == "no_server"


def test_an_unreachable_node(trio: list[DistributedSystem]) -> None:
    a = trio[0]
    with pytest.raises(NodeUnreachable):
        rpc.call(a, "nowhere", "add", 1, 2, timeout=WAIT)


def test_the_target_shutting_down_during_the_call(trio: list[DistributedSystem]) -> None:
    a, b, _ = trio
    entered = Event()

    def slow() -> None:
        entered.set()
        Event().wait()  # never answers

    def caller() -> BaseException | None:
        try:
            rpc.call(a, "b", "slow", timeout=WAIT)
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            return exc
        return None

    rpc.register(b, "slow", slow)
    job = gevent.spawn(caller)
    assert entered.wait(WAIT)
    b.shutdown()  # stops its processes (the rpc server with "shutdown"), then its links
    err = job.get(timeout=WAIT)
    assert isinstance(err, (RpcError, NodeUnreachable)), err
    if isinstance(err, RpcError):
        assert err.kind == "server_down" and "shutdown" in str(err)


def test_a_timeout(trio: list[DistributedSystem]) -> None:
    a, b, _ = trio
    release = Event()
    rpc.register(b, "wait", lambda: release.wait(WAIT))
    with pytest.raises(CallTimeout):
        rpc.call(a, "b", "wait", timeout=0.2)
    release.set()
    rpc.register(b, "add", add)
    assert rpc.call(a, "b", "add", 2, 2) == 4  # the late answer was dropped, not queued


def test_a_result_that_cannot_cross(trio: list[DistributedSystem]) -> None:
    a, b, _ = trio
    rpc.register(b, "object", object)
    with pytest.raises(RpcError) as info:
        rpc.call(a, "b", "object")
    assert info.value.kind == "badreply"


def test_cast(trio: list[DistributedSystem]) -> None:
    a, b, _ = trio
    with Probe(b) as probe:
        rpc.register(b, "notify", lambda pid, msg: b.system.send(pid, msg))
        rpc.cast(a, "b", "notify", probe.gpid, ("hello", 1))
        assert probe.receive("hello", timeout=WAIT) == ("hello", 1)
    server_pid = b.whereis("rex")
    assert isinstance(server_pid, Pid)
    rpc.cast(a, "b", "no_such")  # dropped and counted there, never raises here
    rpc.cast(a, "nowhere", "add", 1)


def test_multicall(trio: list[DistributedSystem]) -> None:
    a, b, c = trio
    for node in (a, b):
        rpc.register(node, "whoami", lambda node=node: node.node_name)
    rpc.start(c)  # a server without the handler
    results, errors = rpc.multicall(a, ["a", "b", "c", "nowhere"], "whoami", timeout=WAIT)
    assert results == {"a": a.node_name, "b": b.node_name}, "a name without a host gets this node's"
    assert set(errors) == {"c", "nowhere"}
    assert isinstance(errors["c"], RpcError) and errors["c"].kind == "no_such_handler"
    assert isinstance(errors["nowhere"], NodeUnreachable)


def test_handlers_are_registered_only_locally(trio: list[DistributedSystem]) -> None:
    a, b, _ = trio
    rpc.start(b)
    answer = a.system.call(("rex", "b"), ("register", "evil", "print", False), WAIT)
    assert answer[0] == "error"
    with pytest.raises(RpcError, match="no such handler"):
        rpc.call(a, "b", "evil")


def test_the_server_handle(trio: list[DistributedSystem]) -> None:
    a, b, _ = trio
    handlers = RpcHandlers()
    server = rpc.start(b, handlers)
    server.register("add", add)
    assert rpc.call(a, "b", "add", 3, 4) == 7
    assert handlers.unregister("add") and not handlers.unregister("add")
    with pytest.raises(RpcError, match="no such handler"):
        rpc.call(a, "b", "add", 3, 4)
    a.system.send(("rex", "b"), "junk")
    wait_until(lambda: server.dropped == 1, timeout=WAIT, what="the junk counted")
    server.stop()
    server.stop()
    with pytest.raises(RpcError) as info:
        rpc.call(a, "b", "add", 1, 1)
    assert info.value.kind == "no_server"


def test_rpc_handlers_table() -> None:
    table = RpcHandlers()
    table.register("Mod:fun", add)
    assert "Mod:fun" in table and len(table) == 1
    assert table.lookup("Mod:fun") is add and table.lookup("nope") is None and table.lookup(42) is None
    with pytest.raises(ValueError, match="already"):
        table.register("Mod:fun", add)
    table.register("Mod:fun", boom, replace=True)
    assert table.lookup("Mod:fun") is boom
    with pytest.raises(TypeError):
        table.register("", add)
    with pytest.raises(TypeError):
        table.register("x", 42)  # type: ignore[arg-type]
    assert table.names() == ["Mod:fun"]


def test_bad_arguments(trio: list[DistributedSystem]) -> None:
    a = trio[0]
    bad: Any = 42
    with pytest.raises(TypeError):
        rpc.call(a, bad, "add")
    with pytest.raises(TypeError):
        rpc.call(a, "b", "")
    with pytest.raises(TypeError):
        rpc.multicall(a, ["b", bad], "add")
