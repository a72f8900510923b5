"""The credit bookkeeping of flow control (``joerl/node/flow.py``, sans-IO), its FLOW frame and the pid flag."""

from __future__ import annotations

import pytest

from joerl.erlang.terms import Atom, erlang_pid, joerl_pid
from joerl.node import protocol as P
from joerl.node.flow import ACK, GONE, GRANT, Credit, Inflow
from joerl.pid import BOUNDED_MAILBOX, Pid
from joerl.system import ActorSystem

DEST = Pid(7, 3, 9)


def test_the_first_message_from_a_link_is_charged_without_any_declaration() -> None:
    inflow = Inflow(16)  # (a grant's batch: 4)
    now, grants = inflow.arrive("L", ("a", "b"), None, room=5)
    assert now == [("a", None), ("b", None)]
    assert grants == []  # (no declaration: the sender started with the window)
    assert not inflow.queue and inflow.links["L"].owed == 2
    now, grants = inflow.arrive("L", ("c", "d"), None, room=3)
    assert [(acct.link, n) for acct, n in grants] == [("L", 4)]  # a batch earned back


def test_charged_messages_earn_their_credit_back_once_in_the_mailbox() -> None:
    inflow = Inflow(8)
    now, grants = inflow.arrive("L", tuple(range(9)), "S", room=1)
    assert now == [(0, "S")] and grants == [] and len(inflow) == 8
    now, grants = inflow.drain(2)  # 1 and 2 move: with 0, three owed, a quarter window (2) or more
    assert [m for m, _ in now] == [1, 2]
    assert [n for _, n in grants] == [3]
    now, grants = inflow.drain(100)  # the rest: the queue empties, everything owed goes back
    assert [m for m, _ in now] == list(range(3, 9))
    assert [n for _, n in grants] == [6]


def test_a_destination_whose_pid_does_not_say_bounded_earns_nothing_back() -> None:
    inflow = Inflow(8, charged=False)
    now, grants = inflow.arrive("L", (1, 2, 3), None, room=1)
    assert now == [(1, None)] and grants == [] and not inflow.links
    now, grants = inflow.drain(10)
    assert [m for m, _ in now] == [2, 3] and grants == []


def test_a_charged_sender_never_has_more_than_the_window_queued_from_its_first_message() -> None:
    inflow, credit = Inflow(4), Credit("L", 4)
    sent = 0
    for _ in range(100):
        while credit.take():
            inflow.arrive("L", (sent,), None, room=0)
            sent += 1
        assert len(inflow) <= 4
        assert inflow.peak <= 4
        _, grants = inflow.drain(1)
        for _, n in grants:
            credit.grant(n)
    assert sent > 90


def test_a_grant_never_lifts_credit_past_the_window() -> None:
    credit = Credit("L", 4)
    assert credit.take()
    credit.grant(10)  # (more than was charged: say, for a message that went uncharged)
    assert credit.credit == 4
    credit.refund()
    assert credit.credit == 4
    assert credit.take()
    credit.refund()
    assert credit.credit == 4


def test_the_destination_ending_drops_its_queue_and_tells_its_links() -> None:
    inflow = Inflow(4)
    inflow.arrive("L1", (1, 2, 3), None, room=1)
    inflow.arrive("L2", (4,), None, room=0)
    inflow.forget("L2")  # (its message stays queued: it arrived)
    dropped, told = inflow.close()
    assert dropped == 3
    assert [acct.link for acct in told] == ["L1"]


def test_credit_takes_forces_and_grants() -> None:
    credit = Credit("L", 2)
    assert credit.take() and credit.take() and not credit.take()
    credit.force()
    assert credit.credit == -1
    assert not credit.grant(1) and credit.grant(1)


def test_a_bad_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        Inflow(0)


@pytest.mark.parametrize("kind", [GRANT, ACK, GONE])
def test_the_flow_frame_round_trips_whole_byte_by_byte_and_with_trailing_bytes(kind: int) -> None:
    msg = P.Flow(DEST, kind, 64 if kind == GRANT else 0)
    frame = P.encode_frame(msg)
    assert P.FrameDecoder().feed(frame) == [msg]
    dec = P.FrameDecoder()
    out = [m for b in frame for m in dec.feed(bytes([b]))]
    assert out == [msg]
    dec = P.FrameDecoder()
    assert dec.feed(frame + frame[:3]) == [msg] and dec.buffered() == 3


def test_a_bad_flow_frame_is_refused_on_both_sides() -> None:
    with pytest.raises(P.LocalProtocolError if hasattr(P, "LocalProtocolError") else Exception):
        P.encode_frame(P.Flow(DEST, 3, 0))
    body = b"\x94\x11\x93\x07\x03\x09\x05\x00"  # kind 5
    out = P.FrameDecoder().feed(len(body).to_bytes(4, "big") + body)
    assert len(out) == 1 and isinstance(out[0], P.FrameError)


def test_a_bounded_mailbox_shows_in_its_pid_and_an_unbounded_one_does_not() -> None:
    system = ActorSystem()
    try:
        plain = system.spawn_fn(lambda ctx: ctx.receive())
        bounded = system.spawn_fn(lambda ctx: ctx.receive(), mailbox_size=3)
        after = system.spawn_fn(lambda ctx: ctx.receive())
        assert not plain.pid.id & BOUNDED_MAILBOX and not after.pid.id & BOUNDED_MAILBOX
        assert bounded.pid.id & BOUNDED_MAILBOX
        assert len({plain.pid.id, bounded.pid.id & ~BOUNDED_MAILBOX, after.pid.id}) == 3  # one counter
        assert Pid(5, bounded.pid.id, 1).id == bounded.pid.id  # (within the id's range)
        assert joerl_pid(erlang_pid(bounded.pid, Atom("b@h"))) == bounded.pid  # Erlang's mapping is lossless
        system.send(bounded.pid, "hi")  # the flagged id is its id: local sends find it
        assert system.is_process_alive(bounded.pid)
    finally:
        system.shutdown()
