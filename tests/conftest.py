"""Shared test fixtures: an ActorSystem that must end empty, a probe process
through which plain test code receives messages, and ``wait_until``.

Tests synchronise on events and messages. ``wait_until`` is for the rare
condition that no event announces; it polls with a deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gevent
import greenlet
import pytest
from gevent.event import Event
from gevent.queue import Empty, Queue

from joerl.actor import ActorContext
from joerl.pid import Pid
from joerl.system import ActorSystem
from joerl.testing import live_greenlets, wait_until

#: How long a test waits for something that should happen at once.
WAIT = 2.0


class Probe:
    """A process that forwards whatever it receives to a queue the test reads.

    Plain test code has no mailbox; a probe lends it one: link it, monitor
    with it, send to it, then ``get()`` what arrived, in order.

    Args:
        system: where to spawn the probe.
        trap_exit: trap exits (set before the constructor returns, so links
            made afterwards never kill it).
    """

    def __init__(self, system: ActorSystem, *, trap_exit: bool = False, name: str | None = None) -> None:
        self.queue: Queue = Queue()
        self.ctx: ActorContext | None = None
        ready = Event()

        def body(ctx: ActorContext) -> None:
            ctx.trap_exit(trap_exit)
            self.ctx = ctx
            ready.set()
            while True:
                msg = ctx.receive()
                self.queue.put((msg, ctx.sender))

        self.ref = system.spawn_fn(body, name=name)
        self.pid: Pid = self.ref.pid
        assert ready.wait(WAIT), "probe did not start"

    def get(self, timeout: float = WAIT) -> Any:
        """The next message the probe received (fails the test after ``timeout``)."""
        return self.get_with_sender(timeout)[0]

    def get_with_sender(self, timeout: float = WAIT) -> tuple[Any, Pid | None]:
        """The next ``(message, sender)`` the probe received."""
        try:
            return self.queue.get(timeout=timeout)
        except Empty:
            raise AssertionError(f"probe {self.pid} received nothing within {timeout}s") from None

    def assert_next(self, expected: Any) -> None:
        """Send ``expected`` to the probe as a marker and check it is the very next
        message: proof that nothing else was queued before it."""
        self.ref.system.send(self.pid, expected)
        assert self.get() == expected
        assert self.queue.empty()


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
    return Probe(system)


@pytest.fixture
def trapping_probe(system: ActorSystem) -> Probe:
    """A probe that traps exits (receives ``Exit`` messages)."""
    return Probe(system, trap_exit=True)


@pytest.fixture
def make_probe(system: ActorSystem) -> Callable[..., Probe]:
    """A factory: ``make_probe(trap_exit=False, name=None)`` spawns another probe."""
    return lambda **kw: Probe(system, **kw)


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., Any]:
    """The :func:`wait_until` helper, for tests that cannot import conftest."""
    return wait_until
