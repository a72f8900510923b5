"""The credit bookkeeping of flow control (``joerl/node/flow.py``, sans-IO) and its FLOW frame."""

from __future__ import annotations

import pytest

from joerl.node import protocol as P
from joerl.node.flow import ACK, GONE, GRANT, Credit, Inflow
from joerl.pid import Pid

DEST = Pid(7, 3, 9)


def test_the_first_message_from_a_link_declares_the_destination_with_a_window() -> None:
    inflow = Inflow(8)
    now, grants = inflow.arrive("L", ("a", "b"), None, room=5)
    assert now == [("a", None), ("b", None)]
    assert [(acct.link, n) for acct, n in grants] == [("L", 8)]  # the declaration
    assert not inflow.queue


def test_uncharged_messages_earn_nothing_back_and_charged_ones_do_once_in_the_mailbox() -> None:
    inflow = Inflow(8)
    inflow.arrive("L", ("pre",), None, room=0)  # before the ACK: uncharged, queued
    inflow.ack("L")
    now, grants = inflow.arrive("L", tuple(range(8)), "S", room=0)
    assert now == [] and grants == [] and len(inflow) == 9
    now, grants = inflow.drain(3)  # "pre", 0, 1 move: two charged ones
    assert [m for m, _ in now] == ["pre", 0, 1]
    assert [n for _, n in grants] == [2]  # a quarter window (2) earned back
    now, grants = inflow.drain(100)  # the rest: the queue empties, everything owed goes back
    assert [m for m, _ in now] == list(range(2, 8))
    assert [n for _, n in grants] == [6]


def test_a_charged_sender_never_has_more_than_the_window_queued() -> None:
    inflow, credit = Inflow(4), Credit("L", 4)
    inflow.arrive("L", (), None, room=0)
    inflow.ack("L")
    sent = 0
    for _ in range(100):
        while credit.take():
            inflow.arrive("L", (sent,), None, room=0)
            sent += 1
        assert len(inflow) <= 4
        _, grants = inflow.drain(1)
        for _, n in grants:
            credit.grant(n)
    assert sent > 90


def test_the_destination_ending_drops_its_queue_and_tells_its_links() -> None:
    inflow = Inflow(4)
    inflow.arrive("L1", (1, 2, 3), None, room=1)
    inflow.arrive("L2", (4,), None, room=0)
    inflow.forget("L2")
    dropped, told = inflow.close()
    assert dropped == 3
    assert [acct.link for acct in told] == ["L1"]


def test_credit_takes_forces_and_grants() -> None:
    credit = Credit("L", 1)
    assert credit.take() and not credit.take()
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
