"""Every message is counted exactly once in ``node.stats`` (issue 15).

A message to a process of another node (to a pid or to a registered name, a
GenServer call's request included) is counted once: in ``sent`` when it is
written to the link, else in one ``dropped_*`` counter: ``dropped_unreachable``
when its node cannot be reached (a failed dial, a link lost while it waited),
``dropped_stale`` for a pid of a dead incarnation, ``dropped_unknown_node``
for a node id nobody has. Links, monitors and other signals are not messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from joerl import DistributedSystem
from joerl.gen_server import GenServer, Reply
from joerl.pid import Pid
from joerl.system import From
from joerl.testing import Probe, node_cluster, wait_until

COOKIE = "stats-test-cookie"
N = 1000


@pytest.fixture
def pair() -> Iterator[list[DistributedSystem]]:
    with node_cluster("a", "b", cookie=COOKIE, global_names=False) as nodes:
        yield nodes


def test_sends_to_registered_names_on_another_node_are_counted(pair: list[DistributedSystem]) -> None:
    a, b = pair
    inbox = Probe(b, name="inbox")
    for i in range(N):
        a.system.send(("inbox", "b"), i)
    wait_until(lambda: len(inbox.pending()) == N, timeout=30)
    assert inbox.pending() == list(range(N))
    assert a.stats.sent == N
    assert b.stats.received == N
    assert a.stats.dropped_unreachable == a.stats.dropped_stale == 0


def test_sends_by_name_before_and_after_the_link_is_up_are_counted_once(pair: list[DistributedSystem]) -> None:
    a, b = pair
    inbox = Probe(b, name="inbox")
    a.system.send(("inbox", "b"), "queued while dialling")  # (the link comes up for it)
    assert inbox.receive(timeout=10) == "queued while dialling"
    a.system.send(("inbox", "b"), "on the link")
    assert inbox.receive(timeout=10) == "on the link"
    assert (a.stats.sent, b.stats.received) == (2, 2)


def test_sends_to_pids_and_calls_are_counted_once(pair: list[DistributedSystem]) -> None:
    a, b = pair
    inbox = Probe(b)
    echo = b.spawn(Echo(), name="echo").pid
    for i in range(N):
        a.system.send(inbox.gpid, i)
    wait_until(lambda: len(inbox.pending()) == N, timeout=30)
    assert a.stats.sent == N
    remote_echo = Pid(b.node_id, echo.id, b.creation)
    assert a.call(remote_echo, "hello", timeout=10) == "hello"  # by pid
    assert a.call(("echo", "b"), "again", timeout=10) == "again"  # by name
    assert a.stats.sent == N + 2
    assert a.stats.dropped_unreachable == 0


def test_a_send_dropped_after_a_failed_dial_counts_as_dropped(pair: list[DistributedSystem]) -> None:
    a, _ = pair
    # A node nobody registered: the dial fails at the port mapper.
    a.system.send(("inbox", "ghost"), "by name")
    wait_until(lambda: a.stats.dropped_unreachable == 1, timeout=15)
    assert a.stats.sent == 0
    # While the peer backs off, a send fails at once: dropped too, never sent.
    a.system.send(("inbox", "ghost"), "again")
    wait_until(lambda: a.stats.dropped_unreachable + a.stats.sent == 2, timeout=15)
    assert a.stats.sent == 0 and a.stats.dropped_unreachable == 2


def test_a_send_to_a_pid_of_a_departed_node_counts_as_dropped(pair: list[DistributedSystem]) -> None:
    a, b = pair
    inbox = Probe(b)
    a.system.send(inbox.gpid, "hello")
    assert inbox.receive(timeout=10) == "hello"
    gone = inbox.gpid
    b.shutdown()
    wait_until(lambda: a.nodes() == [], timeout=15)
    sent = a.stats.sent
    for i in range(10):
        a.system.send(gone, i)
    wait_until(lambda: a.stats.dropped_unreachable == 10, timeout=15)
    assert a.stats.sent == sent  # none of them counted as sent


class Echo(GenServer):
    """Answers every call with its request."""

    def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        return Reply(request, state)
