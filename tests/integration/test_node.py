"""Several nodes in one process, on real loopback sockets: location transparency.

Messages by pid and by ``(name, node)`` with no ``connect_to_node`` first,
senders that can be replied to, pids inside messages (also forwarded to a
third node), bulk and large messages, wrong cookies, undecodable payloads,
simultaneous dials, liveness round trips, discovery, and a node that restarts
under the same name.

The helpers here (the ``cluster`` and ``make_node`` fixtures,
:func:`remote`) are shared with ``test_node_links.py`` and
``test_node_calls.py``; test code reads messages through
:class:`joerl.testing.Probe`. Every wait is on a message, an event or a condition
with a deadline; each test tears its nodes down and leaves no greenlet and no
socket behind. Figures are printed: run with ``-s`` to see them.
``JOERL_TEST_ROUNDS=300`` runs the simultaneous-dial test as a soak.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import gevent
import pytest
from _matchers import Raised
from gevent import socket as gsocket
from gevent.event import Event

from joerl.actor import ActorContext
from joerl.errors import AuthenticationError, DistributionError, NodeUnreachable, NotSerializable
from joerl.message import NOCONNECTION, NOPROC, Down, NodeDown, NodeUp
from joerl.node import protocol as P
from joerl.node.config import node_id_of
from joerl.node.connection import Connection, LinkConfig
from joerl.node.link_setup import dial
from joerl.node.names import node_name as full
from joerl.node.node import DistributedSystem
from joerl.pid import Pid, Ref
from joerl.serialization import MessageRegistry, default_registry, serializable
from joerl.testing import Probe, live_greenlets, node_cluster, wait_until

#: How long a test waits for something that should happen at once.
WAIT = 5.0
COOKIE = "joerl-node-test-cookie"


# -- helpers (imported by the other test_node_*.py modules) ------------------------------


#: The reason, at another node, of a process that raised ``RuntimeError("boom")``.
BOOM = Raised("RuntimeError", "boom")


def remote(node: DistributedSystem, pid: Pid) -> Pid:
    """How other nodes name ``node``'s local process ``pid``: ``<node_id.id.creation>``."""
    return Pid(node.node_id, pid.id, node.creation)


def link(node: DistributedSystem, peer: str) -> Connection:
    """``node``'s live link to ``peer`` (fails the test if there is none)."""
    conn = node._peers[peer].link
    assert conn is not None and not conn.closed, f"{node.node_name} has no link to {peer}"
    return conn


@contextmanager
def link_stays_up(node: DistributedSystem, peer: DistributedSystem) -> Iterator[Connection]:
    """Gives ``node``'s live link to ``peer`` (a message has crossed it); on
    leaving, checks that it is still the link, that it still carries messages,
    and that ``node`` saw no NodeDown of ``peer``."""
    watch = Probe(node)
    node.monitor_nodes(watch.pid)
    seen = Probe(peer)
    node.system.send(seen.gpid, 1)
    assert seen.receive() == 1
    live = link(node, peer.node_name)
    yield live
    assert link(node, peer.node_name) is live, "the live link stays"
    node.system.send(seen.gpid, 2)
    assert seen.receive() == 2
    assert watch.receive() == NodeUp(full(peer.node_name))
    assert watch.pending() == [], "no NodeDown"


def context(node: DistributedSystem, pid: Pid) -> ActorContext:
    """The context of ``node``'s live local process ``pid`` (fails the test if it is dead)."""
    ctx = node.system.context_of(pid)
    assert ctx is not None, f"{pid} is not alive on {node.node_name}"
    return ctx


def open_sockets(*nodes: DistributedSystem, connected: bool = False) -> list[Any]:
    """Open sockets of this process on one of the nodes' listening ports, or
    connected to one (only connected ones with ``connected=True``)."""
    ports = {n.listen_port for n in nodes}
    found = []
    for obj in gc.get_objects():
        if isinstance(obj, (gsocket.socket, socket.socket)) and obj.fileno() != -1:
            here = obj.getsockname()[1]
            try:
                there = obj.getpeername()[1]
            except OSError:  # listening, or not connected
                there = None
                if connected:
                    continue
            if here in ports or there in ports:
                found.append(obj)
    return found


def echo(ctx: ActorContext) -> None:
    """Replies ``("echo", msg)`` to the sender of every message (if any)."""
    while True:
        msg = ctx.receive()
        if ctx.sender is not None:
            ctx.send(ctx.sender, ("echo", msg))


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """After the test (and its nodes' teardown) no greenlet it started is left."""
    gevent.get_hub()
    before = live_greenlets()
    yield
    wait_until(lambda: not (live_greenlets() - before), timeout=WAIT, what="the test's greenlets to end")


@pytest.fixture
def cluster(no_leaks: None) -> Iterator[list[DistributedSystem]]:
    """Three nodes ``a``, ``b``, ``c`` on one in-process port mapper; afterwards
    every socket of theirs is closed. No global name server: these tests count
    every frame between the nodes (tests/integration/test_global_names.py
    covers it)."""
    with node_cluster("a", "b", "c", cookie=COOKIE, global_names=False) as nodes:
        yield nodes
    assert open_sockets(*nodes) == []


@pytest.fixture
def make_node(cluster: list[DistributedSystem]) -> Iterator[Callable[..., DistributedSystem]]:
    """``make_node(name, **options)``: another node on the cluster's port mapper
    (shut down after the test, before the cluster)."""
    extra: list[DistributedSystem] = []

    def make(name: str, **options: Any) -> DistributedSystem:
        options.setdefault("cookie", COOKIE)
        options.setdefault("global_names", False)
        node = DistributedSystem(name, "127.0.0.1:0", cluster[0].epmd_address, start_epmd=False, **options)
        extra.append(node)
        return node

    yield make
    for node in reversed(extra):
        node.shutdown()
    # (the cluster's end of a link to them closes when its reader sees the EOF)
    wait_until(lambda: open_sockets(*extra) == [], timeout=WAIT, what="no socket left on the extra nodes' ports")


# -- location transparency ---------------------------------------------------------------


def test_ctx_send_to_a_remote_pid_without_connecting_and_the_reply(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    server = b.spawn_fn(echo).pid
    inbox = Probe(a)
    assert a.nodes() == [] and b.nodes() == []

    inbox.ctx.send(remote(b, server), ("hello", 1))
    msg, sender = inbox.receive_with_sender()
    assert msg == ("echo", ("hello", 1))
    # The reply came from B's process, named as A names it; B saw A's pid as
    # a remote pid it could reply to.
    assert sender == remote(b, server) and sender.node == b.node_id != 0
    assert a.nodes() == [b.node_name] and b.nodes() == [a.node_name]


def test_receiver_sees_a_remote_sender_pid(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    seen = Probe(b)
    origin = Probe(a)
    origin.ctx.send(seen.gpid, "who am i")
    msg, sender = seen.receive_with_sender()
    assert msg == "who am i"
    assert sender == origin.gpid, "the sender is A's process, as B names it"
    assert sender.node == a.node_id and sender.creation == a.creation
    assert b.node_of(sender) == a.node_name
    # B replies to exactly that pid, and it reaches the same process.
    seen.ctx.send(sender, "you are")
    assert origin.receive_with_sender() == ("you are", seen.gpid)


def test_system_send_from_plain_code(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    seen = Probe(b)
    a.system.send(seen.gpid, ("plain", 1))
    assert seen.receive_with_sender() == (("plain", 1), None), "plain code has no pid: no sender"
    a.system.send(seen.gpid, ("plain", 2), sender=None)
    assert seen.receive_with_sender() == (("plain", 2), None)


def test_send_to_a_registered_name_on_a_node(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    server = b.spawn_fn(echo, name="echo").pid
    seen = Probe(b, name="seen")
    inbox = Probe(a)

    inbox.ctx.send(("echo", "b"), "by name")
    assert inbox.receive_with_sender() == (("echo", "by name"), remote(b, server))
    a.system.send(("seen", "b"), "from plain code")
    assert seen.receive_with_sender() == ("from plain code", None)
    # A name nobody holds there: dropped, as in Erlang; the link carries on.
    inbox.ctx.send(("nobody", "b"), "lost")
    inbox.ctx.send(("seen", "b"), "after")
    assert seen.receive_with_sender() == ("after", inbox.gpid)
    # (name, this node) is a local send.
    local = Probe(a, name="local")
    a.system.send(("local", "a"), "here")
    assert local.receive() == "here"


@serializable("joerl.tests::Envelope")
@dataclass(frozen=True)
class Envelope:
    reply_to: Pid
    copies: list
    tag: Ref
    note: str = ""


def test_pids_inside_messages_name_the_same_process_on_every_node(cluster: list[DistributedSystem]) -> None:
    """A sends its pid (nested, and inside a @serializable record) to B; B
    forwards it to C; C replies directly to A."""
    a, b, c = cluster
    origin = Probe(a)
    seen_on_b: list[Any] = []

    def forwarder(ctx: ActorContext) -> None:
        msg = ctx.receive()
        seen_on_b.append((msg, ctx.sender))
        ctx.send(("responder", "c"), msg)

    def responder(ctx: ActorContext) -> None:
        msg = ctx.receive()
        pids = [msg["env"].reply_to, msg["list"][0], msg["list"][1][0], msg["dict"]["k"], *msg["env"].copies]
        ctx.send(msg["env"].reply_to, ("from_c", pids, msg["env"].tag, msg["env"].note, ctx.sender))

    fwd = b.spawn_fn(forwarder).pid
    resp = c.spawn_fn(responder, name="responder").pid
    tag = a.system.make_ref()
    me = origin.pid
    message = {
        "env": Envelope(reply_to=me, copies=[me, me], tag=tag, note="nested"),
        "list": [me, (me, 1)],
        "dict": {"k": me},
    }
    origin.ctx.send(remote(b, fwd), message)

    reply, sender = origin.receive_with_sender("from_c")
    _, pids, back_tag, note, c_saw_sender = reply
    # Back home, every copy is A's own local pid again, and the ref A's own ref.
    assert pids == [me] * 6 and all(p.node == 0 for p in pids)
    assert back_tag == tag and note == "nested"
    # C saw B's forwarder as the sender; A sees C's responder: C replied directly.
    assert c_saw_sender == remote(b, fwd)
    assert sender == remote(c, resp)
    assert c.node_name in a.nodes() and a.node_name in c.nodes()
    # On B every pid was A's global pid: node 0 never leaked.
    ((got, b_sender),) = seen_on_b
    assert got["env"].reply_to == origin.gpid and got["env"].copies == [origin.gpid] * 2
    assert got["list"][0] == origin.gpid and got["dict"]["k"] == origin.gpid
    assert got["env"].tag.node == a.node_id and got["env"].tag.creation == a.creation
    assert b_sender == origin.gpid


def test_node_zero_never_leaks_to_other_nodes(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    seen = Probe(b)
    origin = Probe(a)
    a.system.send(seen.gpid, ("pid", origin.pid, [origin.pid], {"p": origin.pid}), sender=origin.pid)
    msg, sender = seen.receive_with_sender()
    found = [sender, msg[1], *msg[2], msg[3]["p"]]
    assert all(p.node == a.node_id and p.creation == a.creation and p.id == origin.pid.id for p in found), found


def test_timers_to_a_node_not_linked_yet_arrive_in_order(cluster: list[DistributedSystem]) -> None:
    """send_after fires in the hub, which cannot dial: the messages still keep their order."""
    a, _, c = cluster
    inbox = Probe(a)
    server = remote(c, c.spawn_fn(echo).pid)
    for i in range(10):
        a.system.send_after(0.02, server, ("tick", i), sender=inbox.pid)
    assert [inbox.receive() for _ in range(10)] == [("echo", ("tick", i)) for i in range(10)]


def test_an_unserializable_message_raises_at_the_sender(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    seen = Probe(b)
    with pytest.raises(NotSerializable, match="lambda|function"):
        a.system.send(seen.gpid, ("fn", lambda: 1))
    a.system.send(seen.gpid, "fine")
    assert seen.receive() == "fine"
    assert seen.pending() == []


# -- volume ------------------------------------------------------------------------------------


def test_100k_messages_a_to_b_none_lost_in_order(cluster: list[DistributedSystem]) -> None:
    """Printed beside the same traffic between two processes of one node (the baseline)."""
    a, b, _ = cluster
    n = 100_000

    def run(to_node: DistributedSystem) -> dict[str, Any]:
        done = Event()
        result: dict[str, Any] = {}

        def sink(ctx: ActorContext) -> None:
            expected = 0
            in_order = True
            while expected < n:
                m = ctx.receive()
                in_order = in_order and m == expected
                expected += 1
            result.update(received=expected, in_order=in_order, t=time.perf_counter())
            done.set()

        def source(ctx: ActorContext, to: Pid) -> None:
            result["t0"] = time.perf_counter()
            for i in range(n):
                ctx.send(to, i)

        sink_pid = to_node.spawn_fn(sink).pid
        a.spawn_fn(source, sink_pid if to_node is a else remote(to_node, sink_pid))
        assert done.wait(60), f"only part of the messages arrived: {to_node.stats}"
        result["seconds"] = result["t"] - result["t0"]
        return result

    local = run(a)
    a.connect_to_node("b")  # time the traffic, not the handshake
    result = run(b)
    print(
        f"\n100k messages node a -> node b (one OS process, loopback): {result['seconds']:.2f} s = "
        f"{n / result['seconds']:,.0f} msg/s; baseline, two processes of node a: {n / local['seconds']:,.0f} msg/s"
    )
    assert result["received"] == n and result["in_order"]
    assert b.stats.received == n and a.stats.sent == n


def test_plain_terms_and_other_messages_keep_their_order_and_types(cluster: list[DistributedSystem]) -> None:
    """Plain terms skip the codec and share frames; everything else takes the
    codec. Interleaved, they arrive in order, each exactly as sent, with its sender."""
    a, b, _ = cluster
    inbox = Probe(b)
    to = inbox.gpid
    big = b"z" * (P.MAX_TERMS_BYTES + 1)  # a plain term too big for SEND_TERMS: SEND
    msgs: list[Any] = []
    for i in range(300):
        msgs += [("ping", i), i, [i], {"i": i}, (i, [i]), "s", b"b", 1.5, True, None, (), -(2**63), 2**64 - 1]
    msgs += [2**70, ("pid", Pid(0, 1, 0)), big, ("after", "big")]
    a.connect_to_node("b")  # (messages sent while a link comes up wait as SEND frames)

    def source(ctx: ActorContext) -> None:
        for m in msgs:
            ctx.send(to, m)

    src = a.spawn_fn(source).pid
    got = [inbox.receive_with_sender() for _ in msgs]
    assert [m for m, _ in got[:-3]] == msgs[:-3] and [type(m) for m, _ in got] == [type(m) for m in msgs]
    assert got[-3][0] == ("pid", remote(a, Pid(0, 1, 0)))  # a pid inside: the codec maps it
    assert got[-2][0] == big and got[-1][0] == ("after", "big")
    assert {s for _, s in got} == {remote(a, src)}
    conn = link(a, "b")
    assert conn.stats.frames_out < len(msgs)  # bursts of plain terms shared frames


def test_messages_sent_while_the_link_comes_up_arrive_in_order_and_share_frames(
    cluster: list[DistributedSystem],
) -> None:
    a, b, _ = cluster
    inbox = Probe(b)
    to = inbox.gpid
    n = 2000

    def source(ctx: ActorContext) -> None:
        for i in range(n):
            ctx.send(to, ("n", i))  # the first send starts the dial; the rest queue behind it

    a.spawn_fn(source)
    assert [inbox.receive() for _ in range(n)] == [("n", i) for i in range(n)]
    assert link(a, "b").stats.frames_out < n // 10


def test_a_1_mib_message(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    server = remote(b, b.spawn_fn(echo).pid)
    inbox = Probe(a)
    blob = os.urandom(1 << 20)
    text = "x" * (1 << 20)
    t0 = time.perf_counter()
    inbox.ctx.send(server, (blob, text))
    assert inbox.receive() == ("echo", (blob, text))
    print(f"\n2 x 1 MiB there and back: {(time.perf_counter() - t0) * 1000:.0f} ms")


# -- bad peers and bad payloads ------------------------------------------------------------------


def test_wrong_cookie_is_refused_on_both_sides_and_nothing_passes(
    cluster: list[DistributedSystem], make_node: Callable[..., DistributedSystem], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="joerl")
    a, b, _ = cluster
    target = Probe(b, name="target")
    intruder = make_node("intruder", cookie="not-the-cookie")
    mole = Probe(intruder)

    for i in range(20):
        mole.ctx.send(target.gpid, ("smuggled", i))
        mole.ctx.send(("target", "b"), ("smuggled by name", i))
    wait_until(lambda: intruder.stats.connect_failures >= 1, timeout=WAIT, what="the intruder's dial to fail")
    with pytest.raises(NodeUnreachable, match="cookie") as info:
        intruder.connect_to_node("b")
    assert info.value.node == b.node_name
    assert intruder.nodes() == [] and full("intruder") not in b.nodes()
    assert intruder.stats.dropped_unreachable >= 20

    # A marker from a node with the right cookie is the first thing the target gets.
    a.system.send(target.gpid, "marker")
    assert target.receive() == "marker"
    assert target.pending() == []
    assert b.stats.received == 1
    failures = [
        r
        for r in caplog.records
        if isinstance(r.args, tuple) and any(isinstance(x, AuthenticationError) for x in r.args)
    ]
    assert {r.args[0] for r in failures if isinstance(r.args, tuple)} == {full("intruder"), full("b")}, (
        "both sides log an authentication failure"
    )
    text = caplog.text
    assert f"node {full('intruder')} refused the link with node {full('b')!r}" in text
    assert "cookie does not match" in text and "failed the cookie challenge" in text
    assert f"node {full('b')} refused the link with {full('intruder')!r}" in text


def test_an_undecodable_payload_is_logged_counted_dropped_and_the_link_survives(
    cluster: list[DistributedSystem], make_node: Callable[..., DistributedSystem], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="joerl")
    _, b, _ = cluster
    registry = MessageRegistry(fallback=default_registry())

    @serializable("joerl.tests::OnlyOnSender", registry=registry)
    @dataclass(frozen=True)
    class OnlyOnSender:
        value: int

    sender = make_node("sender", registry=registry)
    target = Probe(b)
    origin = Probe(sender)
    origin.ctx.send(target.gpid, "before")
    assert target.receive() == "before"
    live = link(b, "sender")

    origin.ctx.send(target.gpid, OnlyOnSender(1))
    origin.ctx.send(target.gpid, ("nested", [OnlyOnSender(2)]))
    origin.ctx.send(target.gpid, "after")
    assert target.receive() == "after", "the link survived and nothing else was delivered first"
    assert target.pending() == []
    assert link(b, "sender") is live
    assert b.stats.bad_payloads == 2
    assert live.stats.bad_frames == 2
    assert "joerl.tests::OnlyOnSender" in caplog.text


# -- links between nodes ------------------------------------------------------------------------------


@pytest.mark.parametrize("rounds", [int(os.environ.get("JOERL_TEST_ROUNDS", "15"))])
def test_both_nodes_dialling_at_once_make_one_link(cluster: list[DistributedSystem], rounds: int) -> None:
    a, b, _ = cluster
    on_a, on_b = Probe(a), Probe(b)
    per_round = 5
    collided = 0
    for r in range(rounds):
        start = Event()

        def blast(inbox: Probe, to: Pid) -> None:
            start.wait()
            for i in range(per_round):
                inbox.ctx.send(to, (r, i))

        g1 = gevent.spawn(blast, on_a, on_b.gpid)
        g2 = gevent.spawn(blast, on_b, on_a.gpid)
        gevent.sleep(0)  # both greenlets are parked on the event: release them together
        start.set()
        gevent.joinall([g1, g2], timeout=WAIT, raise_error=True)
        for inbox, other in ((on_a, on_b), (on_b, on_a)):
            got = [inbox.receive_with_sender() for _ in range(per_round)]
            assert got == [((r, i), other.gpid) for i in range(per_round)], f"round {r}"
        assert a.nodes() == [b.node_name] and b.nodes() == [a.node_name]
        la, lb = a._peers["b"].conn, b._peers["a"].conn
        assert la is not None and lb is not None
        collided += la.status == "ok_simultaneous"
        # One TCP connection: each side's link is the other end of the other's.
        assert la.sock.getsockname() == lb.sock.getpeername() and la.sock.getpeername() == lb.sock.getsockname()
        # And no other connection between the two is left open.
        wait_until(lambda: len(open_sockets(a, b, connected=True)) == 2, what="only the link's two sockets")
        # The losing dial may still be on its way (refused busy, or nok), even
        # though messages already flow on the winner; let it end before the
        # next round, or it could link the two again after the close below.
        wait_until(lambda: a._peers["b"].connecting is None and b._peers["a"].connecting is None, what="dials to end")
        la.close("next round")
        wait_until(lambda: a._peers["b"].link is None and b._peers["a"].link is None, what="the link to go")
    assert on_a.pending() == [] and on_b.pending() == []
    print(f"\n{rounds} rounds of simultaneous sends: {collided} had both dials meet (the tie-break decided)")
    assert collided >= 1, "the dials never met: the test did not test the tie-break"


def test_crossed_dials_lose_no_queued_message(make_node: Callable[..., DistributedSystem]) -> None:
    """The dial of ``a`` stalls in its handshake (``b`` stops accepting) while
    ``b`` dials ``a`` and wins the tie-break ("b" > "a"): what ``a`` queued for
    ``b`` meanwhile goes out on ``b``'s link at once, and when the doomed dial
    fails at its deadline nothing on the live link is failed with it."""
    config = LinkConfig(handshake_timeout=1.0)
    a, b = make_node("xa", link_config=config), make_node("xb", link_config=config)
    in_a, in_b = Probe(a, name="inbox"), Probe(b, name="inbox")
    b._server.stop_accepting()  # the kernel's backlog takes a's dial; nobody answers it
    in_a.ctx.send(("inbox", "xb"), "from a")
    wait_until(lambda: a._peers["xb"].handshaking, what="a's dial to be in flight")
    in_b.ctx.send(("inbox", "xa"), "from b")
    assert in_a.receive() == "from b"
    assert in_b.receive(timeout=0.9) == "from a", "delivered on the winning link, not after a's dial gave up"
    ref = in_a.ctx.monitor(in_b.gpid)
    wait_until(lambda: a._peers["xb"].connecting is None, timeout=3.0, what="a's doomed dial to end")
    assert a.nodes() == [full(full("xb"))] and a.stats.connect_failures == 0
    in_b.ctx.send(in_a.gpid, "still linked")
    assert in_a.receive() == "still linked"
    assert in_a.pending() == [], "the monitor over the live link did not fire"
    b.system.stop(in_b.pid, "bye")
    assert in_a.receive(Down) == Down(ref, in_b.gpid, "bye")


def _dial_as(port: int, target: str, identity: P.NodeIdentity, cookie: bytes) -> Connection:
    """Dial a node's listener and run the handshake as ``identity`` (another
    node's name, creation or cookie); the link is not started: nothing reads it.

    Raises:
        HandshakeError: as :func:`joerl.node.link_setup.dial`.
    """
    return dial(("127.0.0.1", port), identity, cookie, expected_peer=target, config=LinkConfig(handshake_timeout=5.0))


def test_an_unauthenticated_hello_cannot_tear_down_a_live_link(cluster: list[DistributedSystem]) -> None:
    """A stranger claiming to be a restarted ``b`` (another creation) without
    the cookie is refused, and a's link to the real ``b`` stays up."""
    a, b, _ = cluster
    with link_stays_up(a, b):
        impostor = P.NodeIdentity(b.node_name, b.node_id, b.creation + 1)
        with pytest.raises(AuthenticationError):
            _dial_as(a.listen_port, a.node_name, impostor, b"not-the-cookie")


def test_a_new_incarnation_replaces_a_link_that_still_looks_alive(cluster: list[DistributedSystem]) -> None:
    """A node that restarted before the old link was seen to drop (another
    creation, the right cookie): once it has authenticated, the old link is
    closed (everything across it fires noconnection) and the new one is used."""
    a, b, _ = cluster
    watch = Probe(a, trap_exit=True)
    a.monitor_nodes(watch.pid)
    victim = Probe(b)
    ref = watch.ctx.monitor(victim.gpid)
    assert a.is_process_alive(victim.gpid)
    old = link(a, "b")
    reborn = P.NodeIdentity(b.node_name, b.node_id, b.creation + 1)
    conn = _dial_as(a.listen_port, a.node_name, reborn, COOKIE.encode())
    try:
        assert watch.receive() == NodeUp(full("b"))
        assert watch.receive(Down) == Down(ref, victim.gpid, NOCONNECTION)
        assert watch.receive(NodeDown) == NodeDown(full("b"), NOCONNECTION)
        assert watch.receive(NodeUp) == NodeUp(full("b"))
        assert old.closed
        new = link(a, "b")
        assert new is not old and new.peer.creation == b.creation + 1
    finally:
        conn.close()
    assert watch.receive(NodeDown) == NodeDown(full("b"), NOCONNECTION)


def test_a_dial_refused_busy_by_a_link_the_peer_has_not_seen_drop_is_retried(
    cluster: list[DistributedSystem],
) -> None:
    """The peer still holds the old link (frozen, it has not read the close
    yet), so it answers a new dial "busy": the dialler tries again, backing
    off, and the message sent meanwhile arrives once the old link is gone."""
    a, b, _ = cluster
    inbox = Probe(b)
    a.system.send(inbox.gpid, 1)
    assert inbox.receive() == 1
    stale = link(b, "a")
    assert stale._reader is not None
    stale._reader.kill()  # b no longer reads that link: it will not see it drop by itself
    link(a, "b").close("test")
    wait_until(lambda: full("b") not in a.nodes(), what="a's link closed")
    refusals = a.stats.connect_failures
    gevent.spawn_later(0.3, stale.close, "seen late")  # the frozen peer wakes up (not a synchronisation)
    a.system.send(inbox.gpid, 2)
    assert inbox.receive(timeout=10) == 2
    assert a.stats.connect_failures == refusals  # retried within one dial, nothing dropped
    assert link(a, "b") is not None and link(b, "a") is not stale


# -- liveness and discovery -----------------------------------------------------------------------------


def test_is_process_alive_is_a_round_trip(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    victim = Probe(b)
    assert a.is_process_alive(victim.gpid) is True
    assert a.system.is_process_alive(victim.gpid) is True
    b.system.stop(victim.pid)
    assert a.is_process_alive(victim.gpid) is False
    assert a.is_process_alive(Pid(b.node_id, 10_000, b.creation)) is False
    assert a.is_process_alive(Pid(b.node_id, victim.pid.id, b.creation + 1)) is False, "another incarnation's pid"
    assert a.is_process_alive(Pid(node_id_of("ghost"), 1, 1)) is False, "a node nobody knows"


def test_is_process_alive_on_an_unreachable_node_answers_at_once(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    with pytest.raises(NodeUnreachable):
        a.connect_to_node("gone")  # known to this node now, and waiting for its backoff
    t0 = time.monotonic()
    assert a.is_process_alive(Pid(node_id_of("gone"), 1, 1)) is False
    assert time.monotonic() - t0 < 1.0, "not after the 5 s timeout"
    old = Pid(b.node_id, 1, b.creation)
    b.shutdown()
    t0 = time.monotonic()
    assert a.is_process_alive(old) is False
    assert time.monotonic() - t0 < 1.0


def test_nodes_and_list_nodes(cluster: list[DistributedSystem]) -> None:
    a, b, c = cluster
    assert sorted(info.name for info in a.list_nodes()) == [full(full("a")), full(full("b")), full(full("c"))]
    assert a.nodes() == [] and b.nodes() == [] and c.nodes() == []
    assert a.connect_to_node("b") is True
    assert a.nodes() == [full("b")]
    wait_until(lambda: b.nodes() == [full("a")], what="b to list a")
    on_a = Probe(a)
    c.system.send(on_a.gpid, "hi")
    assert on_a.receive() == "hi"
    assert a.nodes() == [full("b"), full("c")] and c.nodes() == [full("a")]
    assert a.connect_to_node("a") is True and full("a") not in a.nodes()


def test_a_second_node_with_a_taken_name_is_refused(
    cluster: list[DistributedSystem], make_node: Callable[..., DistributedSystem]
) -> None:
    with pytest.raises(DistributionError, match="'a@.*' is already registered"):
        make_node("a")
    assert cluster[0].list_nodes()  # the port mapper and node a are fine


def test_a_node_with_a_link_config_and_a_tick_time(
    cluster: list[DistributedSystem], make_node: Callable[..., DistributedSystem]
) -> None:
    node = make_node("configured", link_config=LinkConfig(handshake_timeout=3.0), tick_time=2.0)
    assert node.connect_to_node("a")
    conn = node._peers["a"].conn
    assert conn is not None and conn.config.tick_time == 2.0 and conn.config.handshake_timeout == 3.0
    assert conn.tick_interval == 0.5, "a quarter of the smaller tick time of both sides"


def test_connect_to_an_unknown_node_raises_node_unreachable(cluster: list[DistributedSystem]) -> None:
    a = cluster[0]
    t0 = time.monotonic()
    with pytest.raises(NodeUnreachable, match="not registered") as info:
        a.connect_to_node("nosuchnode")
    assert info.value.node == full("nosuchnode")
    assert str(info.value).count("unreachable") == 1, str(info.value)
    assert time.monotonic() - t0 < 2.0
    assert a.nodes() == []


def test_a_closed_link_reconnects_on_the_next_send(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    seen = Probe(b)
    a.system.send(seen.gpid, 1)
    assert seen.receive() == 1
    old = link(a, "b")
    old.close("test")
    wait_until(lambda: b.nodes() == [], what="b to see the link go")
    assert a.nodes() == []
    a.system.send(seen.gpid, 2)
    assert seen.receive() == 2
    assert a.nodes() == [full("b")] and link(a, "b") is not old
    assert a.stats.connects == 2


def test_a_restarted_node_refuses_old_pids_and_is_reached_at_new_ones(
    cluster: list[DistributedSystem], make_node: Callable[..., DistributedSystem]
) -> None:
    a, b1, _ = cluster
    inbox = Probe(a)
    a.monitor_nodes(inbox.pid)
    old = remote(b1, b1.spawn_fn(echo, name="echo").pid)
    inbox.ctx.send(old, "to b1")
    assert inbox.receive("echo") == ("echo", "to b1")
    assert inbox.receive(NodeUp) == NodeUp(full("b"))

    b1.shutdown()
    assert inbox.receive(NodeDown) == NodeDown(full("b"), "noconnection")
    b2 = make_node("b")
    assert b2.creation != b1.creation
    new = remote(b2, b2.spawn_fn(echo, name="echo").pid)
    assert new.id == old.id, "the same id lives again on the new incarnation"

    # The lost link comes back on the next send; the old pid reaches nothing.
    inbox.ctx.send(old, "to the old pid")
    inbox.ctx.send(new, "to the new pid")
    msg, sender = inbox.receive_with_sender("echo")
    assert msg == ("echo", "to the new pid"), "the old pid's message was never delivered"
    assert sender == new
    assert b2.stats.dropped_stale == 1, "the new incarnation refused the message for the old pid"
    inbox.ctx.send(old, "again")  # now A knows the new creation: dropped before it leaves
    assert a.stats.dropped_stale == 1
    assert inbox.receive(NodeUp) == NodeUp(full("b"))
    assert a.nodes() == [full("b")]
    assert a.is_process_alive(old) is False and a.is_process_alive(new) is True
    ref = inbox.ctx.monitor(old)
    assert inbox.receive(Down) == Down(ref, old, NOPROC)
    inbox.ctx.send(("echo", "b"), "by name")
    assert inbox.receive("echo") == ("echo", "by name")
    assert inbox.pending() == []
