"""joerl._gen: the call tags, From, and the Pending table every kind of call waits in."""

from __future__ import annotations

import time

import gevent
import pytest

from joerl._gen import CALL, From, Pending, as_call, is_call, make_from
from joerl.pid import Pid, Ref

PID = Pid(0, 7, 0)
REF = Ref(0, 9, 0)


def test_make_from_is_a_from() -> None:
    f = make_from(PID, REF)
    assert f == From(PID, REF) and type(f) is From and f.pid is PID and f.ref is REF


def test_as_call_restores_from_of_a_plain_pair() -> None:
    msg = as_call((CALL, (PID, REF), "req"))
    assert type(msg[1]) is From and msg == (CALL, From(PID, REF), "req")
    assert as_call(("other", 1)) == ("other", 1)
    assert as_call((CALL, ("not", "a pair"), 1)) == (CALL, ("not", "a pair"), 1)
    assert is_call(msg) and not is_call(("x", 1, 2)) and not is_call([CALL, 1, 2])


def test_resolve_wakes_the_waiter() -> None:
    pending = Pending()
    waiter = pending.add(REF)
    gevent.spawn(pending.resolve, REF, (True, 42))
    assert pending.wait(waiter, REF, 5) == (True, 42)
    assert len(pending) == 0 and REF not in pending


def test_timeout_returns_none_and_a_late_answer_is_dropped() -> None:
    pending = Pending()
    waiter = pending.add(REF)
    assert pending.wait(waiter, REF, 0.01) is None
    assert pending.resolve(REF, "late") is False
    assert len(pending) == 0


def test_resolved_before_the_wait_starts_keeps_its_value() -> None:
    # A request that fails on the spot resolves its ref before the caller waits.
    pending = Pending()
    waiter = pending.add(REF)
    assert pending.resolve(REF, (False, "noconnection")) is True
    assert pending.resolve(REF, "twice") is False
    assert pending.wait(waiter, REF, 5) == (False, "noconnection")
    assert len(pending) == 0


def test_discard_forgets() -> None:
    pending = Pending()
    pending.add(REF)
    assert pending.refs() == [REF] and REF in pending
    pending.discard(REF)
    assert len(pending) == 0 and pending.refs() == []
    assert pending.resolve(REF, 1) is False


def test_request_sends_then_waits_and_closes_the_wait_when_send_raises() -> None:
    pending = Pending()
    sent = []

    def send(dest: object, msg: object, *, sender: object) -> None:
        sent.append((dest, msg, sender))
        pending.resolve(REF, "answer")  # answered before the wait starts

    assert pending.request(REF, 5, send, "d", "m", None) == "answer"
    assert sent == [("d", "m", None)] and len(pending) == 0

    def broken(dest: object, msg: object, *, sender: object) -> None:
        raise RuntimeError("cannot send")

    with pytest.raises(RuntimeError):
        pending.request(REF, 5, broken, "d", "m", None)
    assert len(pending) == 0


def test_timeouts_share_one_timer_and_each_fires_on_time() -> None:
    # One timer per table, armed at the earliest deadline: a shorter timeout
    # started after a longer one re-arms it, and each wait ends at its own deadline.
    pending = Pending()
    ended: dict[int, float] = {}
    start = time.monotonic()

    def wait(ref_id: int, timeout: float) -> None:
        waiter = pending.open(ref_id)
        assert pending.wait_id(waiter, ref_id, timeout) is None
        ended[ref_id] = time.monotonic() - start

    waits = [gevent.spawn(wait, ref_id, timeout) for ref_id, timeout in ((1, 0.4), (2, 0.05), (3, 0.2))]
    gevent.joinall(waits, timeout=5, raise_error=True)
    assert sorted(ended, key=ended.__getitem__) == [2, 3, 1]
    assert ended[2] >= 0.05 and ended[3] >= 0.2 and ended[1] >= 0.4
    assert ended[2] < 0.4  # (not held back by the longer wait armed first)
    assert len(pending) == 0 and pending._armed is None  # no timed wait left: the timer is stopped
    assert pending.resolve_id(2, "late") is False  # a late answer is dropped


def test_a_resolved_wait_leaves_the_others_timed_and_the_heap_is_trimmed() -> None:
    pending = Pending()
    results: dict[int, object] = {}

    def wait(ref_id: int, timeout: float) -> None:
        results[ref_id] = pending.wait_id(pending.open(ref_id), ref_id, timeout)

    slow = gevent.spawn(wait, 1, 0.3)
    gevent.sleep(0)  # (slow's wait is open)
    for ref_id in range(2, 202):  # answered waits leave their deadlines behind
        waiter = pending.open(ref_id)
        gevent.spawn(pending.resolve_id, ref_id, ref_id)
        assert pending.wait_id(waiter, ref_id, 0.1) == ref_id
    assert len(pending._due) <= 2 * 1 + 64  # trimmed as it goes, while one timed wait stays in flight
    slow.join(timeout=5)
    assert results == {1: None} and len(pending) == 0
    assert pending._armed is None and pending._due == []


def test_an_overdue_timeout_ends_the_wait_at_once() -> None:
    # (a call whose flow-control wait used up more than its timeout waits with a negative one)
    pending = Pending()
    for timeout in (-1.0, 0.0, -0.5):
        waiter = pending.open(5)
        assert pending.wait_id(waiter, 5, timeout) is None
    assert len(pending) == 0 and pending._armed is None
