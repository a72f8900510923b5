"""Helpers for testing code built on joerl (and for joerl's own tests).

* :func:`running_epmd` runs a port mapper in this process on a free loopback port.
* :func:`node_cluster` starts several nodes on it and shuts them down after.
* :func:`wait_until` polls a condition with a deadline, for the rare case
  where there is no event to wait on.
* :func:`free_port` finds a free loopback port (for subprocess daemons).
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any, Callable, Iterator

import gevent
from gevent import get_hub


def free_port(host: str = "127.0.0.1") -> int:
    """A loopback port that was free a moment ago (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01, what: str = "") -> Any:
    """Poll ``cond()`` until it is truthy; return its value.

    Raises:
        TimeoutError: it stayed falsy for ``timeout`` seconds.
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


@contextlib.contextmanager
def running_epmd(**options: Any) -> Iterator[str]:
    """Run a joerl port mapper on ``127.0.0.1:0`` in this process; yield its address."""
    from .epmd import EpmdServer

    server = EpmdServer("127.0.0.1:0", **options)
    server.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop()


@contextlib.contextmanager
def node_cluster(*names: str, cookie: str = "joerl-test-cookie", tick_time: float = 60.0, **options: Any) -> Iterator[list[Any]]:
    """Start a port mapper and one :class:`~joerl.dist.node.DistributedSystem` per
    name, all in this process on loopback; shut everything down afterwards."""
    from .dist.node import DistributedSystem

    with running_epmd() as epmd_address:
        nodes: list[Any] = []
        try:
            for name in names:
                nodes.append(
                    DistributedSystem(
                        name, "127.0.0.1:0", epmd_address, cookie=cookie, start_epmd=False, tick_time=tick_time, **options
                    )
                )
            yield nodes
        finally:
            for node in reversed(nodes):
                node.shutdown()
