"""A small joerl node run as a subprocess by the multi-process tests.

Usage::

    python tests/multiprocess/node_main.py NAME --epmd HOST:PORT [--tick S] ROLE [options]

The cookie comes from ``$JOERL_COOKIE``. Every role first prints one line
``READY port=N node=NAME creation=C`` once the node is registered, then:

``serve``
    registers ``echo`` (answers ``("ping", n, pid)`` with ``("pong", n)``,
    ``("whois", pid)`` with ``("pid", echo_pid)`` and ``("whereis", name,
    pid)`` with ``("pid", name, pid_or_None)``; passes the ``msg`` of
    ``("fwd", node, msg)`` on to ``echo`` on ``node``), ``sink`` (takes
    ``("n", i)`` and checks the ``i`` come 0, 1, 2, ...; on ``("end", n, pid)``
    prints ``SINK received=M expected=n in_order=B`` and answers
    ``("sunk", M, B)``) and ``stream`` (see :func:`stream`: numbered messages,
    acknowledged every 100, gaps and order violations counted). Runs until
    its standard input is closed.
``consume --mailbox N --rate R --slow-for S``
    a slow consumer: registers ``echo`` and ``slow``, a ``sink`` (same
    messages, same answers) whose mailbox holds at most N messages and which
    takes at most R messages a second for the first S seconds after the
    first message arrives (then as fast as it can). Runs until its standard
    input is closed.
``host``
    hosts processes for a test node that links to, monitors, spawns and
    calls them: registers the factories ``worker`` (see :func:`worker`) and
    ``linker`` (see :func:`linker`) for ``spawn_remote``, and the GenServer
    ``store`` (see :class:`Store`; it prints ``HELD`` when it holds a call
    unanswered). Runs until its standard input is closed.
``flood --to NODE --seconds S [--queue-bytes B]``
    prints ``FLOOD_READY`` once linked, waits for a line on its standard
    input, then sends numbered messages to ``slow`` on NODE as fast as the
    link lets it for S seconds (``FLOODING t=T`` when it starts), then the
    end marker; prints ``FLOOD sent=N received=M in_order=B seconds=S
    rate=R queue_max=Q drain=D`` (Q: the most bytes seen waiting in the
    link's outgoing queue; D: seconds from the last send to the consumer's
    answer).
``send --to NODE --count N``
    sends N numbered messages to ``sink`` on NODE, then the end marker;
    prints ``SENT count=N received=M in_order=B seconds=S rate=R``.
``ping --to NODE --count N``
    N round trips to ``echo`` on NODE, one at a time; prints
    ``PINGPONG count=N seconds=S rate=R``.
``watch --to NODE``
    monitors the ``echo`` process of NODE and the node itself; prints
    ``WATCHING pid=P``, then ``DOWN reason=R t=T`` and ``NODEDOWN node=NODE
    reason=R t=T`` (T: ``time.monotonic()``, which every process on the
    machine shares), and exits.
``pg --to NODE --count N``
    starts the process-group scope ``pg``, joins N idle processes to the
    group ``"workers"``, links with NODE, prints ``PG_JOINED n=N``, and runs
    until its standard input is closed.

Exit status: 0 when the role did what it promised, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import gevent

from joerl import gen_server
from joerl.actor import ActorContext
from joerl.errors import NodeUnreachable, ReceiveTimeout
from joerl.gen_server import GenServer, NoReply, Reply
from joerl.message import Down, Exit, NodeDown
from joerl.node.connection import LinkConfig
from joerl.node.node import DistributedSystem
from joerl.pid import Pid
from joerl.system import From
from joerl.testing import stdin_lines, wait_until

WAIT = 30.0  # seconds any single step may take before the role gives up


def say(line: str) -> None:
    print(line, flush=True)


def echo(ctx: ActorContext) -> None:
    while True:
        msg = ctx.receive()
        if msg[0] == "ping":
            ctx.send(msg[2], ("pong", msg[1]))
        elif msg[0] == "whois":
            ctx.send(msg[1], ("pid", ctx.pid))
        elif msg[0] == "whereis":
            ctx.send(msg[2], ("pid", msg[1], ctx.whereis(msg[1])))
        elif msg[0] == "fwd":
            ctx.send(("echo", msg[1]), msg[2])


def sink(ctx: ActorContext) -> None:
    received = 0
    in_order = True
    receive = ctx.receive
    while True:
        msg = receive()
        if msg[0] == "n":
            if msg[1] != received:
                in_order = False
            received += 1
        elif msg[0] == "end":
            say(f"SINK received={received} expected={msg[1]} in_order={in_order}")
            ctx.send(msg[2], ("sunk", received, in_order))
            received, in_order = 0, True


def stream(ctx: ActorContext) -> None:
    """Numbered messages ``("s", seq)`` from one sender, which may lose some.

    Keeps the highest ``seq`` seen, the count received, the missing ranges
    (gaps) and the order violations (a ``seq`` not above the highest seen:
    a duplicate or a reordering). Every 100 messages received it sends
    ``("ack", highest, received, violations)`` to the sender. Answers
    ``("hello",)`` with ``("hello", stream_pid)`` and ``("end",)`` with
    ``("sunk", received, highest, violations, gaps)``, gaps as ``[first,
    last]`` pairs.
    """
    highest = -1
    received = 0
    violations = 0
    gaps: list[list[int]] = []
    receive = ctx.receive
    while True:
        msg = receive()
        tag = msg[0]
        if tag == "s":
            seq = msg[1]
            if seq > highest:
                if seq > highest + 1:
                    gaps.append([highest + 1, seq - 1])
                highest = seq
            else:
                violations += 1
            received += 1
            if received % 100 == 0:
                ctx.send(ctx.sender, ("ack", highest, received, violations))
        elif tag == "hello":
            ctx.send(ctx.sender, ("hello", ctx.pid))
        elif tag == "end":
            ctx.send(ctx.sender, ("sunk", received, highest, violations, gaps))


def slow_sink(ctx: ActorContext, rate: float, slow_for: float) -> None:
    """The ``sink`` protocol (``("n", i)``, ``("end", n, pid)``), at most
    ``rate`` messages a second for ``slow_for`` seconds after the first one."""
    received = 0
    in_order = True
    receive = ctx.receive
    t0 = 0.0
    while True:
        msg = receive()
        if msg[0] == "n":
            if msg[1] != received:
                in_order = False
            received += 1
            if received == 1:
                t0 = time.monotonic()
            if received % 100 == 0:
                now = time.monotonic()
                if now - t0 < slow_for:
                    ahead = t0 + received / rate - now
                    if ahead > 0:
                        gevent.sleep(ahead)  # the consumer's work, simulated
        elif msg[0] == "end":
            say(f"SINK received={received} expected={msg[1]} in_order={in_order}")
            ctx.send(msg[2], ("sunk", received, in_order))
            received, in_order = 0, True


def worker(ctx: ActorContext, node: DistributedSystem) -> None:
    """Answers ``("ping", n)`` with ``("pong", n)``; ``("die", reason)`` ends
    it with ``reason`` (``"raise"``: it raises ``RuntimeError("boom")``);
    ``("global_register", name)`` registers it cluster-wide and answers
    ``("registered", ok)``."""
    while True:
        msg = ctx.receive()
        if msg[0] == "ping":
            ctx.send(ctx.sender, ("pong", msg[1]))
        elif msg[0] == "die":
            if msg[1] == "raise":
                raise RuntimeError("boom")
            ctx.stop(msg[1])
        elif msg[0] == "global_register":
            ctx.send(ctx.sender, ("registered", node.global_register(msg[1], ctx.pid)))


def linker(ctx: ActorContext, other: Pid, report: Pid) -> None:
    """Traps exits, links to ``other``, sends ``("linked", pid)`` to
    ``report``, then ``("exit", pid, reason)`` for every exit signal."""
    ctx.trap_exit(True)
    ctx.link(other)
    ctx.send(report, ("linked", ctx.pid))
    while True:
        msg = ctx.receive(match=Exit)
        ctx.send(report, ("exit", msg.pid, msg.reason))


def answerer(ctx: ActorContext) -> None:
    """Answers every ``("answer", from_, request)`` with ``gen_server.reply(from_,
    ("answered", request))``: the ``From`` of a call made on another node."""
    while True:
        _, from_, request = ctx.receive()
        gen_server.reply(ctx, From(*from_), ("answered", request))


def announced(ctx: ActorContext, report: Pid) -> None:
    """Sends ``("child", pid)`` to ``report``, then waits (for an exit signal)."""
    ctx.send(report, ("child", ctx.pid))
    while True:
        ctx.receive()


class Store(GenServer):
    """Answers ``("echo", x)`` with ``x``; holds ``("hold",)`` unanswered,
    printing ``HELD``."""

    def handle_call(self, request: Any, from_: From, state: Any) -> Reply | NoReply:
        if request[0] == "hold":
            say("HELD")
            return NoReply()
        return Reply(request[1])


def wait_stdin_line() -> None:
    """Return when a line (or EOF) arrives on standard input (the test's "go")."""
    next(stdin_lines(), None)


def wait_stdin_closed() -> None:
    """Return when standard input reaches EOF (the test's way to stop a node)."""
    for _ in stdin_lines():
        pass


def connect(node: DistributedSystem, peer: str) -> None:
    """Link with ``peer``, polling (bounded) until it has registered with the port mapper."""

    def linked() -> bool:
        try:
            node.connect_to_node(peer)
        except NodeUnreachable:
            return False
        return True

    wait_until(linked, timeout=WAIT, interval=0.1, what=f"{peer} registered and linked")


def role_send(node: DistributedSystem, peer: str, count: int) -> bool:
    result: dict[str, Any] = {}

    def body(ctx: ActorContext) -> None:
        dest = ("sink", peer)
        t0 = time.perf_counter()
        for i in range(count):
            ctx.send(dest, ("n", i))
        ctx.send(dest, ("end", count, ctx.pid))
        _, received, in_order = ctx.receive(timeout=WAIT)
        result.update(received=received, in_order=in_order, seconds=time.perf_counter() - t0)

    node.spawn_fn(body).join(WAIT + 5)
    if not result:
        say("SENT failed: no answer from the sink")
        return False
    secs = result["seconds"]
    say(
        f"SENT count={count} received={result['received']} in_order={result['in_order']} "
        f"seconds={secs:.3f} rate={count / secs:.0f}"
    )
    return result["received"] == count and result["in_order"] is True


def role_ping(node: DistributedSystem, peer: str, count: int) -> bool:
    result: dict[str, float] = {}

    def body(ctx: ActorContext) -> None:
        dest = ("echo", peer)
        ctx.send(dest, ("ping", -1, ctx.pid))  # warm up: the link is up after this
        ctx.receive(timeout=WAIT)
        t0 = time.perf_counter()
        for i in range(count):
            ctx.send(dest, ("ping", i, ctx.pid))
            if ctx.receive(timeout=WAIT) != ("pong", i):
                return
        result["seconds"] = time.perf_counter() - t0

    node.spawn_fn(body).join(WAIT + 5)
    if not result:
        say("PINGPONG failed")
        return False
    secs = result["seconds"]
    say(f"PINGPONG count={count} seconds={secs:.3f} rate={count / secs:.0f}")
    return True


def role_watch(node: DistributedSystem, peer: str) -> bool:
    seen: list[str] = []

    def body(ctx: ActorContext) -> None:
        node.monitor_node(ctx.pid, peer)
        ctx.send(("echo", peer), ("whois", ctx.pid))
        _, pid = ctx.receive(match=lambda m: m[0] == "pid", timeout=WAIT)
        ctx.monitor(pid)
        say(f"WATCHING pid={pid}")
        while len(seen) < 2:
            try:
                msg = ctx.receive(match=(Down, NodeDown), timeout=WAIT * 2)
            except ReceiveTimeout:
                return
            t = time.monotonic()
            if isinstance(msg, Down):
                seen.append("down")
                say(f"DOWN reason={msg.reason} t={t:.6f}")
            else:
                seen.append("nodedown")
                say(f"NODEDOWN node={msg.node} reason={msg.reason} t={t:.6f}")

    node.spawn_fn(body).join(WAIT * 3)
    return sorted(seen) == ["down", "nodedown"]


def role_flood(node: DistributedSystem, peer: str, seconds: float) -> bool:
    result: dict[str, Any] = {}

    def body(ctx: ActorContext) -> None:
        ctx.send(("echo", peer), ("whereis", "slow", ctx.pid))
        _, _, dest = ctx.receive(match=lambda m: m[0] == "pid", timeout=WAIT)
        link = node._peers[peer].conn
        queue_max = 0
        say("FLOOD_READY")
        wait_stdin_line()
        say(f"FLOODING t={time.monotonic():.6f}")
        t0 = time.perf_counter()
        deadline = t0 + seconds
        send = ctx.send
        i = 0
        while True:
            for _ in range(1000):
                send(dest, ("n", i))
                i += 1
            if link is not None:
                queue_max = max(queue_max, link.queued_bytes)
            if time.perf_counter() >= deadline:
                break
        t1 = time.perf_counter()
        ctx.send(dest, ("end", i, ctx.pid))
        _, received, in_order = ctx.receive(match=lambda m: m[0] == "sunk", timeout=WAIT * 2)
        result.update(
            sent=i,
            received=received,
            in_order=in_order,
            seconds=t1 - t0,
            queue_max=queue_max,
            drain=time.perf_counter() - t1,
        )

    node.spawn_fn(body).join(WAIT * 3 + seconds)
    if not result:
        say("FLOOD failed: no answer from the consumer")
        return False
    r = result
    say(
        f"FLOOD sent={r['sent']} received={r['received']} in_order={r['in_order']} seconds={r['seconds']:.3f} "
        f"rate={r['sent'] / r['seconds']:.0f} queue_max={r['queue_max']} drain={r['drain']:.3f}"
    )
    return r["received"] == r["sent"] and r["in_order"] is True


def role_pg(node: DistributedSystem, count: int) -> bool:
    """The ``pg`` role: N members of ``"workers"`` in this node's ``pg`` scope."""
    from joerl import pg

    scope = pg.start(node)
    pids = [node.spawn_fn(lambda ctx: ctx.receive()).pid for _ in range(count)]
    scope.join("workers", pids)
    say(f"PG_JOINED n={len(pids)}")
    wait_stdin_closed()
    return True


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="node_main")
    ap.add_argument("name")
    ap.add_argument("--epmd", required=True)
    ap.add_argument("--tick", type=float, default=60.0)
    ap.add_argument("role", choices=["serve", "host", "send", "ping", "watch", "consume", "flood", "pg"])
    ap.add_argument("--to", default=None)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--mailbox", type=int, default=1000, help="consume: the sink's mailbox bound")
    ap.add_argument("--rate", type=float, default=20000.0, help="consume: messages a second while slow")
    ap.add_argument("--slow-for", type=float, default=5.0, help="consume: seconds of slowness")
    ap.add_argument("--seconds", type=float, default=5.0, help="flood: seconds of sending")
    ap.add_argument("--queue-bytes", type=int, default=None, help="the links' outgoing queue bound")
    args = ap.parse_args(argv)
    if not os.environ.get("JOERL_COOKIE"):
        ap.error("set $JOERL_COOKIE")

    link_config = None
    if args.queue_bytes is not None:
        link_config = LinkConfig(tick_time=args.tick, max_queue_bytes=args.queue_bytes)
    node = DistributedSystem(
        args.name, "127.0.0.1:0", args.epmd, start_epmd=False, tick_time=args.tick, link_config=link_config
    )
    ok = True
    try:
        say(f"READY port={node.listen_port} node={node.node_name} creation={node.creation}")
        if args.role == "serve":
            node.spawn_fn(echo, name="echo")
            node.spawn_fn(sink, name="sink")
            node.spawn_fn(stream, name="stream")
            wait_stdin_closed()
        elif args.role == "host":
            node.register_factory("worker", lambda ctx: worker(ctx, node), function=True)
            node.register_factory("linker", linker, function=True)
            node.register_factory("answerer", answerer, function=True)
            node.register_factory("announced", announced, function=True)
            gen_server.start(node.system, Store(), name="store")
            wait_stdin_closed()
        elif args.role == "consume":
            node.spawn_fn(echo, name="echo")
            node.spawn_fn(slow_sink, args.rate, args.slow_for, name="slow", mailbox_size=args.mailbox)
            wait_stdin_closed()
        else:
            if not args.to:
                ap.error(f"{args.role} needs --to NODE")
            connect(node, args.to)
            if args.role == "send":
                ok = role_send(node, args.to, args.count)
            elif args.role == "ping":
                ok = role_ping(node, args.to, args.count)
            elif args.role == "flood":
                ok = role_flood(node, args.to, args.seconds)
            elif args.role == "pg":
                ok = role_pg(node, args.count)
            else:
                ok = role_watch(node, args.to)
    finally:
        node.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
