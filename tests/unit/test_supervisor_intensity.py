"""Restart intensity, as OTP counts it: a restart exactly ``period`` seconds
ago still counts (the window is inclusive); only older ones fall out. The
window alone (joerl.supervisor._intensity.RestartWindow) on a FakeClock, and
a real supervisor on one."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from gevent.event import AsyncResult

from joerl.actor import Actor, ActorContext
from joerl.supervisor import ChildSpec, Supervisor, SupervisorRef, start_supervisor
from joerl.supervisor._intensity import RestartWindow, check_intensity
from joerl.system import ActorSystem
from joerl.testing import FakeClock

WAIT = 2.0


def test_a_restart_exactly_period_ago_still_counts() -> None:
    clock = FakeClock(100.0)
    window = RestartWindow(clock)
    assert window.add(1, 10.0)  # one restart in the window: allowed
    clock.advance(10.0)  # the first is exactly `period` old: still inside
    assert not window.add(1, 10.0)


def test_a_restart_just_older_than_period_falls_out() -> None:
    clock = FakeClock(100.0)
    window = RestartWindow(clock)
    assert window.add(1, 10.0)
    clock.advance(10.001)
    assert window.add(1, 10.0)


def test_the_window_slides() -> None:
    clock = FakeClock(0.0)
    window = RestartWindow(clock)
    assert window.add(2, 5.0)  # t=0
    clock.advance(2.5)
    assert window.add(2, 5.0)  # t=2.5
    clock.advance(2.5)
    assert not window.add(2, 5.0)  # t=5: 0 (exactly 5 ago), 2.5 and 5: three > 2
    clock.advance(5.0)
    assert window.add(2, 5.0)  # t=10: 5 (exactly 5 ago) and 10; 0 and 2.5 fell out


def test_intensity_zero_allows_no_restart() -> None:
    window = RestartWindow(FakeClock())
    assert not window.add(0, 1.0)


@pytest.mark.parametrize("intensity, period", [(-1, 5), (1.5, 5), (True, 5), (1, 0), (1, -1), (1, "5"), (1, False)])
def test_bad_settings_are_refused(intensity: Any, period: Any) -> None:
    with pytest.raises(ValueError):
        check_intensity(intensity, period)


class Crasher(Actor):
    """A child that crashes on "crash"."""

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if msg == "crash":
            raise RuntimeError("crashed on purpose")


def child_pid(sup: SupervisorRef) -> Any:
    (info,) = sup.which_children()
    return info.pid


def crash_child(system: ActorSystem, sup: SupervisorRef) -> None:
    pid = child_pid(sup)
    system.send(pid, "crash")
    assert system.join(pid, WAIT)
    child_pid(sup)  # a round trip: the supervisor has handled the exit


@pytest.mark.parametrize("gap, gives_up", [(10.0, True), (10.5, False)])
def test_a_supervisor_counts_a_restart_exactly_period_ago(
    system: ActorSystem, caplog: pytest.LogCaptureFixture, gap: float, gives_up: bool
) -> None:
    caplog.set_level(logging.CRITICAL)  # the crashes are on purpose
    clock = FakeClock(100.0)
    spec = ChildSpec.worker("c", Crasher)
    sup = start_supervisor(system, Supervisor(children=[spec], intensity=1, period=10, clock=clock))
    ended = AsyncResult()
    system.monitor_callback(sup.pid, lambda _ref, _pid, reason: ended.set(reason))
    crash_child(system, sup)  # restart 1 at t=100: allowed
    clock.advance(gap)
    pid = child_pid(sup)
    system.send(pid, "crash")  # restart 2, `gap` seconds after the first
    assert system.join(pid, WAIT)
    if gives_up:
        assert ended.get(timeout=WAIT) == "shutdown"
    else:
        child_pid(sup)
        assert sup.is_alive() and not ended.ready()
