"""joerl.backoff: the one back-off."""

from __future__ import annotations

import pytest

from joerl.backoff import Backoff


def test_grows_caps_and_resets() -> None:
    b = Backoff(initial=0.1, maximum=0.5, factor=2.0, jitter=0.0)
    assert [round(b.delay(), 3) for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert b.failures == 5
    b.reset()
    assert b.delay() == 0.1 and b.failures == 1


def test_jitter_spreads_both_ways() -> None:
    assert Backoff(initial=1.0, jitter=0.2, rand=lambda: 0.0).delay() == pytest.approx(0.8)
    assert Backoff(initial=1.0, jitter=0.2, rand=lambda: 0.999999).delay() == pytest.approx(1.2, abs=1e-5)


@pytest.mark.parametrize(
    "kw", [{"initial": 0}, {"initial": 2, "maximum": 1}, {"factor": 0.5}, {"jitter": 1.0}, {"jitter": -0.1}]
)
def test_bad_parameters_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="need"):
        Backoff(**kw)
