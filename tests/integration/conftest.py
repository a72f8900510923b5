"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from joerl.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves by hand (``clock.advance(seconds)``)."""
    return FakeClock()
