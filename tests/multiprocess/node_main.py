"""A small joerl node run as a subprocess by the multi-process tests.

Usage::

    python tests/multiprocess/node_main.py NAME --epmd HOST:PORT [--tick S] ROLE [options]

The cookie comes from ``$JOERL_COOKIE``. Every role first prints one line
``READY port=N node=NAME creation=C`` once the node is registered, then:

``serve``
    registers ``echo`` (answers ``("ping", n, pid)`` with ``("pong", n)`` and
    ``("whois", pid)`` with ``("pid", echo_pid)``) and ``sink`` (takes
    ``("n", i)`` and checks the ``i`` come 0, 1, 2, ...; on ``("end", n, pid)``
    prints ``SINK received=M expected=n in_order=B`` and answers
    ``("sunk", M, B)``). Runs until its standard input is closed.
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

Exit status: 0 when the role did what it promised, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import gevent
import gevent.os

from joerl.actor import ActorContext
from joerl.dist.node import DistributedSystem
from joerl.errors import NodeUnreachable, ReceiveTimeout
from joerl.message import Down, NodeDown

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


def wait_stdin_closed() -> None:
    """Return when standard input reaches EOF (the test's way to stop a node)."""
    fd = sys.stdin.fileno()
    gevent.os.make_nonblocking(fd)
    while gevent.os.nb_read(fd, 4096):
        pass


def connect(node: DistributedSystem, peer: str) -> None:
    """Link with ``peer``, waiting (bounded) until it has registered."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            node.connect_to_node(peer)
            return
        except NodeUnreachable:
            if time.monotonic() > deadline:
                raise
            gevent.sleep(0.1)


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
    say(f"SENT count={count} received={result['received']} in_order={result['in_order']} "
        f"seconds={secs:.3f} rate={count / secs:.0f}")
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


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="node_main")
    ap.add_argument("name")
    ap.add_argument("--epmd", required=True)
    ap.add_argument("--tick", type=float, default=60.0)
    ap.add_argument("role", choices=["serve", "send", "ping", "watch"])
    ap.add_argument("--to", default=None)
    ap.add_argument("--count", type=int, default=1000)
    args = ap.parse_args(argv)
    if not os.environ.get("JOERL_COOKIE"):
        ap.error("set $JOERL_COOKIE")

    node = DistributedSystem(args.name, "127.0.0.1:0", args.epmd, start_epmd=False, tick_time=args.tick)
    ok = True
    try:
        say(f"READY port={node.listen_port} node={node.node_name} creation={node.creation}")
        if args.role == "serve":
            node.spawn_fn(echo, name="echo")
            node.spawn_fn(sink, name="sink")
            wait_stdin_closed()
        else:
            if not args.to:
                ap.error(f"{args.role} needs --to NODE")
            connect(node, args.to)
            if args.role == "send":
                ok = role_send(node, args.to, args.count)
            elif args.role == "ping":
                ok = role_ping(node, args.to, args.count)
            else:
                ok = role_watch(node, args.to)
    finally:
        node.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
