"""Mailboxes: order, selective receive, timeouts, the bound (backpressure,
try_send / MailboxFull) and signals that a full mailbox never holds back."""

from __future__ import annotations

from typing import Any

import gevent
import pytest
from gevent.event import Event

from joerl.actor import Actor, ActorContext
from joerl.errors import MailboxFull, ReceiveTimeout
from joerl.mailbox import Mailbox
from joerl.message import Down, Exit
from joerl.pid import SYSTEM_PID
from joerl.system import ActorSystem

# -- the Mailbox on its own (read from the test's greenlet) ---------------------


def item(msg: Any) -> tuple[Any, None]:
    return (msg, None)


def test_fifo_order() -> None:
    mb = Mailbox()
    for i in range(5):
        mb.put(item(i))
    assert len(mb) == 5
    assert [mb.get()[0] for _ in range(5)] == [0, 1, 2, 3, 4]
    assert len(mb) == 0


def test_get_waits_for_a_writer() -> None:
    mb = Mailbox()
    writer = gevent.spawn(mb.put, ("late", None))
    assert mb.get(timeout=2.0) == ("late", None)
    writer.join()


def test_selective_receive_keeps_the_rest_in_order() -> None:
    mb = Mailbox()
    for msg in ["a", 1, "b", 2, "c", 3]:
        mb.put(item(msg))
    assert mb.receive(lambda m: isinstance(m, int))[0] == 1
    assert mb.receive(lambda m: m == 3)[0] == 3
    assert mb.messages() == ["a", "b", 2, "c"]
    assert [mb.receive(None)[0] for _ in range(4)] == ["a", "b", 2, "c"]


def test_selective_receive_waits_past_non_matching_messages() -> None:
    mb = Mailbox()
    mb.put(item("noise"))

    def writer() -> None:
        mb.put(item("more noise"))
        gevent.sleep(0)
        mb.put(item(42))

    g = gevent.spawn(writer)
    assert mb.receive(lambda m: m == 42, timeout=2.0)[0] == 42
    assert mb.messages() == ["noise", "more noise"]
    g.join()


def test_receive_timeout_raises() -> None:
    mb = Mailbox()
    mb.put(item("unwanted"))
    with pytest.raises(ReceiveTimeout) as info:
        mb.receive(lambda m: m == "wanted", timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    with pytest.raises(ReceiveTimeout) as info:
        Mailbox().receive(None, timeout=0.05)
    assert info.value.timeout == 0.05
    with pytest.raises(ReceiveTimeout):
        Mailbox().receive(None, timeout=0.05)
    with pytest.raises(ReceiveTimeout):
        Mailbox().get(timeout=0.05)
    assert mb.messages() == ["unwanted"]


def test_timed_waits_keep_one_timer_and_each_still_times_out() -> None:
    # The reader's timed waits share one libev timer, stopped between them; a
    # wait of another timeout makes a new one. Each wait still ends on time
    # (ReceiveTimeout when nothing came) or at its message, and a stopped
    # timer never fires into a later wait.
    mb = Mailbox()
    for _ in range(3):
        with pytest.raises(ReceiveTimeout) as info:
            mb.get(timeout=0.02)
        assert info.value.timeout == 0.02
    timer = mb._timer
    assert timer is not None and not timer.active
    writer = gevent.spawn(mb.put, ("late", None))
    assert mb.get(timeout=0.02) == ("late", None)
    writer.join()
    assert mb._timer is timer and not timer.active
    writer = gevent.spawn_later(0.05, mb.put, ("later", None))
    assert mb.get(timeout=5.0) == ("later", None)  # another timeout: another timer, not the 0.02 one
    assert mb._timer is not timer and not mb._timer.active
    writer.join()
    with pytest.raises(ReceiveTimeout):
        mb.receive(None, timeout=0.02)


def test_timeout_zero_only_looks() -> None:
    mb = Mailbox()
    with pytest.raises(ReceiveTimeout):
        mb.receive(None, timeout=0)
    with pytest.raises(ReceiveTimeout):
        mb.receive(lambda m: True, timeout=0)
    mb.put(item("x"))
    mb.put(item("y"))
    with pytest.raises(ReceiveTimeout):
        mb.receive(lambda m: m == "z", timeout=0)
    assert mb.receive(lambda m: m == "y", timeout=0)[0] == "y"
    assert mb.receive(None, timeout=0)[0] == "x"


def test_remove_if() -> None:
    mb = Mailbox()
    for i in range(6):
        mb.put(item(i))
    assert mb.remove_if(lambda m: m % 2 == 0) == 3
    assert mb.messages() == [1, 3, 5]
    assert mb.remove_if(lambda m: m > 100) == 0


def test_receive_timeout_reports_the_given_timeout() -> None:
    assert gevent.get_hub().loop.now() >= 1.0  # then (now + 0.1) - now is never exactly 0.1
    with pytest.raises(ReceiveTimeout) as info:
        Mailbox().receive(lambda m: True, timeout=0.1)
    assert info.value.timeout == 0.1
    assert str(info.value) == "no matching message within 0.1s"


@pytest.mark.parametrize("size", [0, -1])
def test_bad_size(size: int) -> None:
    with pytest.raises(ValueError, match="mailbox_size"):
        Mailbox(size)


def test_bounded_put_blocks_until_room() -> None:
    mb = Mailbox(2)
    assert mb.maxsize == 2
    mb.put(item(1))
    mb.put(item(2))
    assert mb.full()
    assert not mb.try_put(item("nope"))
    writer = gevent.spawn(mb.put, item(3))
    gevent.sleep(0)  # let the writer run until it blocks
    assert not writer.ready()
    assert len(mb) == 2
    assert mb.get()[0] == 1
    writer.join(2.0)
    assert writer.successful()
    assert mb.messages() == [2, 3]


def test_put_signal_ignores_the_bound() -> None:
    mb = Mailbox(1)
    mb.put(item("m"))
    mb.put_signal(item("signal"))
    assert mb.messages() == ["m", "signal"]


def test_close_releases_writers_and_drops_later_puts() -> None:
    mb = Mailbox(1)
    mb.put(item("m"))
    writers = [gevent.spawn(mb.put, item(i)) for i in range(3)]
    gevent.sleep(0)
    assert not any(w.ready() for w in writers)
    mb.close()
    gevent.joinall(writers, timeout=2.0)
    assert all(w.successful() for w in writers)
    assert mb.closed and len(mb) == 0
    mb.put_signal(item("late"))
    assert len(mb) == 0


def test_deliver_and_deliver_all_keep_order_and_senders() -> None:
    """The node layer's paths: one message, and a burst from one sender."""
    mb = Mailbox()
    mb.deliver("bare", None)
    mb.deliver(("t", 1), None)
    mb.deliver_all(("a", ("b", 2)), "peer")
    mb.deliver_all((1, (2,)), None)
    got = [mb.get() for _ in range(6)]
    assert got == [("bare", None), (("t", 1), None), ("a", "peer"), (("b", 2), "peer"), (1, None), ((2,), None)]


def test_deliver_all_to_a_bounded_mailbox_waits_for_room() -> None:
    mb = Mailbox(2)
    writer = gevent.spawn(mb.deliver_all, tuple(range(5)), "s")
    gevent.sleep(0)  # let the writer fill the mailbox and park (a yield, not a wait for time)
    assert len(mb) == 2 and not writer.dead
    assert [mb.get(timeout=2.0)[0] for _ in range(5)] == [0, 1, 2, 3, 4]
    writer.join(2.0)
    assert writer.dead


def test_deliver_after_close_is_dropped() -> None:
    mb = Mailbox()
    mb.close()
    mb.deliver("x", None)
    mb.deliver_all(("y", "z"), "s")
    assert len(mb) == 0


def test_put_after_close_is_dropped() -> None:
    mb = Mailbox()
    mb.close()
    mb.put(item("late"))
    assert len(mb) == 0


# -- bounded mailboxes of processes -----------------------------------------------


def _gated_reader(gate: Event, out: list[Any]):
    def body(ctx: ActorContext) -> None:
        assert gate.wait(5.0)
        while True:
            msg = ctx.receive()
            out.append(msg)
            if msg == "last":
                return

    return body


def test_unbounded_by_default(system: ActorSystem) -> None:
    gate, out = Event(), list[Any]()
    ref = system.spawn_fn(_gated_reader(gate, out))
    for i in range(10_000):
        ref.try_send(i)
    ref.send("last")
    gate.set()
    assert ref.join(5.0)
    assert out == [*range(10_000), "last"]


def test_send_blocks_while_full_and_try_send_raises(system: ActorSystem) -> None:
    gate, out = Event(), list[Any]()
    ref = system.spawn_fn(_gated_reader(gate, out), mailbox_size=2)
    ref.send(1)
    ref.try_send(2)
    with pytest.raises(MailboxFull) as info:
        ref.try_send("refused")
    assert info.value.pid == ref.pid
    with pytest.raises(MailboxFull):
        system.try_send(ref.pid, "refused")
    producer = gevent.spawn(ref.send, 3)
    gevent.sleep(0)  # the producer runs until it blocks on the full mailbox
    assert not producer.ready()
    gate.set()
    producer.join(5.0)
    assert producer.successful()
    ref.send("last")
    assert ref.join(5.0)
    assert out == [1, 2, 3, "last"]


def test_actor_sending_to_a_full_mailbox_waits_cooperatively(system: ActorSystem) -> None:
    gate, out = Event(), list[Any]()
    consumer = system.spawn_fn(_gated_reader(gate, out), mailbox_size=1)
    sent: list[int] = []

    def producer(ctx: ActorContext) -> None:
        for i in range(5):
            ctx.send(consumer.pid, i)
            sent.append(i)
        ctx.send(consumer.pid, "last")

    prod = system.spawn_fn(producer)
    gevent.sleep(0)
    gevent.sleep(0)
    assert sent == [0]  # one fitted, the second send waits; the test greenlet still runs
    gate.set()
    assert prod.join(5.0) and consumer.join(5.0)
    assert out == [0, 1, 2, 3, 4, "last"]


def test_sending_to_self_never_waits_on_own_full_mailbox(system: ActorSystem) -> None:
    got: list[Any] = []

    def body(ctx: ActorContext) -> None:
        for i in range(5):
            ctx.send(ctx.pid, i)
        for _ in range(5):
            got.append(ctx.receive(timeout=2.0))

    ref = system.spawn_fn(body, mailbox_size=1)
    assert ref.join(5.0)
    assert got == [0, 1, 2, 3, 4]


def test_exit_and_down_signals_pass_a_full_mailbox(system: ActorSystem) -> None:
    gate, ready = Event(), Event()
    got: list[Any] = []
    victim = system.spawn_fn(lambda ctx: ctx.receive())

    def watcher(ctx: ActorContext) -> None:
        ctx.trap_exit(True)
        ctx.link(victim.pid)
        ref = ctx.monitor(victim.pid)
        got.append(ref)
        ready.set()
        assert gate.wait(5.0)
        for _ in range(3):
            got.append(ctx.receive(timeout=2.0))

    w = system.spawn_fn(watcher, mailbox_size=1)
    assert ready.wait(2.0)
    w.send("filler")
    with pytest.raises(MailboxFull):
        w.try_send("more")
    system.exit(victim.pid, "boom")
    assert victim.join(2.0)
    gate.set()
    assert w.join(2.0)
    ref = got[0]
    assert got[1] == "filler"
    assert set(got[2:]) == {Exit(victim.pid, "boom"), Down(ref, victim.pid, "boom")}


def test_blocked_sender_released_when_receiver_dies(system: ActorSystem) -> None:
    never = Event()
    receiver = system.spawn_fn(lambda ctx: never.wait(), mailbox_size=1)
    receiver.send("fill")
    returned = Event()

    def producer(ctx: ActorContext) -> None:
        ctx.send(receiver.pid, "blocked")
        returned.set()
        ctx.receive()

    prod = system.spawn_fn(producer)
    gevent.sleep(0)
    gevent.sleep(0)
    assert not returned.is_set()
    system.exit(receiver.pid, "kill")
    assert returned.wait(2.0)
    assert prod.is_alive()  # the send returned; the message was dropped
    assert not receiver.is_alive()
    # the plain-code sender is released too
    receiver2 = system.spawn_fn(lambda ctx: never.wait(), mailbox_size=1)
    receiver2.send("fill")
    plain = gevent.spawn(receiver2.send, "blocked")
    gevent.sleep(0)
    assert not plain.ready()
    system.exit(receiver2.pid, "kill")
    plain.join(2.0)
    assert plain.successful()


def test_sender_blocked_on_a_full_mailbox_can_be_stopped(system: ActorSystem, probe: Any) -> None:
    gate, out = Event(), list[Any]()
    consumer = system.spawn_fn(_gated_reader(gate, out), mailbox_size=1)
    consumer.send("fill")
    blocked = system.spawn_fn(lambda ctx: ctx.send(consumer.pid, "never delivered"))
    waiting = system.spawn_fn(lambda ctx: ctx.send(consumer.pid, "second in line"))
    gevent.sleep(0)
    mref = system.monitor(probe.pid, blocked.pid)
    assert system.stop(blocked.pid, "give up") is True
    assert probe.receive() == Down(mref, blocked.pid, "give up")
    gate.set()  # the consumer drains; the other blocked sender gets in
    assert waiting.join(2.0)
    consumer.send("last")
    assert consumer.join(2.0)
    assert out == ["fill", "second in line", "last"]


def test_timer_message_passes_a_full_mailbox(system: ActorSystem, wait_until: Any) -> None:
    gate, out = Event(), list[Any]()
    ref = system.spawn_fn(_gated_reader(gate, out), mailbox_size=1)
    ref.send("fill")
    timer = system.send_after(0, ref.pid, "last")
    wait_until(lambda: not timer.active)  # fired while the gate holds the reader
    assert ref.system.context_of(ref.pid).mailbox_len == 2  # type: ignore[union-attr]
    gate.set()
    assert ref.join(2.0)
    assert out == ["fill", "last"]


def test_wakeup_is_not_lost_when_the_woken_sender_dies(system: ActorSystem) -> None:
    gate = Event()
    got: list[Any] = []

    def receiver(ctx: ActorContext) -> None:
        assert gate.wait(5.0)
        ctx.exit(prod_a.pid, "kill")  # scheduled before the wake-up below
        got.append(ctx.receive())  # frees a slot and wakes A, which dies first
        try:
            got.append(ctx.receive(timeout=0.3))  # B must now get in
        except ReceiveTimeout:
            got.append("timeout")

    recv = system.spawn_fn(receiver, mailbox_size=1)
    recv.send("fill")
    prod_a = system.spawn_fn(lambda ctx: ctx.send(recv.pid, "A"))
    gevent.sleep(0)
    prod_b = system.spawn_fn(lambda ctx: ctx.send(recv.pid, "B"))
    gevent.sleep(0)
    gate.set()
    assert recv.join(5.0)
    assert prod_b.join(2.0)
    assert got == ["fill", "B"]


def test_on_room_of_an_unbounded_mailbox_runs_at_the_next_turn() -> None:
    mb = Mailbox()
    ran = Event()
    mb.on_room(ran.set)  # its reader never looks for waiting writers: there is always room
    assert mb.waiting_writers == 0
    assert ran.wait(2.0)


class _Slow(Actor):
    """Handles a message once the gate opens (a bounded Actor's loop under writers that wait)."""

    def __init__(self, gate: Event, out: list[Any]) -> None:
        self.gate, self.out = gate, out

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        self.gate.wait()
        self.out.append((msg, ctx.sender))
        if msg == "last":
            ctx.stop()


@pytest.mark.parametrize("options", [{"mailbox_size": 1}, {"mailbox_size": 2, "max_mailbox": 50}])
def test_an_actor_on_a_bounded_mailbox_lets_waiting_writers_in(
    system: ActorSystem, options: dict[str, Any], wait_until: Any
) -> None:
    gate, out = Event(), list[Any]()
    ref = system.spawn(_Slow(gate, out), **options)

    def producer(ctx: ActorContext) -> None:
        for i in range(5):
            ctx.send(ref.pid, i)
        ctx.send(ref.pid, "last")

    prod = system.spawn_fn(producer)
    wait_until(lambda: system.context_of(ref.pid)._mailbox.waiting_writers == 1, timeout=5.0)  # type: ignore[union-attr]
    gate.set()
    assert prod.join(5.0) and ref.join(5.0)
    assert out == [(m, prod.pid) for m in [0, 1, 2, 3, 4, "last"]]


@pytest.mark.parametrize("options", [{}, {"mailbox_size": 3}, {"max_mailbox": 50}])
def test_receive_takes_pairs_and_bare_messages_alike(system: ActorSystem, options: dict[str, Any]) -> None:
    seen: list[tuple[Any, Any]] = []

    def body(ctx: ActorContext) -> None:
        for _ in range(4):
            seen.append((ctx.receive(), ctx.sender))

    ref = system.spawn_fn(body, **options)
    system.send(ref.pid, "bare")
    system.send(ref.pid, ("a", "tuple"))
    system.send(ref.pid, "with", SYSTEM_PID)
    system.send(ref.pid, "bare again")
    assert ref.join(5.0)
    assert seen == [("bare", None), (("a", "tuple"), None), ("with", SYSTEM_PID), ("bare again", None)]
