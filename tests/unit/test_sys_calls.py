"""sys-style calls on GenServer and GenStatem: get_state, get_status, suspend/resume, statistics."""

from __future__ import annotations

from typing import Any

import pytest

from joerl import ActorContext, ActorSystem, CallError, CallTimeout, GenServer, Reply, gen_server, gen_statem, sys_calls
from joerl.gen_statem import GenStatem, KeepState, NextState
from joerl.gen_statem import Reply as StatemReply
from joerl.testing import wait_until


class Counter(GenServer):
    def init(self, args: Any) -> Any:
        return {"n": args}

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply(state["n"], state)

    def handle_cast(self, request: Any, state: Any) -> Any:
        return {"n": state["n"] + request}


class Door(GenStatem):
    def init(self, args: Any) -> Any:
        return ("locked", {"code": args})

    def locked(self, event_type: Any, content: Any, data: Any) -> Any:
        if event_type == "cast" and content == data["code"]:
            return NextState("open", data)
        return KeepState(data)

    def open(self, event_type: Any, content: Any, data: Any) -> Any:
        if isinstance(event_type, tuple):  # a call
            return KeepState(data, [StatemReply(event_type[1], "open")])
        return KeepState(data)


@pytest.fixture
def system() -> Any:
    with ActorSystem() as s:
        yield s


def test_get_state_and_status_of_a_gen_server(system: ActorSystem) -> None:
    ref = gen_server.start(system, Counter(), 1, name="counter")
    ref.cast(2)
    assert sys_calls.get_state(ref) == {"n": 3}
    assert sys_calls.get_state("counter", system=system) == {"n": 3}
    status = sys_calls.get_status(ref)
    assert status["pid"] == ref.pid and status["name"] == "counter" and status["status"] == "running"
    assert status["behaviour"].endswith("Counter") and status["state"] == {"n": 3}
    assert status["mailbox_len"] == 0 and status["trap_exit"] is False


def test_get_state_of_a_gen_statem_is_its_state_and_data(system: ActorSystem) -> None:
    ref = gen_statem.start(system, Door(), 42)
    assert sys_calls.get_state(ref) == ("locked", {"code": 42})
    gen_statem.cast(system, ref, 42)
    assert sys_calls.get_state(ref) == ("open", {"code": 42})
    assert sys_calls.get_status(ref)["behaviour"].endswith("Door")


def test_a_suspended_server_queues_messages_and_still_answers_system_calls(system: ActorSystem) -> None:
    ref = gen_server.start(system, Counter(), 0)
    sys_calls.suspend(ref)
    sys_calls.suspend(ref)  # twice: nothing more
    ref.cast(5)
    with pytest.raises(CallTimeout):
        ref.call("read", timeout=0.2)  # queued, not answered
    assert sys_calls.get_state(ref) == {"n": 0}
    assert sys_calls.get_status(ref)["status"] == "suspended"
    assert system.context_of(ref.pid).mailbox_len >= 1  # type: ignore[union-attr]
    sys_calls.resume(ref)
    assert ref.call("read") == 5  # the cast was kept and handled, in order
    assert sys_calls.get_status(ref)["status"] == "running"
    sys_calls.resume(ref)  # resuming a running server does nothing


def test_a_suspended_gen_statem_keeps_its_events(system: ActorSystem) -> None:
    ref = gen_statem.start(system, Door(), 7)
    sys_calls.suspend(ref)
    gen_statem.cast(system, ref, 7)
    assert sys_calls.get_state(ref)[0] == "locked"
    sys_calls.resume(ref)
    assert ref.call("state?") == "open"


def test_a_suspended_server_can_still_be_stopped(system: ActorSystem) -> None:
    ref = gen_server.start(system, Counter(), 0)
    sys_calls.suspend(ref)
    system.exit(ref.pid, "kill")
    assert ref.wait(5) == "killed"
    with pytest.raises(CallError):
        sys_calls.get_state(ref)


def test_statistics_count_messages_while_on(system: ActorSystem) -> None:
    ref = gen_server.start(system, Counter(), 0)
    assert sys_calls.statistics(ref, "get") is None
    sys_calls.statistics(ref, True)
    for _ in range(3):
        ref.cast(1)
    ref.call("read")
    stats = sys_calls.statistics(ref, "get")
    assert stats is not None
    assert stats["messages_in"] >= 4 and stats["current_time"] >= stats["start_time"]
    sys_calls.statistics(ref, False)
    assert sys_calls.statistics(ref, "get") is None
    with pytest.raises(ValueError):
        sys_calls.statistics(ref, "maybe")


def test_from_an_actor_and_against_a_plain_process(system: ActorSystem) -> None:
    server = gen_server.start(system, Counter(), 9)
    seen: list[Any] = []

    def client(ctx: ActorContext) -> None:
        seen.append(sys_calls.get_state(server.pid, system=ctx))

    system.spawn_fn(client)
    wait_until(lambda: seen == [{"n": 9}], timeout=5)
    plain = system.spawn_fn(lambda ctx: ctx.receive(lambda m: m == "never"))
    with pytest.raises(CallTimeout):  # no behaviour: no answer, as in Erlang
        sys_calls.get_state(plain, timeout=0.1)
    with pytest.raises(TypeError):
        sys_calls.get_state(plain.pid)


def test_sys_calls_through_another_node() -> None:
    from joerl.testing import node_cluster

    with node_cluster("sys_a", "sys_b", cookie="sys-calls-cookie", global_names=False) as (a, b):
        ref = gen_server.start(b.system, Counter(), 4, name="counter")
        remote_pid = b.global_pid(ref.pid)
        assert sys_calls.get_state(remote_pid, system=a.system) == {"n": 4}
        assert sys_calls.get_state(("counter", b.node_name), system=a.system) == {"n": 4}
        status = sys_calls.get_status(remote_pid, system=a.system)
        assert status["status"] == "running" and status["name"] == "counter"
        sys_calls.suspend(remote_pid, system=a.system)
        a.system.send(remote_pid, ("$gen_cast", 1))
        assert sys_calls.get_status(remote_pid, system=a.system)["status"] == "suspended"
        sys_calls.resume(remote_pid, system=a.system)
        assert a.call(remote_pid, "read") == 5
        sys_calls.statistics(remote_pid, True, system=a.system)
        stats = sys_calls.statistics(remote_pid, "get", system=a.system)
        assert stats is not None and stats["messages_in"] >= 1


def test_supervisors_answer_with_their_children(system: ActorSystem) -> None:
    from joerl import ChildSpec, DynamicSupervisor, Supervisor, start_supervisor

    sup = start_supervisor(
        system, Supervisor("one_for_one", [ChildSpec("counter", lambda ctx: gen_server.start_link(ctx, Counter(), 1))])
    )
    children = sys_calls.get_state(sup)
    assert children == sup.which_children()
    assert sys_calls.get_status(sup)["behaviour"].endswith("Supervisor")
    sys_calls.suspend(sup)
    assert sys_calls.get_status(sup)["status"] == "suspended"
    sys_calls.resume(sup)
    assert sup.which_children() == children
    dyn = start_supervisor(system, DynamicSupervisor())
    assert sys_calls.get_state(dyn) == []
