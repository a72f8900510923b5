"""joerl.pg with a real subprocess node: its members reach this node's scope, go
when the process is killed with kill -9 (NodeDown), and a node started again
under the same name syncs its new members.

The other node runs ``node_main.py pg`` (a subprocess, ready once it printed
``READY``) against a private port mapper process; this test process is a node
too (``tester``), running its own ``pg`` scope.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from joerl import pg
from joerl.message import NOCONNECTION, NodeDown
from joerl.node.names import node_name as full
from joerl.node.node import DistributedSystem
from joerl.pg import PgEvent
from joerl.testing import ChildProcess, Probe, ProcessGroup, wait_until

ROOT = Path(__file__).resolve().parents[2]
NODE_MAIN = Path(__file__).with_name("node_main.py")
COOKIE = "joerl-multiprocess-test"
WAIT = 30.0  # generous: the machine is shared

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]


@pytest.fixture
def children() -> Iterator[ProcessGroup]:
    with ProcessGroup(cookie=COOKIE, cwd=ROOT, timeout=WAIT) as group:
        yield group


@pytest.fixture
def epmd(children: ProcessGroup) -> str:
    child = children.start([sys.executable, "-m", "joerl.epmd", "127.0.0.1:0"])
    return f"127.0.0.1:{child.wait_ready()['port']}"


@pytest.fixture
def here(epmd: str) -> Iterator[DistributedSystem]:
    node = DistributedSystem("tester", "127.0.0.1:0", epmd, cookie=COOKIE, start_epmd=False, tick_time=1.0)
    try:
        yield node
    finally:
        node.shutdown()


def start_pg_node(children: ProcessGroup, epmd: str, count: int) -> ChildProcess:
    argv = [sys.executable, str(NODE_MAIN), "pgnode", "--epmd", epmd, "--tick", "1.0", "pg", "--to", "tester"]
    child = children.start([*argv, "--count", str(count)])
    child.wait_ready()
    child.wait_line(lambda line: line.startswith("PG_JOINED"), WAIT)
    return child


def test_kill_9_removes_the_members_and_a_restart_syncs(
    children: ProcessGroup, epmd: str, here: DistributedSystem
) -> None:
    scope = pg.start(here)
    local = here.spawn_fn(lambda ctx: ctx.receive()).pid
    scope.join("workers", local)
    with Probe(here, timeout=WAIT) as probe:
        ref, _ = scope.monitor("workers", probe.pid)
        here.monitor_nodes(probe.pid)

        first = start_pg_node(children, epmd, 3)
        joined = probe.receive(PgEvent, timeout=WAIT)
        assert (joined.ref, joined.kind, len(joined.pids)) == (ref, "join", 3)
        assert all(p.node != 0 for p in joined.pids)
        assert sorted(scope.get_members("workers")) == sorted([local, *joined.pids])

        first.proc.kill()  # kill -9: no goodbye, only the link's loss
        assert probe.receive(NodeDown, timeout=WAIT) == NodeDown(full("pgnode"), NOCONNECTION)
        left = probe.receive(PgEvent, timeout=WAIT)
        assert (left.kind, sorted(left.pids)) == ("leave", sorted(joined.pids))
        assert scope.get_members("workers") == [local]

        start_pg_node(children, epmd, 2)  # the same name, a new incarnation
        again = probe.receive(PgEvent, timeout=WAIT)
        assert (again.kind, len(again.pids)) == ("join", 2)
        assert {p.creation for p in again.pids}.isdisjoint({p.creation for p in joined.pids})
    wait_until(lambda: len(scope.get_members("workers")) == 3, timeout=WAIT, what="local + 2 remote members")
    assert scope.dropped == 0
