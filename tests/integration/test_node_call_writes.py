"""A remote call costs one write each way (issue 17): its ``Demonitor`` leaves
with the next call (``Connection.send_later``), or on its own once the caller
yields to the hub; order on the link is kept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from joerl import gen_server
from joerl.errors import CallError, CallTimeout
from joerl.node import protocol as p
from joerl.node.node import DistributedSystem
from joerl.testing import node_cluster, running_epmd, wait_until


class Echo(gen_server.GenServer):
    def init(self, args: object) -> None:
        return None

    def handle_call(self, request: object, from_: object, state: None) -> gen_server.Reply:
        return gen_server.Reply(request, state)


@pytest.fixture
def pair() -> Iterator[tuple[DistributedSystem, DistributedSystem]]:
    with node_cluster("a", "b", cookie="calls", global_names=False) as (a, b):
        yield a, b


def test_back_to_back_calls_take_one_write_each_and_leave_no_monitor(
    pair: tuple[DistributedSystem, DistributedSystem],
) -> None:
    a, b = pair
    server = gen_server.start(b.system, Echo(), None).pid
    gpid = type(server)(b.node_id, server.id, b.creation)
    assert a.system.call(gpid, 0, 5) == 0  # the link is up
    conn = a._peers[b.node_name].link
    assert conn is not None
    writes = conn.stats.writes
    n = 200
    for i in range(n):
        assert a.system.call(gpid, i, 5) == i
    # One write per call (Demonitor of call i with Monitor and Send of call i + 1),
    # give or take the last Demonitor, which leaves once the caller yields.
    assert conn.stats.writes - writes <= n + 2
    ctx = b.system.context_of(server)
    assert ctx is not None
    wait_until(lambda: not ctx._monitored_by, what="every Demonitor to arrive")


# -- CALL frames (FLAG_CALL): the server's node drops the call's monitor as it replies -------------


class Forward(gen_server.GenServer):
    """Hands each call's From to ``helper`` (a process of another node), which replies."""

    def init(self, args: object) -> object:
        return args

    def handle_call(self, request: object, from_: object, state: object) -> gen_server.NoReply:
        if request == "crash":
            raise RuntimeError("boom")
        if request == "hold":
            return gen_server.NoReply()
        self.ctx.send(state, (from_, request))  # type: ignore[arg-type]
        return gen_server.NoReply()


def _served(node: DistributedSystem) -> dict[object, object]:
    return node._routing.calls.served


def test_a_call_answered_by_its_servers_node_leaves_no_monitor_at_once(
    pair: tuple[DistributedSystem, DistributedSystem],
) -> None:
    """The reply drops the monitor on the server's node: none is left the
    moment a call returns, and the caller sent no DEMONITOR."""
    a, b = pair
    server = gen_server.start(b.system, Echo(), None).pid
    gpid = type(server)(b.node_id, server.id, b.creation)
    ctx = b.system.context_of(server)
    assert ctx is not None
    assert a.system.call(gpid, -1, 5) == -1  # (no link yet: MONITOR, SEND, then DEMONITOR)
    wait_until(lambda: not ctx._monitored_by, what="the first call's DEMONITOR")
    for i in range(50):
        assert a.system.call(gpid, i, 5) == i
        assert not ctx._monitored_by and not _served(b)
    conn = a._peers[b.node_name].link
    assert conn is not None and conn.flags & p.FLAG_CALL


def test_a_call_replied_from_a_third_node_or_timed_out_or_crashed_forgets_its_monitor() -> None:
    """Calls that end otherwise than by their server's node's reply send
    DEMONITOR: the monitor and the server node's record of the call go."""
    with node_cluster("a", "b", "c", cookie="calls3", global_names=False) as (a, b, c):

        def helper(hctx: Any) -> None:
            while True:
                from_, request = hctx.receive()
                gen_server.reply(c.system, from_, ("from c", request))

        hpid = c.system.spawn_fn(helper).pid
        ghelper = type(hpid)(c.node_id, hpid.id, c.creation)
        server = gen_server.start(b.system, Forward(), ghelper).pid
        gpid = type(server)(b.node_id, server.id, b.creation)
        ctx = b.system.context_of(server)
        assert ctx is not None
        assert a.connect_to_node(b.node_name) and c.connect_to_node(a.node_name)  # (calls go as CALL frames)
        assert a.system.call(gpid, 1, 5) == ("from c", 1)
        wait_until(lambda: not ctx._monitored_by and not _served(b), what="the DEMONITOR of a call replied from c")
        with pytest.raises(CallTimeout):
            a.system.call(gpid, "hold", 0.2)
        wait_until(lambda: not ctx._monitored_by and not _served(b), what="the DEMONITOR of a timed-out call")
        with pytest.raises(CallError):
            a.system.call(gpid, "crash", 5)
        wait_until(lambda: not _served(b), what="the DEMONITOR of a call whose server crashed")


def test_calls_to_a_node_without_flag_call_take_monitor_and_send(monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer that does not offer FLAG_CALL (a joerl before it) gets MONITOR,
    SEND and DEMONITOR, as before; the calls and their monitors are the same."""
    with running_epmd() as epmd:
        opts: dict[str, Any] = {"cookie": "calls-old", "start_epmd": False, "global_names": False}
        with DistributedSystem("a", "127.0.0.1:0", epmd, **opts) as a:
            monkeypatch.setattr(p, "DEFAULT_FLAGS", p.DEFAULT_FLAGS & ~p.FLAG_CALL)
            with DistributedSystem("b", "127.0.0.1:0", epmd, **opts) as b:
                monkeypatch.undo()
                server = gen_server.start(b.system, Echo(), None).pid
                gpid = type(server)(b.node_id, server.id, b.creation)
                for i in range(20):
                    assert a.system.call(gpid, i, 5) == i
                conn = a._peers[b.node_name].link
                assert conn is not None and not conn.flags & p.FLAG_CALL
                ctx = b.system.context_of(server)
                assert ctx is not None
                wait_until(lambda: not ctx._monitored_by, what="every DEMONITOR to arrive")
                assert not _served(b)


@pytest.mark.parametrize(
    "request_",
    [7, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1, "ascii", "é", b"x", None, True, 1.5, ("get", 1),
     {"a": 1}, [1, 2], ("nested", (1,)), ()],
    ids=repr,
)  # fmt: skip
def test_requests_and_replies_cross_alike_as_plain_terms_or_through_the_codec(
    pair: tuple[DistributedSystem, DistributedSystem], request_: object
) -> None:
    """A plain term travels in a CALL or its reply as itself, anything else in
    the codec's bytes: either way the server and the caller get what was sent,
    type and all."""
    a, b = pair
    server = gen_server.start(b.system, Echo(), None).pid
    gpid = type(server)(b.node_id, server.id, b.creation)
    assert a.connect_to_node(b.node_name)
    got = a.system.call(gpid, request_, 5)
    assert got == request_ and type(got) is type(request_)
