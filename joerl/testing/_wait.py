"""Waiting with a deadline, free ports, greenlet leak checks and a hand-moved clock."""

from __future__ import annotations

import gc
import socket
from collections.abc import Callable
from typing import Any, TypeVar

import gevent
from gevent import get_hub

T = TypeVar("T")


class FakeClock:
    """A clock a test moves by hand.

    Pass it where a ``clock`` (a callable returning seconds) is accepted.

    Args:
        now: the time it starts at, in seconds.

    Example::

        clock = FakeClock()
        server = EpmdServer("127.0.0.1:0", clock=clock)
        clock.advance(30.0)
    """

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        """The current time, in seconds."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        self.now += seconds


def live_greenlets(kind: type[Any] = gevent.Greenlet) -> set[Any]:
    """The greenlets of ``kind`` in this process that have not finished.

    Take one set before a test and one after to find what it left running.

    Args:
        kind: ``gevent.Greenlet`` (the default), or ``greenlet.greenlet`` to
            count the hub and raw greenlets too.

    Returns:
        The set of live greenlets of that kind.

    Example::

        before = live_greenlets()
        run_the_test()
        wait_until(lambda: not (live_greenlets() - before), what="no greenlet left")
    """
    objects: list[Any] = gc.get_objects()
    return {o for o in objects if isinstance(o, kind) and not o.dead}


def free_port(host: str = "127.0.0.1") -> int:
    """A port of ``host`` that was free a moment ago (bind to 0, read, close).

    Prefer port 0 where the server reports the port it got; this is for a
    program that must be told its port in advance.

    Args:
        host: the address to bind.

    Returns:
        The port number.

    Example::

        port = free_port()
        child = ChildProcess([sys.executable, "-m", "joerl.epmd", f"127.0.0.1:{port}"])
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], T], timeout: float = 5.0, interval: float = 0.01, what: str = "") -> T:
    """Poll ``cond()`` until it returns a true value; return that value.

    For the rare condition no event announces: wait on an event or a message
    where there is one.

    Args:
        cond: the condition, called in this greenlet.
        timeout: seconds before giving up.
        interval: seconds between two calls of ``cond``.
        what: what is awaited, for the error message.

    Returns:
        The first true value ``cond()`` returned.

    Raises:
        TimeoutError: it stayed false for ``timeout`` seconds.

    Example::

        wait_until(lambda: node.nodes() == ["b"], what="the link to b")
    """
    loop = get_hub().loop
    deadline = loop.now() + timeout
    while True:
        value = cond()
        if value:
            return value
        if loop.now() >= deadline:
            raise TimeoutError(f"condition {what or cond!r} not met within {timeout}s")
        gevent.sleep(interval)
