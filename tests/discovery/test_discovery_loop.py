"""The discovery loop on real nodes in this process: connect to what a source lists, forget what it
drops, survive a source that is down or hostile, and let the handshake decide as for any link."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from joerl import DistributedSystem, NodeDown, NodeUp
from joerl.discovery import Discovery, StaticDiscovery
from joerl.testing import Probe, running_epmd, wait_until

COOKIE = "discovery-cookie"
HOST = "h.test"  # every node's host part here (names are full: name@host)


def full(*names: str) -> list[str]:
    return [f"{name}@{HOST}" for name in names]


class Scripted(Discovery):
    """A source whose answer (or failure) the test sets, counting the questions."""

    def __init__(self, answer: Any = (), **kw: Any) -> None:
        super().__init__(**kw)
        self.answer: Any = answer
        self.failure: Exception | None = None
        self.asked = 0

    def nodes(self) -> Any:
        self.asked += 1
        if self.failure is not None:
            raise self.failure
        return self.answer

    def set(self, answer: Any) -> None:
        self.answer = answer
        self.changed.set()


@pytest.fixture
def epmd() -> Iterator[str]:
    with running_epmd() as address:
        yield address


@pytest.fixture
def make_node(epmd: str) -> Iterator[Any]:
    nodes: list[DistributedSystem] = []

    def make(name: str, **kw: Any) -> DistributedSystem:
        kw.setdefault("cookie", COOKIE)
        kw.setdefault("global_names", False)  # (global's mesh would bring back a node discovery dropped)
        node = DistributedSystem(f"{name}@{HOST}", "127.0.0.1:0", epmd, start_epmd=False, **kw)
        nodes.append(node)
        return node

    yield make
    for node in reversed(nodes):
        node.shutdown()


def test_static_list_connects_every_listed_node(make_node: Any) -> None:
    b, c = make_node("b"), make_node("c")
    a = make_node("a", discovery=StaticDiscovery(full("a", "b", "c"), interval=0.2))
    wait_until(lambda: a.nodes() == full("b", "c"), what="links to b and c")
    assert b.nodes() == full("a") and c.nodes() == full("a")
    assert a.discovery is not None and a.discovery.stats.connects == 2
    assert a.discovery.listed == full("b", "c")  # its own name left out


def test_a_node_that_went_is_dialled_again_when_it_returns(make_node: Any) -> None:
    a = make_node("a", discovery=StaticDiscovery(["b"], interval=0.1))
    b = make_node("b")
    wait_until(lambda: a.nodes() == full("b"), what="the link to b")
    b.shutdown()
    wait_until(lambda: a.nodes() == [], what="b gone")
    b2 = make_node("b")
    wait_until(lambda: a.nodes() == full("b"), timeout=10, what="the link to the new b")
    assert b2.nodes() == full("a")


def test_a_node_no_longer_listed_is_disconnected_with_node_down(make_node: Any) -> None:
    source = Scripted(["b", "c"], interval=60.0)  # only the changed event makes it ask
    make_node("b"), make_node("c")
    a = make_node("a", discovery=source)
    wait_until(lambda: a.nodes() == full("b", "c"), what="links to b and c")
    with Probe(a) as probe:
        a.monitor_nodes(probe.pid)
        source.set(["b"])
        assert probe.receive(NodeDown) == NodeDown(f"c@{HOST}", "noconnection")
        assert a.nodes() == full("b")
        assert a.discovery is not None and a.discovery.stats.disconnects == 1
        source.set(["b", "c"])
        assert probe.receive(NodeUp) == NodeUp(f"c@{HOST}")


def test_a_source_that_is_down_leaves_the_cluster_and_is_asked_with_back_off(make_node: Any) -> None:
    make_node("b")
    source = Scripted(["b"], interval=0.02)
    a = make_node("a", discovery=source)
    wait_until(lambda: a.nodes() == full("b"), what="the link to b")
    loop = a.discovery
    assert loop is not None
    source.failure = ConnectionRefusedError("the source is down")
    wait_until(lambda: loop.stats.source_failures >= 1, what="a failed question")
    asked = source.asked
    wait_until(lambda: loop.stats.source_failures >= 5, timeout=10, what="questions with back-off")
    # Back-off: 5 failed questions took longer than 5 intervals would (0.02, 0.04, 0.08, ...).
    assert a.nodes() == full("b")  # the cluster stays as it is
    assert source.asked - asked >= 4
    source.failure = None
    source.set(["b", "c"])
    make_node("c")
    wait_until(lambda: a.nodes() == full("b", "c"), timeout=10, what="the link to c once the source answers")


def test_back_off_of_a_source_that_is_down(make_node: Any) -> None:
    source = Scripted(interval=0.01)
    source.failure = OSError("down")
    a = make_node("a", discovery=source)
    loop = a.discovery
    assert loop is not None
    wait_until(lambda: loop.stats.source_failures >= 6, timeout=10, what="six failed questions")
    # Six questions at a fixed 0.01 s interval take 0.06 s; with back-off
    # (0.01, 0.02, 0.04, 0.08, 0.16, +-20 %) at least 0.24 s. Checked on the
    # loop's own schedule: the back-off's next delay has grown.
    assert loop._backoff.failures >= 6 and loop._backoff._next >= 0.32


def test_hostile_entries_are_left_out_and_counted(make_node: Any) -> None:
    make_node("b")
    garbage = ["", "a b", 5, None, "x" * 300, "bad\nname", b"b", "b", f"b@{HOST}"]  # "b": this host
    source = Scripted(garbage, interval=60.0)
    a = make_node("a", discovery=source)
    wait_until(lambda: a.nodes() == full("b"), what="the link to b, the one valid entry")
    loop = a.discovery
    assert loop is not None
    assert loop.stats.invalid_entries == 7 and loop.listed == full("b")


def test_an_answer_that_is_not_a_list_counts_as_a_source_failure(make_node: Any) -> None:
    source = Scripted(5, interval=60.0)
    a = make_node("a", discovery=source)
    loop = a.discovery
    assert loop is not None
    wait_until(lambda: loop.stats.source_failures == 1, what="the broken answer counted")
    assert loop.running


def test_thousands_of_records_are_bounded(make_node: Any) -> None:
    make_node("n0")
    names = [f"n{i}" for i in range(5000)]
    source = Scripted(names, interval=60.0, max_nodes=10)
    a = make_node("a", discovery=source)
    loop = a.discovery
    assert loop is not None
    wait_until(lambda: loop.stats.connects + loop.stats.connect_failures == 10, what="ten dials")
    assert loop.stats.truncated == 1 and len(loop.listed) == 10
    assert a.nodes() == full("n0")  # the one of them that runs


def test_a_listed_stranger_fails_the_handshake_and_is_not_dialled_in_a_hot_loop(make_node: Any) -> None:
    stranger = make_node("stranger", cookie="another-cookie")
    source = Scripted(["stranger"], interval=0.02)
    a = make_node("a", discovery=source)
    loop = a.discovery
    assert loop is not None
    wait_until(lambda: loop.stats.connect_failures >= 1, what="the refused handshake")
    wait_until(lambda: source.asked >= 30, timeout=10, what="30 rounds")
    assert a.nodes() == [] and stranger.nodes() == []
    # One dial per back-off (0.02 s, doubling up to minutes), not one per round.
    assert loop.stats.connect_failures <= 6, loop.stats


def test_a_listed_node_off_the_allow_list_is_refused(make_node: Any) -> None:
    make_node("b")
    make_node("c")
    a = make_node("a", allowed_nodes=full("c"), discovery=StaticDiscovery(["b", "c"], interval=0.05))
    loop = a.discovery
    assert loop is not None
    wait_until(lambda: a.nodes() == full("c") and loop.stats.connect_failures >= 1, what="c linked, b refused")


def test_shutdown_stops_the_loop_and_the_strategy(make_node: Any) -> None:
    stopped = []

    class Tracked(Scripted):
        def stop(self) -> None:
            stopped.append(True)

    a = make_node("a", discovery=Tracked(["b"], interval=0.05))
    loop = a.discovery
    assert loop is not None and loop.running
    a.shutdown()
    assert not loop.running and stopped == [True]


def test_a_source_that_hangs_counts_as_down(make_node: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import gevent

    from joerl.discovery import _loop

    monkeypatch.setattr(_loop, "SOURCE_TIMEOUT", 0.2)
    hanging = gevent.event.Event()

    class Hangs(Scripted):
        def nodes(self) -> Any:
            self.asked += 1
            hanging.wait()  # never set: a source that never answers

    a = make_node("a", discovery=Hangs(interval=60.0))
    loop = a.discovery
    assert loop is not None
    wait_until(lambda: loop.stats.source_failures >= 1, what="the hanging source given up")
    assert loop.running
