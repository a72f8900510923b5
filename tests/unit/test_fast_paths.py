"""The runtime's fast paths keep the general behaviour: what plain code sends
arrives as sent (tuples included) with no sender, ``ctx.sender`` is set for
every message, the process table finds a process only by its exact pid,
bounded mailboxes still hold writers back and let them in, and calls leave
no monitor or waiter behind."""

from __future__ import annotations

from typing import Any, NamedTuple

import gevent
import pytest
from gevent.event import Event

from joerl.actor import Actor, ActorContext
from joerl.errors import CallError, CallTimeout, DistributionError, NoProcError
from joerl.gen_server import GenServer, NoReply, Reply, start
from joerl.mailbox import Mailbox
from joerl.message import NOPROC, Down
from joerl.pid import Pid, Ref
from joerl.system import ActorSystem

WAIT = 2.0


class Point(NamedTuple):
    x: int
    y: int


def plain_messages(some_pid: Pid) -> list[Any]:
    """Messages that must arrive unchanged, among them tuples that look like the
    mailbox's own (message, sender) pairs."""
    return [1, "s", None, (), (1,), (1, 2), ("m", some_pid), ("m", None), Point(1, 2), [1, 2], {"k": (3, 4)}]


class Log(Actor):
    """Records (message, sender) for every message; ``gate`` holds it in handle_message."""

    def __init__(self, expected: int, gate: Event | None = None) -> None:
        self.got: list[tuple[Any, Any]] = []
        self.expected = expected
        self.gate = gate
        self.done = Event()

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if self.gate is not None:
            assert self.gate.wait(5.0)
        self.got.append((msg, ctx.sender))
        if len(self.got) == self.expected:
            self.done.set()


@pytest.mark.parametrize("mailbox_size", [None, 100])
def test_plain_sends_arrive_as_sent_with_no_sender_in_an_actor(system: ActorSystem, mailbox_size: int | None) -> None:
    msgs = plain_messages(Pid(0, 77))
    log = Log(2 * len(msgs))
    ref = system.spawn(log, mailbox_size=mailbox_size)

    def relay(ctx: ActorContext) -> None:  # the same messages, from an actor
        for m in msgs:
            ctx.send(ref.pid, m)

    for m in msgs:
        system.send(ref.pid, m)
    relayer = system.spawn_fn(relay)
    assert log.done.wait(WAIT)
    assert log.got == [(m, None) for m in msgs] + [(m, relayer.pid) for m in msgs]


@pytest.mark.parametrize("mailbox_size", [None, 100])
def test_plain_sends_arrive_as_sent_with_no_sender_in_receive(system: ActorSystem, mailbox_size: int | None) -> None:
    msgs = plain_messages(Pid(0, 77))
    gate = Event()
    got: list[tuple[Any, Any]] = []

    def body(ctx: ActorContext) -> None:
        assert gate.wait(5.0)
        queued = ctx._mailbox.messages()
        for _ in range(len(msgs) + 3):
            got.append((ctx.receive(), ctx.sender))  # the plain receive
        got.append(queued)  # type: ignore[arg-type]

    ref = system.spawn_fn(body, mailbox_size=mailbox_size)

    def other(ctx: ActorContext) -> None:
        ctx.send(ref.pid, ("from", "other"))
        ctx.send(ref.pid, "last")

    for m in msgs:
        ref.send(m)
    sender = system.spawn_fn(other)
    assert sender.join(WAIT)
    ref.send("after")  # no sender again
    gate.set()
    assert ref.join(WAIT)
    expected = [(m, None) for m in msgs] + [(("from", "other"), sender.pid), ("last", sender.pid)]
    expected.append(("after", None))
    assert got[:-1] == expected
    assert got[-1] == [m for m, _ in expected]


def test_selective_receive_and_flush_see_the_messages_as_sent(system: ActorSystem) -> None:
    got: list[Any] = []
    ready = Event()
    pair_like = ("m", None)

    def body(ctx: ActorContext) -> None:
        ref = ctx.monitor(victim.pid)
        ready.set()
        got.append(ctx.receive(match=tuple, timeout=WAIT))  # skips 1 and "x"
        got.append(ctx.sender)
        got.append(ctx.receive(match=lambda m: m == pair_like, timeout=WAIT))
        got.append(ctx.receive(match=Down, timeout=WAIT).reason)
        ctx.demonitor(ref, flush=True)
        got.append(ctx._mailbox.messages())
        got.append([ctx.receive(timeout=0) for _ in range(2)])

    victim = system.spawn_fn(lambda ctx: ctx.receive())
    ref = system.spawn_fn(body)
    assert ready.wait(WAIT)
    for m in (1, "x", (1, 2), pair_like):
        ref.send(m)
    victim.send("go")
    assert ref.join(WAIT)
    assert got == [(1, 2), None, pair_like, "normal", [1, "x"], [1, "x"]]


def test_mailbox_api_keeps_pairs() -> None:
    mb = Mailbox()
    pid = Pid(0, 5)
    items = [(1, None), ((1, 2), None), (("m", pid), None), ("m", pid), ((1, 2), pid), (Point(1, 2), None)]
    for item in items:
        mb.put(item)
    assert len(mb) == len(items)
    assert mb.messages() == [m for m, _ in items]
    assert mb.receive(lambda m: m == ("m", pid)) == (("m", pid), None)
    assert mb.remove_if(lambda m: m == 1) == 1
    assert [mb.get() for _ in range(4)] == [items[1], items[3], items[4], items[5]]


@pytest.mark.parametrize("queued", [False, True], ids=["one_at_a_time", "queued"])
def test_sender_is_set_for_every_message(system: ActorSystem, queued: bool) -> None:
    gate = Event()
    if not queued:
        gate.set()
    log = Log(5, gate)
    ref = system.spawn(log)

    def from_actor(ctx: ActorContext, msg: Any) -> None:
        ctx.send(ref.pid, msg)

    ref.send("first")  # with the gate shut, the actor holds this one and the rest queue up
    a = system.spawn_fn(from_actor, "a")
    assert a.join(WAIT)
    ref.send("plain")
    b = system.spawn_fn(from_actor, ("b", None))
    assert b.join(WAIT)
    ref.send(("plain", a.pid))
    if queued:
        assert log.got == []  # all five wait in the mailbox
    gate.set()
    assert log.done.wait(WAIT)
    assert log.got == [("first", None), ("a", a.pid), ("plain", None), (("b", None), b.pid), (("plain", a.pid), None)]


def test_bounded_actor_lets_blocked_writers_in_as_it_handles(system: ActorSystem) -> None:
    gate = Event()
    log = Log(6, gate)
    ref = system.spawn(log, mailbox_size=1)
    sent: list[int] = []

    def producer(ctx: ActorContext) -> None:
        for i in range(6):
            ctx.send(ref.pid, i)
            sent.append(i)

    prod = system.spawn_fn(producer)
    gevent.sleep(0)
    gevent.sleep(0)
    assert len(sent) < 6  # held back by the full mailbox
    gate.set()
    assert prod.join(WAIT) and log.done.wait(WAIT)
    assert log.got == [(i, prod.pid) for i in range(6)]


def test_only_the_exact_pid_reaches_a_process(system: ActorSystem, probe: Any) -> None:
    pid = probe.pid
    same = Pid(0, pid.id, 0)  # equal, but another object
    assert same is not pid and same == pid
    system.send(same, "via an equal pid")
    assert probe.receive() == "via an equal pid"
    assert system.is_process_alive(same) and system.context_of(same) is not None

    other_creation = Pid(0, pid.id, 1)
    system.send(other_creation, "lost")
    system.try_send(other_creation, "lost")
    assert not system.is_process_alive(other_creation)
    assert system.context_of(other_creation) is None
    assert system.join(other_creation, 0) is True
    with pytest.raises(NoProcError):
        system.register("nope", other_creation)
    with pytest.raises(NoProcError):
        system.link(probe.pid, other_creation)
    mref = system.monitor(probe.pid, other_creation)
    assert probe.receive() == Down(mref, other_creation, NOPROC)
    with pytest.raises(DistributionError):
        system.send(Pid(3, pid.id, 0), "another node")
    assert probe.sync() == [], "nothing else arrived"
    assert system.context_of("not a pid") is None  # type: ignore[arg-type]


class Echo(GenServer):
    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "hold":
            return NoReply()
        if request == "die":
            raise RuntimeError("died in the call")
        return Reply(request)


def test_calls_leave_no_monitor_or_waiter_behind(system: ActorSystem) -> None:
    ref = start(system, Echo())
    ctx = system.context_of(ref.pid)
    assert ctx is not None
    for i in range(3):
        assert ref.call(i) == i
    with pytest.raises(CallTimeout):
        ref.call("hold", timeout=0.01)
    assert not ctx._monitored_by and len(system._calls) == 0
    with pytest.raises(CallError) as info:
        ref.call("die")
    assert isinstance(info.value.reason, RuntimeError) and len(system._calls) == 0
    with pytest.raises(CallError) as info:
        ref.call("again")
    assert info.value.reason == NOPROC and len(system._calls) == 0


def test_pid_and_ref_construction() -> None:
    for cls in (Pid, Ref):
        fast = cls._unchecked(1, 2, 3)
        assert type(fast) is cls and fast == cls(1, 2, 3) and hash(fast) == hash(cls(1, 2, 3))
        with pytest.raises(AttributeError, match="immutable"):
            fast.__class__ = Ref if cls is Pid else Pid

    class Tagged(Pid):  # a subclass with a __dict__ (another layout) still works
        pass

    t = Tagged(1, 2, 3)
    assert type(t) is Tagged and (t.node, t.id, t.creation) == (1, 2, 3)
    with pytest.raises(AttributeError, match="immutable"):
        t.node = 5
