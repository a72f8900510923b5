"""Admission of inbound connections (joerl.node.admission): per address, unfinished handshakes only."""

from __future__ import annotations

import pytest

from joerl.node.admission import Admission, Ticket
from joerl.testing import FakeClock


class Evictions:
    def __init__(self) -> None:
        self.order: list[str] = []

    def of(self, label: str) -> object:
        return lambda: self.order.append(label)


def admit(adm: Admission, host: str, ev: Evictions, label: str) -> Ticket:
    ticket = adm.admit(host, ev.of(label))  # type: ignore[arg-type]
    assert ticket is not None
    return ticket


def test_finished_handshakes_cost_nothing() -> None:
    adm = Admission(max_total=4, max_per_address=2, rate_per_address=1000, clock=FakeClock())
    ev = Evictions()
    for i in range(100):
        adm.done(admit(adm, "10.0.0.1", ev, f"c{i}"))
    assert len(adm) == 0 and ev.order == [] and adm.from_host("10.0.0.1") == 0


def test_an_address_over_its_bound_evicts_its_own_oldest_silent_handshake() -> None:
    adm = Admission(max_total=100, max_per_address=3, rate_per_address=1000, clock=FakeClock())
    ev = Evictions()
    other = admit(adm, "10.0.0.9", ev, "other")
    a, b, c = (admit(adm, "10.0.0.1", ev, x) for x in "abc")
    adm.heard(a)  # a has spoken: b is the oldest silent one
    d = admit(adm, "10.0.0.1", ev, "d")
    assert ev.order == ["b"] and b.evicted and not a.evicted and not other.evicted
    assert adm.from_host("10.0.0.1") == 3 and len(adm) == 4
    for t in (a, c, d):
        adm.heard(t)
    admit(adm, "10.0.0.1", ev, "e")  # none silent: the oldest unfinished goes
    assert ev.order == ["b", "a"]


def test_past_the_global_bound_the_oldest_silent_handshake_of_any_address_goes() -> None:
    adm = Admission(max_total=3, max_per_address=10, rate_per_address=1000, clock=FakeClock())
    ev = Evictions()
    x = admit(adm, "10.0.0.1", ev, "x")
    adm.heard(x)
    admit(adm, "10.0.0.2", ev, "y")
    admit(adm, "10.0.0.3", ev, "z")
    admit(adm, "10.0.0.4", ev, "new")
    assert ev.order == ["y"] and len(adm) == 3 and adm.from_host("10.0.0.2") == 0
    assert adm.evictions == 1


def test_the_rate_is_per_address_and_spent_only_while_handshakes_are_unfinished() -> None:
    clock = FakeClock()
    adm = Admission(max_total=1000, max_per_address=3, rate_per_address=3, clock=clock)
    ev = Evictions()
    for _ in range(100):  # one after another, each finished: nothing spent
        adm.done(admit(adm, "10.0.0.1", ev, "ok"))
    admit(adm, "10.0.0.1", ev, "first")  # none unfinished before it: free
    for _ in range(3):  # three tokens: the third evicts the silent first one
        adm.heard(admit(adm, "10.0.0.1", ev, "burst"))
    assert ev.order == ["first"]
    assert adm.admit("10.0.0.1", ev.of("no")) is None  # type: ignore[arg-type]
    assert adm.refused == 1
    assert adm.admit("10.0.0.2", ev.of("fine")) is not None  # type: ignore[arg-type]
    clock.advance(1.0)
    assert adm.admit("10.0.0.1", ev.of("again")) is not None  # type: ignore[arg-type]


def test_a_done_ticket_is_never_evicted_and_done_is_idempotent() -> None:
    adm = Admission(max_total=1, max_per_address=1, rate_per_address=1000, clock=FakeClock())
    ev = Evictions()
    t = admit(adm, "h", ev, "t")
    adm.done(t)
    adm.done(t)
    admit(adm, "h", ev, "u")
    assert ev.order == []


@pytest.mark.parametrize("args", [(0, 1, 1.0), (1, 0, 1.0), (1, 1, 0.0)])
def test_bad_bounds_are_refused(args: tuple[int, int, float]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Admission(*args)
