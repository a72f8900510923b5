"""Shared test fixtures: an ActorSystem that must end empty, probes
(:class:`joerl.testing.Probe`: a process through which plain test code
receives messages), and ``wait_until``.

Tests synchronise on events and messages. ``wait_until`` is for the rare
condition that no event announces; it polls with a deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gevent
import greenlet
import pytest

from joerl.system import ActorSystem
from joerl.testing import Probe, live_greenlets, wait_until

#: How long a test waits for something that should happen at once.
WAIT = 2.0


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    """An ActorSystem; after the test it is shut down and must leave no
    process and no greenlet behind."""
    gevent.get_hub()
    before = set(live_greenlets(greenlet.greenlet))
    sys_ = ActorSystem("test")
    try:
        yield sys_
    finally:
        sys_.shutdown(timeout=WAIT)
    assert sys_.processes() == []
    leaked = [g for g in live_greenlets(greenlet.greenlet) if g not in before]
    assert leaked == [], f"greenlets left behind: {leaked}"


@pytest.fixture
def probe(system: ActorSystem) -> Probe:
    """A probe that does not trap exits."""
    return Probe(system, timeout=WAIT)


@pytest.fixture
def trapping_probe(system: ActorSystem) -> Probe:
    """A probe that traps exits (receives ``Exit`` messages)."""
    return Probe(system, trap_exit=True, timeout=WAIT)


@pytest.fixture
def make_probe(system: ActorSystem) -> Callable[..., Probe]:
    """A factory: ``make_probe(trap_exit=False, name=None)`` spawns another probe."""
    return lambda **kw: Probe(system, **{"timeout": WAIT, **kw})


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., Any]:
    """The :func:`wait_until` helper, for tests that cannot import conftest."""
    return wait_until
