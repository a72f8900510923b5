"""A port mapper and several nodes in this process, on loopback, for a test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..node.node import DistributedSystem


@contextlib.contextmanager
def running_epmd(**options: Any) -> Iterator[str]:
    """Run a joerl port mapper on ``127.0.0.1:0`` in this process.

    Args:
        **options: passed to :class:`~joerl.epmd.EpmdServer`.

    Returns:
        A context manager yielding the port mapper's address
        (``"127.0.0.1:PORT"``); it stops the port mapper on exit.

    Example::

        with running_epmd() as address:
            node = DistributedSystem("a", "127.0.0.1:0", address, start_epmd=False)
    """
    from ..epmd import EpmdServer

    server = EpmdServer("127.0.0.1:0", **options)
    server.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop()


@contextlib.contextmanager
def node_cluster(
    *names: str, cookie: str = "joerl-test-cookie", tick_time: float = 60.0, **options: Any
) -> Iterator[list[DistributedSystem]]:
    """Start a port mapper and one node per name, all in this process on loopback.

    Args:
        *names: the nodes' names.
        cookie: their shared cookie.
        tick_time: their tick time, in seconds.
        **options: passed to every :class:`~joerl.node.node.DistributedSystem`.

    Returns:
        A context manager yielding the nodes (in the order of ``names``); it
        shuts them down, last first, and then the port mapper.

    Example::

        with node_cluster("a", "b") as (a, b):
            a.connect_to_node("b")
    """
    from ..node.node import DistributedSystem

    with running_epmd() as epmd_address:
        nodes: list[DistributedSystem] = []
        try:
            for name in names:
                nodes.append(
                    DistributedSystem(
                        name,
                        "127.0.0.1:0",
                        epmd_address,
                        cookie=cookie,
                        start_epmd=False,
                        tick_time=tick_time,
                        **options,
                    )
                )
            yield nodes
        finally:
            for node in reversed(nodes):
                node.shutdown()
