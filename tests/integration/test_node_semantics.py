"""OTP semantics across nodes: noproc, From as plain data, failed requests, remote spawn_link, exception reasons.

* A link or monitor of a remote pid that is gone is answered ``noproc`` as
  soon as its node answers; one of a pid of an earlier incarnation of this
  very node (a restarted node handed its old pids) at once, without a round
  trip. (A pid of a node the port mapper does not know gets
  ``noconnection``: tests/integration/test_node_links.py.)
* ``From`` is plain data: a server hands it to a process of another node,
  which replies from there (three nodes, both a local and a remote call).
* A call whose request cannot be serialized raises at once and leaves
  nothing behind, a thousand times over.
* ``spawn_remote(..., link=True)`` is atomic: a caller killed while the spawn
  is in flight still takes its child down; one that gives up abandons it.
* An exception that ends a process is an ``ExceptionReason`` at other nodes
  (in ``Down``, ``Exit`` and ``CallError.reason``), the exception itself locally.
* :class:`~joerl.node.routing.Routing` conforms to the seam's ``Router`` (and
  the runtime's ``NodeInbound`` to ``Inbound``).
"""

from __future__ import annotations

import inspect
from typing import Any

import gevent
import pytest
from gevent.event import AsyncResult, Event
from test_node import WAIT, cluster, echo, make_node, no_leaks, remote  # noqa: F401 - fixtures

from joerl import gen_server
from joerl._gen import From
from joerl._router import Inbound, Router
from joerl._signals import NodeInbound
from joerl.actor import Actor, ActorContext
from joerl.errors import CallError, CallTimeout, DistributionError, NoProcError, NotSerializable
from joerl.gen_server import GenServer, NoReply, Reply
from joerl.message import KILLED, NOPROC, Down, ExceptionReason, Exit, format_reason
from joerl.node.node import DistributedSystem
from joerl.node.routing import MAX_REASON_TEXT, Routing
from joerl.node.spawn import ABANDONED
from joerl.pid import Pid
from joerl.testing import Probe, wait_until

# -- noproc ----------------------------------------------------------------------------------------


def test_a_non_trapping_process_linking_to_a_gone_remote_pid_dies_of_noproc(
    cluster: list[DistributedSystem],
) -> None:
    a, b, _ = cluster
    watch = Probe(a)
    gone = b.spawn_fn(echo).pid
    b.system.stop(gone)
    linked = Event()

    def body(ctx: ActorContext) -> None:
        ctx.link(remote(b, gone))
        linked.set()
        ctx.receive()

    pid = a.spawn_fn(body).pid
    ref = watch.ctx.monitor(pid)
    assert linked.wait(WAIT)
    assert watch.receive(Down) == Down(ref, pid, NOPROC)


def test_a_restarted_node_answers_noproc_for_the_pids_of_its_earlier_incarnation(
    cluster: list[DistributedSystem], make_node: Any
) -> None:
    a = cluster[0]
    d1 = make_node("d")
    old = remote(d1, d1.spawn_fn(echo).pid)
    d1.shutdown()
    d = make_node("d")
    assert d.creation != d1.creation and old.node == d.node_id

    # A peer hands the restarted node its old pid (as global names or stored state would).
    trapper = Probe(d, trap_exit=True)
    Probe(a).ctx.send(trapper.gpid, ("yours", old))
    handed = trapper.receive("yours")[1]
    assert handed == old and handed.node == d.node_id and handed.creation == d1.creation

    ref = trapper.ctx.monitor(handed)
    assert trapper.receive(Down) == Down(ref, handed, NOPROC)
    trapper.ctx.link(handed)
    assert trapper.receive(Exit) == Exit(handed, NOPROC)

    # Without trap_exit the link kills the caller: through a noproc exit signal
    # (the node's answer), or the NoProcError of a link to a gone local process
    # (the runtime's, where it knows the pid as one of its own node's).
    watch = Probe(d)
    tried = Event()

    def body(ctx: ActorContext) -> None:
        try:
            ctx.link(handed)
        finally:
            tried.set()
        ctx.receive()

    pid = d.spawn_fn(body).pid
    mref = watch.ctx.monitor(pid)
    assert tried.wait(WAIT)
    down = watch.receive(Down)
    assert (down.ref, down.pid) == (mref, pid)
    assert down.reason == NOPROC or isinstance(down.reason, NoProcError), down.reason

    # Messages to it are dropped and counted; calls and liveness answer at once.
    stale = d.stats.dropped_stale
    trapper.ctx.send(handed, "hello")
    assert d.stats.dropped_stale == stale + 1
    with pytest.raises(CallError) as info:
        d.system.call(handed, "q", timeout=WAIT)
    assert info.value.reason == NOPROC
    assert d.is_process_alive(handed) is False
    assert len(d._routing.pending) == 0
    assert trapper.pending() == [] and watch.pending() == []


# -- From is plain data ------------------------------------------------------------------------------


class Broker(GenServer):
    """Hands every call's ``From`` to ``helper`` (a process anywhere) and answers nothing itself."""

    def __init__(self, helper: Pid) -> None:
        self.helper = helper

    def init(self, args: Any) -> Any:
        return None

    def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        self.ctx.send(self.helper, ("answer", from_, request))
        return NoReply()


def answerer(ctx: ActorContext, here: str) -> None:
    """Replies to the ``From`` it is handed, from its own node; ``"hold"`` waits for ``"release"``."""
    held: list[Any] = []
    while True:
        msg = ctx.receive()
        if msg == "release":
            for from_ in held:
                gen_server.reply(ctx, From(*from_), "late")
            continue
        _, from_, request = msg
        if request == "hold":
            held.append(from_)
        else:
            gen_server.reply(ctx, From(*from_), ("answered", request, here))


def start_broker(node: DistributedSystem, helper: Pid) -> Pid:
    return gen_server.start(node.system, Broker(helper)).pid


def test_a_local_call_is_answered_from_another_node(cluster: list[DistributedSystem]) -> None:
    """The server is local to the caller; the reply comes from a node the server handed From to."""
    a, b, _ = cluster
    helper = remote(b, b.spawn_fn(answerer, "b").pid)
    broker = start_broker(a, helper)
    assert a.system.call(broker, "from plain code", timeout=WAIT) == ("answered", "from plain code", "b")
    caller = Probe(a)
    assert caller.ctx.call(broker, "from a process", timeout=WAIT) == ("answered", "from a process", "b")
    assert len(a.system._calls) == 0 and len(a._routing.pending) == 0


def test_a_remote_call_is_answered_from_a_third_node(cluster: list[DistributedSystem]) -> None:
    """A calls B's server, which hands From to C: C's reply reaches A's caller."""
    a, b, c = cluster
    helper = remote(c, c.spawn_fn(answerer, "c").pid)
    broker = remote(b, start_broker(b, helper))
    assert a.system.call(broker, "q", timeout=WAIT) == ("answered", "q", "c")
    caller = Probe(a)
    assert caller.ctx.call(broker, "r", timeout=WAIT) == ("answered", "r", "c")
    # And a local call on C whose server is on B, answered from A.
    helper_a = remote(a, a.spawn_fn(answerer, "a").pid)
    broker_b = remote(b, start_broker(b, helper_a))
    assert c.system.call(broker_b, "s", timeout=WAIT) == ("answered", "s", "a")
    assert len(a._routing.pending) == 0 and len(c._routing.pending) == 0


def test_a_reply_from_another_node_after_the_call_timed_out_is_counted_and_dropped(
    cluster: list[DistributedSystem],
) -> None:
    a, b, _ = cluster
    helper = remote(b, b.spawn_fn(answerer, "b").pid)
    broker = start_broker(a, helper)
    with pytest.raises(CallTimeout):
        a.system.call(broker, "hold", timeout=0.5)
    Probe(a).ctx.send(helper, "release")
    wait_until(lambda: a.stats.extra.get("late_replies") == 1, timeout=WAIT, what="the late reply to be counted")
    assert len(a.system._calls) == 0


# -- a request that cannot be serialized -------------------------------------------------------------


class Echo(GenServer):
    def init(self, args: Any) -> Any:
        return None

    def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        return Reply(request)


def test_an_unserializable_call_raises_at_once_and_leaves_nothing_pending(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    local = gen_server.start(b.system, Echo(), name="echo").pid
    server = remote(b, local)
    caller = Probe(a)
    assert caller.ctx.call(server, "warm up", timeout=WAIT) == "warm up"
    peer = a._peers["b"]
    sent = a.stats.sent
    for i in range(1000):
        with pytest.raises(NotSerializable):
            caller.ctx.call(server, ("bad", i, object()), timeout=WAIT)
        with pytest.raises(NotSerializable):
            a.system.call(("echo", "b"), ("bad", i, object()), timeout=WAIT)
    assert a.stats.sent == sent, "no request left"
    assert len(a._routing.pending) == 0 and peer.calls == set()
    assert len(a.system._calls) == 0
    ctx = b.system.context_of(local)
    assert ctx is not None
    # (The warm-up call's Demonitor follows its reply: wait for it to land.)
    wait_until(lambda: not ctx._monitored_by, timeout=WAIT, what="no monitor of the server left")
    assert caller.ctx.call(server, "still fine", timeout=WAIT) == "still fine"
    assert caller.pending() == []


# -- remote spawn_link is atomic ----------------------------------------------------------------------


class Child(Actor):
    """Records how it ends (and, trapping exits, the Exit it receives)."""

    def __init__(self, trap: bool, ended: AsyncResult) -> None:
        self.trap = trap
        self.ended = ended

    def started(self, ctx: ActorContext) -> None:
        ctx.trap_exit(self.trap)

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if isinstance(msg, Exit):
            self.ended.set(("trapped", msg))

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        self.ended.set(("ended", reason))


def gated_factory(node: DistributedSystem, trap: bool) -> tuple[Event, Event, AsyncResult]:
    """Register "gated" on ``node``: it tells when a request arrived and spawns only once the gate opens."""
    entered, gate, ended = Event(), Event(), AsyncResult()

    def factory() -> Child:
        entered.set()
        assert gate.wait(WAIT), "the test never opened the gate"
        return Child(trap, ended)

    node.register_factory("gated", factory)
    return entered, gate, ended


@pytest.mark.parametrize(("reason", "ended_with"), [("kill", KILLED), (("gone", 1), ("gone", 1))])
@pytest.mark.parametrize("trap", [False, True])
def test_a_caller_killed_while_spawn_link_is_in_flight_takes_the_child_down(
    cluster: list[DistributedSystem], reason: Any, ended_with: Any, trap: bool
) -> None:
    a, b, _ = cluster
    entered, gate, ended = gated_factory(b, trap)
    returned: list[Any] = []

    def caller_body(ctx: ActorContext) -> None:
        returned.append(a.spawn_remote("b", "gated", link=True, caller=ctx, timeout=WAIT * 2))

    caller = a.spawn_fn(caller_body).pid
    watch = Probe(a)
    ref = watch.ctx.monitor(caller)
    assert entered.wait(WAIT), "the request reached b"
    a.system.exit(caller, reason)  # right after it sent the request: the reply is not read yet
    assert watch.receive(Down) == Down(ref, caller, ended_with)
    gate.set()
    outcome = ended.get(timeout=WAIT)
    if trap:
        assert outcome == ("trapped", Exit(remote(a, caller), ended_with))
    else:
        assert outcome == ("ended", ended_with)
    assert returned == []
    wait_until(lambda: a._spawner.in_flight == 0, timeout=WAIT, what="the spawn's bookkeeping to go")


def test_a_caller_killed_after_the_reply_is_read_takes_the_child_down_through_its_link(
    cluster: list[DistributedSystem],
) -> None:
    a, b, _ = cluster
    entered, gate, ended = gated_factory(b, False)
    gate.set()
    caller = Probe(a)
    a.spawn_remote("b", "gated", link=True, caller=caller.pid, timeout=WAIT)
    assert a._spawner.in_flight == 0
    a.system.exit(caller.pid, "kill")
    assert ended.get(timeout=WAIT) == ("ended", KILLED)


def test_a_caller_that_dies_unwatched_before_the_reply_gives_the_child_noproc_or_its_reason(
    cluster: list[DistributedSystem],
) -> None:
    """``caller=`` names another process, which dies while plain code waits."""
    a, b, _ = cluster
    entered, gate, ended = gated_factory(b, False)
    linked_to = Probe(a)
    result: AsyncResult = AsyncResult()
    g = gevent.spawn(lambda: result.set(a.spawn_remote("b", "gated", link=True, caller=linked_to.pid, timeout=WAIT)))
    assert entered.wait(WAIT)
    linked_to.stop("bye")
    gate.set()
    child = result.get(timeout=WAIT)
    assert isinstance(child, Pid)
    assert ended.get(timeout=WAIT) == ("ended", "bye")
    g.join(WAIT)


def test_a_spawn_link_given_up_on_is_abandoned(cluster: list[DistributedSystem]) -> None:
    """No answer in time: the caller lives on unlinked, the child gets ``abandoned`` (Erlang's)."""
    a, b, _ = cluster
    entered, gate, ended = gated_factory(b, False)
    caller = Probe(a)
    with pytest.raises(DistributionError, match="no answer within"):
        a.spawn_remote("b", "gated", link=True, caller=caller.ctx, timeout=0.5)
    assert entered.is_set()
    gate.set()
    assert ended.get(timeout=WAIT) == ("ended", ABANDONED)
    wait_until(lambda: a._spawner.in_flight == 0, timeout=WAIT, what="the spawn's bookkeeping to go")
    ctx = a.system.context_of(caller.pid)
    assert ctx is not None and not ctx._links
    caller.expect_nothing(0.1)


def test_a_spawn_monitor_whose_caller_died_leaves_no_monitor_behind(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    entered, gate, ended = gated_factory(b, False)

    def caller_body(ctx: ActorContext) -> None:
        a.spawn_remote("b", "gated", monitor=True, caller=ctx, timeout=WAIT * 2)

    caller = a.spawn_fn(caller_body).pid
    assert entered.wait(WAIT)
    a.system.exit(caller, "kill")
    assert a.system.join(caller, WAIT)
    gate.set()
    wait_until(lambda: a._spawner.in_flight == 0, timeout=WAIT, what="the reply to be read")
    children = [p for p in b.system.processes() if isinstance(getattr(b.system.context_of(p), "_actor", None), Child)]
    assert len(children) == 1
    child = b.system.context_of(children[0])
    assert child is not None
    wait_until(lambda: not child._monitored_by, timeout=WAIT, what="the child's monitor to be dropped")
    assert not ended.ready(), "a monitor takes nobody down"


# -- exception reasons ----------------------------------------------------------------------------------


def raiser(ctx: ActorContext, text: str) -> None:
    """Raises ``RuntimeError(text)`` on its first message."""
    ctx.receive()
    raise RuntimeError(text)


def test_an_exception_crosses_nodes_as_an_exception_reason(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    local_watch = Probe(b)
    far_watch = Probe(a, trap_exit=True)
    victim = b.spawn_fn(raiser, "boom").pid
    gvictim = remote(b, victim)
    lref = local_watch.ctx.monitor(victim)
    fref = far_watch.ctx.monitor(gvictim)
    far_watch.ctx.link(gvictim)
    far_watch.ctx.send(gvictim, "go")

    local = local_watch.receive(Down)
    assert isinstance(local.reason, RuntimeError) and str(local.reason) == "boom", "locally: the exception itself"
    assert local.ref == lref

    down = far_watch.receive(Down)
    assert down.ref == fref and down.pid == gvictim
    reason = down.reason
    assert isinstance(reason, ExceptionReason)
    assert (reason.type, reason.message) == ("RuntimeError", "boom")
    assert reason.traceback.startswith("Traceback (most recent call last):")
    assert "in raiser" in reason.traceback and reason.traceback.rstrip().endswith("RuntimeError: boom")
    assert format_reason(reason) == str(reason) == "RuntimeError: boom"
    assert far_watch.receive(Exit) == Exit(gvictim, reason)


def test_an_exception_reason_is_the_reason_of_a_failed_remote_call(cluster: list[DistributedSystem]) -> None:
    class Crasher(GenServer):
        def init(self, args: Any) -> Any:
            return None

        def handle_call(self, request: Any, from_: From, state: Any) -> Any:
            raise KeyError(request)

    a, b, _ = cluster
    server = remote(b, gen_server.start(b.system, Crasher()).pid)
    with pytest.raises(CallError) as info:
        a.system.call(server, "missing", timeout=WAIT)
    reason = info.value.reason
    assert isinstance(reason, ExceptionReason) and reason.type == "KeyError" and reason.message == "'missing'"
    assert "in handle_call" in reason.traceback


def test_an_exception_reason_crosses_again_unchanged(cluster: list[DistributedSystem]) -> None:
    """C's crash reaches B as data; a B process that exits with it reaches A the same."""
    a, b, c = cluster
    victim = remote(c, c.spawn_fn(raiser, "deep").pid)

    watch = Probe(a)

    def relay(ctx: ActorContext) -> None:
        ctx.trap_exit(True)
        ctx.receive(lambda m: m == "start")
        ctx.link(victim)
        ctx.send(victim, "go")
        exit_ = ctx.receive(Exit)
        assert isinstance(exit_.reason, ExceptionReason)
        ctx.send(watch.gpid, ("relayed", exit_.reason))  # inside a message: a plain tuple
        ctx.stop(exit_.reason)

    relay_pid = remote(b, b.spawn_fn(relay).pid)
    ref = watch.ctx.monitor(relay_pid)
    watch.ctx.send(relay_pid, "start")
    relayed = watch.receive("relayed")[1]
    down = watch.receive(Down)
    assert down.ref == ref and down.pid == relay_pid
    reason = down.reason
    assert isinstance(reason, ExceptionReason) and (reason.type, reason.message) == ("RuntimeError", "deep")
    assert "in raiser" in reason.traceback
    assert tuple(reason) == tuple(relayed), "the same type, message and traceback, from C's process"


def test_a_huge_exception_message_crosses_truncated_with_its_tail(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    watch = Probe(a)
    victim = remote(b, b.spawn_fn(raiser, "x" * 100_000 + "END").pid)
    watch.ctx.monitor(victim)
    watch.ctx.send(victim, "go")
    reason = watch.receive(Down).reason
    assert isinstance(reason, ExceptionReason)
    assert reason.message.startswith("[...truncated]") and reason.message.endswith("END")
    assert len(reason.message) <= MAX_REASON_TEXT + 20 and len(reason.traceback) <= MAX_REASON_TEXT + 20


# -- the seam -------------------------------------------------------------------------------------------


def protocol_members(protocol: type) -> dict[str, inspect.Signature | None]:
    """The Protocol's public members: a method's signature, or None for a property."""
    out: dict[str, inspect.Signature | None] = {}
    for name, member in vars(protocol).items():
        if not name.startswith("_"):
            out[name] = None if isinstance(member, property) else inspect.signature(member)
    return out


@pytest.mark.parametrize("side", ["Routing is a Router", "NodeInbound is an Inbound"])
def test_the_node_and_the_runtime_implement_the_seam(cluster: list[DistributedSystem], side: str) -> None:
    """Every member of the Protocol exists on a live node's implementation, with the same parameters.

    (mypy checks the same statically: ``_conforms: type[Router] = Routing`` in joerl/node/routing.py.)
    """
    routing = cluster[0]._routing
    impl: Any
    impl, protocol = (routing, Router) if side == "Routing is a Router" else (routing.inbound, Inbound)
    assert isinstance(impl, Routing if protocol is Router else NodeInbound)
    for name, sig in protocol_members(protocol).items():
        assert hasattr(impl, name), f"{type(impl).__name__} lacks {name}"
        if sig is None:
            continue
        want = [p.name for p in sig.parameters.values() if p.name != "self"]
        params = inspect.signature(getattr(impl, name)).parameters
        got = list(params)
        assert got[: len(want)] == want, f"{type(impl).__name__}.{name}{got} != {protocol.__name__}.{name}{want}"
        assert all(params[p].default is not inspect.Parameter.empty for p in got[len(want) :]), name
