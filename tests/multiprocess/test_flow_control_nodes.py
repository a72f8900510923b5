"""Flow control between real node processes (issue 15).

Node B (a child process, ``node_main.py consume``) runs ``slow``, a consumer
whose mailbox holds 10 messages and which takes 500 a second for its first
4 seconds. This test process, node A, floods it while a bystander pair
exchanges round trips with B's ``echo`` on the same link: no NodeDown, the
round trips go on (the slowest well under a second), the flooder is paused
by credit and resumes, and every flooded message arrives, in order.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from joerl.actor import ActorContext
from joerl.message import NodeDown
from joerl.node.node import DistributedSystem
from joerl.pid import BOUNDED_MAILBOX
from joerl.testing import Probe, ProcessGroup, wait_until

ROOT = Path(__file__).resolve().parents[2]
NODE_MAIN = Path(__file__).with_name("node_main.py")
COOKIE = "joerl-flow-test"
WAIT = 30.0
FLOOD = 3000

pytestmark = pytest.mark.reliability


@pytest.fixture
def nodes() -> Iterator[tuple[DistributedSystem, str]]:
    with ProcessGroup(cookie=COOKIE, cwd=ROOT, timeout=WAIT) as group:
        mapper = group.start([sys.executable, "-m", "joerl.epmd", "127.0.0.1:0"])
        epmd = f"127.0.0.1:{mapper.wait_ready()['port']}"
        argv = [sys.executable, str(NODE_MAIN), "b", "--epmd", epmd, "--tick", "2", "consume"]
        group.start([*argv, "--mailbox", "10", "--rate", "500", "--slow-for", "4"]).wait_ready()
        node = DistributedSystem("a", "127.0.0.1:0", epmd, cookie=COOKIE, start_epmd=False, tick_time=2.0)
        try:
            yield node, "b"
        finally:
            node.shutdown()


def _flooder(dest: Any, sent: list[int]) -> Any:
    def body(ctx: ActorContext) -> None:
        for i in range(FLOOD):  # (charged from the first: the pid says the mailbox is bounded)
            ctx.send(dest, ("n", i))
            sent[0] = i + 1

    return body


def test_a_flood_to_a_slow_bounded_consumer_on_another_node_leaves_the_link_flowing(
    nodes: tuple[DistributedSystem, str],
) -> None:
    a, b = nodes
    inbox = Probe(a)
    a.monitor_node(inbox.pid, b)
    a.system.send(("echo", b), ("whereis", "slow", inbox.pid), sender=inbox.pid)
    _, _, slow = inbox.receive(lambda m: m[0] == "pid", timeout=WAIT)
    a.system.send(("echo", b), ("whois", inbox.pid), sender=inbox.pid)
    echo = inbox.receive(lambda m: m[0] == "pid", timeout=WAIT)[1]
    sent = [0]
    assert slow.id & BOUNDED_MAILBOX
    a.system.spawn_fn(_flooder(slow, sent))
    wait_until(lambda: sent[0] > 1, timeout=WAIT)
    slowest, trips, start = 0.0, 0, time.monotonic()
    paused_seen = False
    while sent[0] < FLOOD:
        t = time.monotonic()
        a.system.send(echo, ("ping", trips, inbox.pid), sender=inbox.pid)
        n = trips
        assert inbox.receive(lambda m: m == ("pong", n), timeout=WAIT) == ("pong", n)
        slowest = max(slowest, time.monotonic() - t)
        trips += 1
        if time.monotonic() - start > 1.0 and sent[0] < FLOOD // 2:
            paused_seen = True  # a second in, the consumer (500/s) holds the flooder back
        assert time.monotonic() - start < 60, "the flood did not end"
    assert paused_seen, sent[0]
    assert slowest < 1.0, slowest
    assert trips > 50
    a.system.send(slow, ("end", FLOOD, inbox.pid), sender=inbox.pid)
    assert inbox.receive(lambda m: m[0] == "sunk", timeout=WAIT) == ("sunk", FLOOD, True)
    inbox.expect_nothing(0.2, NodeDown)
