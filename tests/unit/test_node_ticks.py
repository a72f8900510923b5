"""The phase of a node link's ticks (joerl/node/ticks.py): on a grid of wall-clock time."""

from __future__ import annotations

import gevent
import pytest

from joerl.node.config import LinkConfig
from joerl.node.ticks import first_tick
from joerl.testing import linked_pair, wait_until

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("interval", "now", "wait"),
    [
        (1.0, 100.25, 0.75),
        (1.0, 100.0, 1.0),  # on a grid point: the next one, never 0
        (1.0, 100.995, 1.005),  # closer than a hundredth: the one after
        (1.0, 100.98, 0.02),
        (15.0, 7.0, 8.0),
        (0.25, 3.1, 0.15),
    ],
)
def test_first_tick_is_the_next_grid_point(interval: float, now: float, wait: float) -> None:
    assert first_tick(interval, now) == pytest.approx(wait)
    assert (now + first_tick(interval, now)) / interval == pytest.approx(round((now + wait) / interval))


def test_first_tick_defaults_to_the_wall_clock() -> None:
    wait = first_tick(0.5)
    assert 0.005 <= wait <= 0.505


def test_links_started_apart_tick_in_one_pass_of_the_hub() -> None:
    """Two links of a node, started 0.1 s apart, fire their tick timers at the same
    instants (one wake-up for both), and an idle link still ticks."""
    cfg = LinkConfig(tick_time=1.0)
    with linked_pair(config=cfg) as one:
        gevent.sleep(0.1)  # (a second link comes up later; nothing waits on this)
        with linked_pair(config=cfg) as two:
            interval = one.initiator.tick_interval
            assert interval == two.initiator.tick_interval == 0.25
            timers = [c._tick_timer for c in (*one, *two)]
            phases = [(t.at - timers[0].at) / interval for t in timers]
            assert all(p == pytest.approx(round(p), abs=0.02) for p in phases), phases
            wait_until(lambda: two.acceptor.stats.ticks_in >= 3 and one.acceptor.stats.ticks_in >= 3, timeout=5)
