"""Links, monitors and node monitors across nodes in one process (loopback sockets).

A remote process's death reaches linked and monitoring processes with its
reason; a link between nodes that closes, or a node that shuts down, fires
every link and monitor across it; ``monitor_nodes`` / ``monitor_node``
announce NodeUp before any message of that node and NodeDown on loss.
"""

from __future__ import annotations

from typing import Any

import pytest
from gevent.event import Event
from test_node import BOOM, cluster, link, make_node, no_leaks, remote  # noqa: F401 - fixtures

from joerl.actor import ActorContext
from joerl.errors import NodeUnreachable
from joerl.message import KILLED, NOCONNECTION, NOPROC, NORMAL, SHUTDOWN, Down, Exit, NodeDown, NodeUp
from joerl.node.config import node_id_of
from joerl.node.names import node_name as full
from joerl.node.node import DistributedSystem
from joerl.pid import Pid
from joerl.testing import Probe


def doomed(ctx: ActorContext) -> None:
    """Ends with the reason it is sent: ``("die", reason)``; "raise" raises RuntimeError('boom')."""
    while True:
        msg = ctx.receive()
        if isinstance(msg, tuple) and msg[0] == "die":
            if msg[1] == "raise":
                raise RuntimeError("boom")
            ctx.stop(msg[1])


def linker(ctx: ActorContext, other: Pid, trap: bool, report: Pid) -> None:
    """Links to ``other`` and reports what reaches it."""
    ctx.trap_exit(trap)
    ctx.link(other)
    ctx.send(report, ("linked", ctx.pid))
    while True:
        ctx.send(report, ("got", ctx.receive()))


def down_of(ref: Any) -> Any:
    """A match for the Down of monitor ``ref``."""
    return lambda m: isinstance(m, Down) and m.ref == ref


def start_linker(node: DistributedSystem, other: Pid, trap: bool, report: Probe) -> Pid:
    pid = node.spawn_fn(linker, other, trap, report.pid).pid
    assert report.receive("linked") == ("linked", pid)
    return pid


# -- links -----------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["a links to b", "b links to a"])
def test_a_remote_abnormal_exit_kills_the_linked_process(cluster: list[DistributedSystem], direction: str) -> None:
    a, b, _ = cluster
    home, away = (a, b) if direction == "a links to b" else (b, a)
    watch = Probe(home)
    victim = away.spawn_fn(doomed).pid
    pid = start_linker(home, remote(away, victim), False, watch)
    ref = watch.ctx.monitor(pid)
    # The Link frame precedes this message on the same link: the link exists when it dies.
    watch.ctx.send(remote(away, victim), ("die", "raise"))
    assert watch.receive(Down) == Down(ref, pid, BOOM)
    assert watch.pending() == []


def test_a_trapping_process_gets_exit_with_the_remote_pid_and_reason(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    watch = Probe(a)
    victim = remote(b, b.spawn_fn(doomed).pid)
    pid = start_linker(a, victim, True, watch)
    watch.ctx.send(victim, ("die", ("custom", [1, 2])))
    assert watch.receive("got") == ("got", Exit(victim, ("custom", [1, 2])))
    assert a.system.is_process_alive(pid)


def test_a_normal_remote_exit_spares_a_non_trapping_linked_process(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    watch = Probe(a)
    victim = remote(b, b.spawn_fn(doomed).pid)
    spared = start_linker(a, victim, False, watch)
    trapper = start_linker(a, victim, True, watch)
    watch.ctx.send(victim, ("die", NORMAL))
    assert watch.receive("got") == ("got", Exit(victim, NORMAL))
    assert a.system.is_process_alive(spared) and a.system.is_process_alive(trapper)


def test_the_remote_side_of_a_link_dies_with_the_local_one(cluster: list[DistributedSystem]) -> None:
    """B's process is linked (by A) and killed when A's process crashes."""
    a, b, _ = cluster
    watch_b = Probe(b)
    report = Probe(a)
    on_b = b.spawn_fn(doomed).pid
    ref = watch_b.ctx.monitor(on_b)
    local = start_linker(a, remote(b, on_b), False, report)
    a.system.exit(local, ("bad", "thing"))
    assert watch_b.receive(Down) == Down(ref, on_b, ("bad", "thing"))


def test_unlink_from_a_remote_pid(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    watch = Probe(a)
    victim = remote(b, b.spawn_fn(doomed).pid)
    pid = start_linker(a, victim, False, watch)
    a.system.unlink(pid, victim)
    ref = watch.ctx.monitor(victim)
    watch.ctx.send(victim, ("die", "raise"))  # behind the Unlink on the same link
    assert watch.receive(Down) == Down(ref, victim, BOOM)
    assert a.is_process_alive(victim) is False
    assert a.system.is_process_alive(pid)
    assert watch.pending() == []


def test_linking_to_a_dead_remote_pid_gives_noproc(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    watch = Probe(a)
    ghost = Pid(b.node_id, 10_000, b.creation)
    start_linker(a, ghost, True, watch)
    assert watch.receive("got") == ("got", Exit(ghost, NOPROC))


def test_link_and_monitor_to_a_pid_of_a_node_that_cannot_be_reached(cluster: list[DistributedSystem]) -> None:
    """Erlang's answer: Exit / Down with "noconnection", at once."""
    a = cluster[0]
    watch = Probe(a, trap_exit=True)
    ghost = Pid(node_id_of("ghost"), 1, 1)  # a node the port mapper does not know
    ref = watch.ctx.monitor(ghost)
    assert watch.receive(Down) == Down(ref, ghost, NOCONNECTION)
    watch.ctx.link(ghost)
    assert watch.receive(Exit) == Exit(ghost, NOCONNECTION)
    # A node whose dial just failed (so the next one waits for its backoff).
    with pytest.raises(NodeUnreachable):
        a.connect_to_node("gone")
    gone = Pid(node_id_of("gone"), 1, 1)
    watch.ctx.link(gone)
    assert watch.receive(Exit) == Exit(gone, NOCONNECTION)
    ref = watch.ctx.monitor(gone)
    assert watch.receive(Down) == Down(ref, gone, NOCONNECTION)
    assert watch.pending() == []


def test_a_non_trapping_process_linking_to_an_unreachable_pid_dies_of_noconnection(
    cluster: list[DistributedSystem],
) -> None:
    a = cluster[0]
    watch = Probe(a)
    ghost = Pid(node_id_of("ghost"), 1, 1)
    done = Event()

    def body(ctx: ActorContext) -> None:
        try:
            ctx.link(ghost)
        finally:
            done.set()
        ctx.receive()

    pid = a.spawn_fn(body).pid
    ref = watch.ctx.monitor(pid)
    assert done.wait(5)
    assert watch.receive(Down) == Down(ref, pid, NOCONNECTION)


def test_exit_signal_to_a_remote_pid(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    watch = Probe(b)
    trapper = Probe(b, trap_exit=True)
    victim = b.spawn_fn(doomed).pid
    ref = watch.ctx.monitor(victim)
    sender = Probe(a)
    sender.ctx.exit(trapper.gpid, "please")
    assert trapper.receive() == Exit(sender.gpid, "please")
    sender.ctx.exit(remote(b, victim), "kill")
    assert watch.receive(Down) == Down(ref, victim, KILLED)


# -- monitors ------------------------------------------------------------------------------------


def test_monitor_a_remote_pid_gets_down_with_the_reason(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    watch = Probe(a)
    victim = remote(b, b.spawn_fn(doomed).pid)
    ref = watch.ctx.monitor(victim)
    watch.ctx.send(victim, ("die", "raise"))
    down, sender = watch.receive_with_sender(Down)
    assert down == Down(ref, victim, BOOM)
    assert down.pid.node == b.node_id and sender == victim
    # A second monitor, cancelled before the death, delivers nothing.
    victim2 = remote(b, b.spawn_fn(doomed).pid)
    ref2 = watch.ctx.monitor(victim2)
    watch.ctx.demonitor(ref2)
    ref3 = watch.ctx.monitor(victim2)
    watch.ctx.send(victim2, ("die", "bye"))
    assert watch.receive(Down) == Down(ref3, victim2, "bye")
    assert watch.pending() == []


def test_monitor_a_remote_pid_that_does_not_exist_gets_noproc(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    watch = Probe(a)
    ghost = Pid(b.node_id, 10_000, b.creation)
    ref = watch.ctx.monitor(ghost)
    assert watch.receive(Down) == Down(ref, ghost, NOPROC)
    dead = b.spawn_fn(doomed).pid
    b.system.stop(dead)
    ref = watch.ctx.monitor(remote(b, dead))
    assert watch.receive(Down) == Down(ref, remote(b, dead), NOPROC)


def test_monitor_a_registered_name_on_another_node(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    watch = Probe(a)
    victim = b.spawn_fn(doomed, name="victim").pid
    ref = watch.ctx.monitor(("victim", "b"))
    watch.ctx.send(("victim", "b"), ("die", "raise"))
    assert watch.receive(Down) == Down(ref, remote(b, victim), BOOM)
    ref = watch.ctx.monitor(("nobody", "b"))
    down = watch.receive(Down)
    assert (down.ref, down.reason) == (ref, NOPROC)
    # A cancelled name monitor delivers nothing.
    again = b.spawn_fn(doomed, name="victim").pid
    ref = watch.ctx.monitor(("victim", "b"))
    watch.ctx.demonitor(ref)
    assert a.is_process_alive(remote(b, again))  # a round trip after the Demonitor
    b.system.stop(again, "bye")
    watch.ctx.send(watch.pid, "marker")
    assert watch.receive() == "marker"


def test_a_name_monitor_fires_noconnection_when_the_link_is_lost(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    watch = Probe(a)
    victim = b.spawn_fn(doomed, name="victim").pid
    ref = watch.ctx.monitor(("victim", "b"))
    assert a.is_process_alive(remote(b, victim))  # a round trip: the Monitor frame is applied
    link(a, "b").close("test")
    down = watch.receive(Down, timeout=1.0)
    assert (down.ref, down.reason) == (ref, NOCONNECTION)


def _wire_up(a: DistributedSystem, b: DistributedSystem) -> dict[str, Any]:
    """Processes of A linked to / monitoring processes of B, and the reverse."""
    watch_a, watch_b = Probe(a), Probe(b)
    targets_b = [remote(b, b.spawn_fn(doomed).pid) for _ in range(3)]
    targets_a = [remote(a, a.spawn_fn(doomed).pid) for _ in range(2)]
    plain = start_linker(a, targets_b[0], False, watch_a)
    plain_ref = watch_a.ctx.monitor(plain)
    trapping = start_linker(a, targets_b[1], True, watch_a)
    mon_ref = watch_a.ctx.monitor(targets_b[2])
    b_trapping = start_linker(b, targets_a[0], True, watch_b)
    b_mon_ref = watch_b.ctx.monitor(targets_a[1])
    # Local monitors of the far ends of the links, to see how they end.
    far_b = [watch_b.ctx.monitor(Pid(0, p.id, 0)) for p in targets_b[:2]]
    far_a = watch_a.ctx.monitor(Pid(0, targets_a[0].id, 0))
    # A round trip each way: it follows the Link and Monitor frames on the
    # link, so when it is answered they have all been applied.
    assert a.is_process_alive(targets_b[0]) and b.is_process_alive(targets_a[0])
    return locals()


def test_a_closed_link_fires_every_link_and_monitor_with_noconnection(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    w = _wire_up(a, b)
    watch_a, watch_b = w["watch_a"], w["watch_b"]
    a.monitor_nodes(watch_a.pid)
    b.monitor_nodes(watch_b.pid)
    link(a, "b").close("test: link cut")

    assert watch_a.receive(down_of(w["plain_ref"])) == Down(w["plain_ref"], w["plain"], NOCONNECTION)
    assert watch_a.receive("got") == ("got", Exit(w["targets_b"][1], NOCONNECTION))
    assert watch_a.receive(down_of(w["mon_ref"])) == Down(w["mon_ref"], w["targets_b"][2], NOCONNECTION)
    assert watch_a.receive(NodeDown) == NodeDown(full("b"), NOCONNECTION)
    # B learns it from the socket's EOF, and fires its side the same way.
    assert watch_b.receive("got") == ("got", Exit(w["targets_a"][0], NOCONNECTION))
    assert watch_b.receive(down_of(w["b_mon_ref"])) == Down(w["b_mon_ref"], w["targets_a"][1], NOCONNECTION)
    assert watch_b.receive(NodeDown) == NodeDown(full("a"), NOCONNECTION)
    # The far ends of the links (non-trapping) die of it too, on each side;
    # the processes that were only monitored live on.
    for ref, far in zip(w["far_b"], w["targets_b"], strict=False):
        assert watch_b.receive(down_of(ref)) == Down(ref, Pid(0, far.id, 0), NOCONNECTION)
    far_a = Pid(0, w["targets_a"][0].id, 0)
    assert watch_a.receive(down_of(w["far_a"])) == Down(w["far_a"], far_a, NOCONNECTION)
    assert b.system.is_process_alive(Pid(0, w["targets_b"][2].id, 0))
    assert a.system.is_process_alive(Pid(0, w["targets_a"][1].id, 0))
    assert watch_a.pending() == [] and watch_b.pending() == []


def test_a_node_shutting_down_fires_every_link_and_monitor(cluster: list[DistributedSystem]) -> None:
    """Its processes end with "shutdown" before its links close, so that is the reason seen."""
    a, b, _ = cluster
    w = _wire_up(a, b)
    watch_a = w["watch_a"]
    a.monitor_nodes(watch_a.pid)
    b.shutdown()
    assert watch_a.receive(down_of(w["plain_ref"])) == Down(w["plain_ref"], w["plain"], SHUTDOWN)
    assert watch_a.receive("got") == ("got", Exit(w["targets_b"][1], SHUTDOWN))
    assert watch_a.receive(down_of(w["mon_ref"])) == Down(w["mon_ref"], w["targets_b"][2], SHUTDOWN)
    assert watch_a.receive(NodeDown) == NodeDown(full("b"), NOCONNECTION)
    # A's process that B's trapping linker was linked to dies of B's shutdown.
    far_a = Pid(0, w["targets_a"][0].id, 0)
    assert watch_a.receive(down_of(w["far_a"])) == Down(w["far_a"], far_a, SHUTDOWN)
    assert a.system.is_process_alive(Pid(0, w["targets_a"][1].id, 0))
    assert watch_a.pending() == []


# -- node monitoring ---------------------------------------------------------------------------------


def test_monitor_nodes_gets_nodeup_before_any_message_and_nodedown_on_loss(cluster: list[DistributedSystem]) -> None:
    a, b, c = cluster
    watch = Probe(a)
    a.monitor_nodes(watch.pid)
    b.system.send(watch.gpid, "first from b")
    assert watch.receive() == NodeUp(full("b"))
    assert watch.receive() == "first from b"
    c.system.send(watch.gpid, "first from c")
    assert watch.receive() == NodeUp(full("c"))
    assert watch.receive() == "first from c"
    c.shutdown()
    assert watch.receive() == NodeDown(full("c"), NOCONNECTION)
    a.monitor_nodes(watch.pid, False)
    b.shutdown()
    watch.ctx.send(watch.pid, "marker")
    assert watch.receive() == "marker", "no NodeDown after monitor_nodes(False)"


def test_nodeup_comes_before_the_first_reply_on_a_link_this_node_dialled(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    watch = Probe(a)
    a.monitor_nodes(watch.pid)
    seen = Probe(b)
    watch.ctx.send(seen.gpid, "hello")
    assert seen.receive() == "hello"
    seen.ctx.send(seen.ctx.sender, "reply")
    assert watch.receive() == NodeUp(full("b"))
    assert watch.receive() == "reply"


def test_a_full_bounded_mailbox_does_not_take_the_node_link_down(make_node: Any) -> None:
    a, b = make_node("ta", tick_time=1.0), make_node("tb", tick_time=1.0)
    release = Event()
    got: list[int] = []

    def slow(ctx: ActorContext) -> None:
        release.wait()
        while len(got) < 20:
            got.append(ctx.receive())

    full = remote(b, b.system.spawn_fn(slow, mailbox_size=5).pid)
    bystander = remote(b, b.spawn_fn(doomed).pid)
    watch = Probe(a)
    ref = watch.ctx.monitor(bystander)
    for i in range(20):
        a.system.send(full, i)
    # Longer than the tick time: the link must survive a process that does not read.
    watch.expect_nothing(1.6, match=Down)
    release.set()
    watch.ctx.send(bystander, ("die", "done"))
    assert watch.receive(Down) == Down(ref, bystander, "done")
    assert got == list(range(20))


def test_monitor_node_watches_one_node(cluster: list[DistributedSystem]) -> None:
    a, b, c = cluster
    watch = Probe(a)
    a.monitor_node(watch.pid, "b")  # connects, as Erlang's monitor_node does
    assert a.nodes() == [full("b")]
    assert watch.receive() == NodeUp(full("b"))
    c.system.send(watch.gpid, "from c")  # a NodeUp(full("c")) would come first
    assert watch.receive() == "from c"
    link(a, "c").close("test")
    link(a, "b").close("test")
    assert watch.receive() == NodeDown(full("b"), NOCONNECTION)
    assert watch.pending() == []


def test_monitor_node_of_an_unknown_node_gets_nodedown_at_once(cluster: list[DistributedSystem]) -> None:
    a = cluster[0]
    watch = Probe(a)
    a.monitor_node(watch.pid, "nosuchnode")
    down = watch.receive()
    assert isinstance(down, NodeDown) and down.node == full("nosuchnode")
