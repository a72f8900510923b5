"""joerl.pg with a real subprocess node: its members reach this node's scope, go
when the process is killed with kill -9 (NodeDown), and a node started again
under the same name syncs its new members.

The other node runs ``node_main.py pg`` (a subprocess, ready once it printed
``READY``) against a private port mapper process; this test process is a node
too (``tester``), running its own ``pg`` scope.
"""

from __future__ import annotations

import pytest
from test_nodes import WAIT, children, epmd, here, node_argv  # noqa: F401 - fixtures

from joerl import pg
from joerl.message import NOCONNECTION, NodeDown
from joerl.node.names import node_name as full
from joerl.node.node import DistributedSystem
from joerl.pg import PgEvent
from joerl.testing import ChildProcess, Probe, ProcessGroup, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]


def start_pg_node(children: ProcessGroup, epmd: str, count: int) -> ChildProcess:
    argv = node_argv("pgnode", epmd, "pg", "--to", "tester", tick=1.0)
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
