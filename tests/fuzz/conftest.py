"""Fixtures of the fuzz tests: live servers on 127.0.0.1:0, and a check that
every test leaves no greenlet behind.

Hypothesis runs inside each test (an inner ``@given`` function), so one
server receives every example, and the test then checks that the *same*
server still serves a well-behaved client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest

from joerl.actor import ActorContext
from joerl.epmd.server import EpmdServer
from joerl.node.connection import LinkConfig
from joerl.testing import Probe, live_greenlets, node_cluster, wait_until

WAIT = 10.0
#: The echo process every target node runs (a name no fuzzer draws).
ECHO = "fuzz-echo-target"


@pytest.fixture(autouse=True)
def no_greenlets_left() -> Iterator[None]:
    """Every greenlet a test started has ended when it returns (a short grace
    period lets closed sockets wake their readers)."""
    gevent.get_hub()
    before = live_greenlets()
    yield
    try:
        wait_until(lambda: not (live_greenlets() - before), timeout=5.0)
    except TimeoutError:
        pass
    leaked = live_greenlets() - before
    assert not leaked, f"greenlets left behind: {leaked}"


@pytest.fixture
def epmd_server() -> Iterator[EpmdServer]:
    """A port mapper on a free loopback port (short idle timeout)."""
    server = EpmdServer("127.0.0.1:0", packet_timeout=5.0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _echo(ctx: ActorContext) -> None:
    """Answers ``("ping", n)`` with ``("pong", n)``; ignores anything else (fuzzers send it junk)."""
    while True:
        msg = ctx.receive()
        sender = ctx.sender
        if sender is not None and isinstance(msg, tuple) and len(msg) == 2 and msg[0] == "ping":
            ctx.send(sender, ("pong", msg[1]))


@pytest.fixture
def cluster() -> Iterator[tuple[Any, Any]]:
    """Two nodes, ``fz-target`` (runs the echo process, receives the fuzz) and
    ``fz-good`` (the well-behaved peer), sharing one in-process port mapper."""
    config = LinkConfig(handshake_timeout=2.0)
    with node_cluster("fz-target", "fz-good", cookie="fuzz-cluster-cookie", link_config=config) as (target, good):
        target.system.spawn_fn(_echo, name=ECHO)
        yield target, good


@pytest.fixture
def good_peer_talks(cluster: tuple[Any, Any]) -> Callable[[int], None]:
    """``good_peer_talks(n)``: the well-behaved node sends ``("ping", n)`` to
    the target's echo process, by name, and gets ``("pong", n)`` back."""
    target, good = cluster
    box = Probe(good, timeout=WAIT)

    def talk(n: int) -> None:
        good.system.send((ECHO, target.node_name), ("ping", n), sender=box.pid)
        assert box.receive() == ("pong", n)
        assert good.node_name in target.nodes() and target.node_name in good.nodes()

    return talk
