"""Never deliver to the wrong incarnation: a pid of a dead incarnation of a
node is refused and counted, never delivered, in every restart order (issue 15).

A node and its port mapper that restart within the same wall-clock second
used to give the new node the old creation (a fresh port mapper hands out
``max(4, now + 1)``, as Erlang's epmd does), so a message to a pid of the dead
incarnation reached a process of the new one. The node now chooses its
creation at random (``joerl.node.config.choose_creation``).

The port mapper here is a real :class:`~joerl.epmd.server.EpmdServer` on a
real socket in this process, whose wall clock stands still: every restart
happens "within the same second", deterministically, however slow the
machine. Node ``node_b`` is a real child process (``node_main.py serve``);
this test process is node ``tester``, which holds the pids of every
incarnation of ``node_b`` and sends to all of them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from joerl.epmd.server import EpmdServer
from joerl.message import NodeDown
from joerl.node.names import node_name as full
from joerl.node.node import DistributedSystem
from joerl.pid import Pid
from joerl.testing import ChildProcess, Probe, ProcessGroup, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
NODE_MAIN = Path(__file__).with_name("node_main.py")
COOKIE = "joerl-incarnation-test"
WAIT = 30.0  # generous: the machine is shared
FROZEN_NOW = 1_700_000_000.0  # the port mapper's wall clock: every restart is in this second

pytestmark = pytest.mark.reliability


class Mapper:
    """A port mapper on a fixed port that can die and come back afresh (its table forgotten)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.server: EpmdServer | None = None
        self.start()

    def start(self) -> None:
        self.server = EpmdServer(self.address, wallclock=lambda: FROZEN_NOW, keepalive_timeout=WAIT)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def creation_of(self, name: str) -> int | None:
        info = self.server.lookup(full(name)) if self.server is not None else None
        return None if info is None else info.creation


class World:
    """The port mapper, this process as node ``tester``, and node ``node_b``'s incarnations."""

    def __init__(self, group: ProcessGroup, mapper: Mapper) -> None:
        self.group = group
        self.mapper = mapper
        self.here = DistributedSystem(
            "tester", "127.0.0.1:0", mapper.address, cookie=COOKIE, start_epmd=False, tick_time=1.0,
            global_names=False,
        )  # fmt: skip
        self.inbox = Probe(self.here, timeout=WAIT)
        self.here.monitor_nodes(self.inbox.pid)
        self.b: ChildProcess | None = None
        self.pids: list[Pid] = []  # the echo pid of every incarnation of node_b, oldest first
        self.creations: list[int] = []

    def start_b(self) -> None:
        argv = [sys.executable, str(NODE_MAIN), "node_b", "--epmd", self.mapper.address, "--tick", "1", "serve"]
        self.b = self.group.start(argv)
        ready = self.b.wait_ready()
        self.creations.append(int(ready["creation"]))
        self.pids.append(self.whois_b())

    def whois_b(self) -> Pid:
        self.here.system.send(("echo", "node_b"), ("whois", self.inbox.pid), sender=self.inbox.pid)
        pid: Pid = self.inbox.receive(lambda m: isinstance(m, tuple) and m[0] == "pid")[1]
        return pid

    def kill_b(self) -> None:
        assert self.b is not None
        self.b.close()  # SIGKILL
        self.inbox.receive(lambda m: m == NodeDown(full("node_b"), "noconnection"))

    def check_only_the_live_incarnation_answers(self) -> None:
        """Ping every pid ever held, then the live one: only the live one answers, the
        rest are counted as stale."""
        *dead, live = self.pids
        assert all((p.node, p.id) == (live.node, live.id) for p in dead), "same name, same first process"
        stale_before = self.here.stats.dropped_stale
        for i, pid in enumerate(dead):
            self.here.system.send(pid, ("ping", i, self.inbox.pid), sender=self.inbox.pid)
        self.here.system.send(live, ("ping", "live", self.inbox.pid), sender=self.inbox.pid)
        pong = self.inbox.receive(lambda m: isinstance(m, tuple) and m[0] == "pong")
        assert pong == ("pong", "live"), f"a dead incarnation's pid was answered: {pong} (creations {self.creations})"
        wait_until(lambda: self.here.stats.dropped_stale - stale_before == len(dead), timeout=WAIT)
        # Nothing else arrives later either: a second round trip to the live
        # pid comes back with no pong of a dead one before it.
        self.here.system.send(live, ("ping", "again", self.inbox.pid), sender=self.inbox.pid)
        assert self.inbox.receive(lambda m: isinstance(m, tuple) and m[0] == "pong") == ("pong", "again")
        stray = [m for m in self.inbox.pending() if isinstance(m, tuple) and m[0] == "pong"]
        assert stray == [], stray

    def close(self) -> None:
        self.here.shutdown()


@pytest.fixture
def world() -> Iterator[World]:
    mapper = Mapper()
    with ProcessGroup(cookie=COOKIE, cwd=ROOT, timeout=WAIT) as group:
        w = World(group, mapper)
        try:
            yield w
        finally:
            w.close()
            group.close()
            mapper.stop()


def test_node_restarts_first(world: World) -> None:
    """node_b dies and comes back; the port mapper stays (it remembers the name)."""
    world.start_b()
    world.kill_b()
    world.start_b()
    assert world.creations[0] != world.creations[1]
    world.check_only_the_live_incarnation_answers()


def test_port_mapper_restarts_first(world: World) -> None:
    """The port mapper dies and comes back afresh (node_b registers again,
    keeping its creation); then node_b dies and comes back."""
    world.start_b()
    world.mapper.stop()
    world.mapper.start()
    wait_until(lambda: world.mapper.creation_of("node_b") is not None, timeout=WAIT, what="node_b registered again")
    world.kill_b()
    world.start_b()
    world.check_only_the_live_incarnation_answers()


def test_node_and_port_mapper_restart_together(world: World) -> None:
    """Both die and both come back within the same second: the fresh port
    mapper hands the new node_b the very creation it gave the old one."""
    world.start_b()
    first_registered = world.mapper.creation_of("node_b")
    world.mapper.stop()
    world.kill_b()
    world.mapper.start()
    world.start_b()
    assert world.mapper.creation_of("node_b") == first_registered, "the port mapper's creation repeats"
    assert world.creations[0] != world.creations[1], "the node's own creation does not"
    world.check_only_the_live_incarnation_answers()


def test_crash_loop_faster_than_once_a_second(world: World) -> None:
    """Four incarnations of node_b, each with its port mapper, all in one
    (frozen) second: every pid of every dead incarnation is refused."""
    world.start_b()
    for _ in range(3):
        world.mapper.stop()
        world.kill_b()
        world.mapper.start()
        world.start_b()
        world.check_only_the_live_incarnation_answers()
    assert len(set(world.creations)) == len(world.creations) == 4
