"""A chat room across OS processes: the ``distributed_chat`` example of the
Rust joerl (https://crates.io/crates/joerl, "the seed"), in Python.

Run in two (or more) terminals::

    python examples/distributed_chat.py --node alice --port 8001
    python examples/distributed_chat.py --node bob --port 8002 --connect 127.0.0.1:8001
    python examples/distributed_chat.py --node carol --port 8003 --connect alice

Type a line on any node and it appears on all the others; end with Ctrl+D
(EOF) or Ctrl+C. A node that leaves or dies is announced.

How it works: each node runs a process registered as ``chat``. Joining
means sending ``("join", me)`` to ``chat`` on the node given by ``--connect``,
which adds the newcomer and answers with the members it knows; the newcomer
then says ``("hello", me)`` to each of them. (Only the newcomer reaches out,
so two nodes never dial each other at the same moment.) A line typed
becomes ``("say", me, text)``, sent to ``chat`` on every member node.
``monitor_nodes`` reports members that go away.

``--connect`` takes ``HOST:PORT`` or a node name. joerl links need the peer's
name, so for ``HOST:PORT`` the node asks the port mapper which node listens on
that port (the nodes of a cluster share one port mapper, like Erlang nodes on
one host share epmd); waits up to ``--wait`` seconds for it to appear.

Lines typed before anyone else is in the room wait until someone joins;
at EOF a node leaves once its lines have gone out. For scripts and tests:
``--say "a,b"`` says those lines (comma-separated) instead of reading
standard input, once ``--members K`` other nodes (default 1) are in the room,
and ``--exit-after N`` leaves after hearing N lines from others (and saying
its own; 0: as soon as its own are said).

Options: ``--epmd HOST:PORT``, the port mapper (default
``$JOERL_EPMD_ADDRESS``, else ``127.0.0.1:4369``, where one is started if
none answers). All nodes need the same cookie: ``$JOERL_COOKIE``, else
``~/.joerl.cookie``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import gevent
from gevent import socket

import joerl
from joerl.actor import ActorContext
from joerl.address import parse_address
from joerl.message import NodeDown
from joerl.node.names import node_name
from joerl.node.node import DistributedSystem


def alive(name: str) -> str:
    """``alice`` of ``alice@host``: how the room shows a member."""
    return name.partition("@")[0]


def find_node(node: DistributedSystem, target: str, timeout: float) -> str | None:
    """The name of the node ``target`` means (a name, or ``HOST:PORT`` looked up
    at the port mapper by port), waiting up to ``timeout`` for it to register."""
    deadline = time.monotonic() + timeout
    want = parse_address(target) if ":" in target else None
    full = node_name(target) if want is None else None  # a name without a host is this machine's
    while True:
        for info in node.list_nodes():
            if info.name == node.node_name:
                continue
            if info.name == full or (want is not None and info.port == want[1] and same_host(info.host, want[0])):
                return info.name
        if time.monotonic() >= deadline:
            return None
        gevent.sleep(0.2)


def same_host(a: str, b: str) -> bool:
    try:
        return a == b or socket.gethostbyname(a or "127.0.0.1") == socket.gethostbyname(b)
    except OSError:
        return False


def chat(
    ctx: ActorContext,
    node: DistributedSystem,
    outbox: list[str],
    members_wanted: int,
    exit_after: int | None,
) -> None:
    """The room, as this node sees it. Messages:

    ``("join", name)`` a node joins through us; ``("members", contact,
    names)`` the room we joined through ``contact``; ``("hello", name)`` a newcomer that joined elsewhere; ``("say",
    name, text)`` a line; ``("leave", name)``; and from this node ``("input",
    text)`` and ``("eof",)``; plus ``NodeDown``. Lines to say wait in
    ``outbox`` until ``members_wanted`` other nodes are in the room.
    """
    me = node.node_name
    members: set[str] = set()
    heard = 0
    leaving = False
    node.monitor_nodes(ctx.pid)

    def broadcast(msg: Any) -> None:
        for m in sorted(members):
            ctx.send(("chat", m), msg)

    def flush() -> None:
        if outbox and len(members) >= members_wanted:
            for line in outbox:
                print(f"[{alive(me)}] (you) {line}", flush=True)
                broadcast(("say", me, line))
            outbox.clear()
        if not outbox and (leaving or (exit_after is not None and heard >= exit_after)):
            if leaving:
                broadcast(("leave", me))
            ctx.system.shutdown()  # ends joerl.run's wait, as Ctrl+C does

    def add(name: str) -> None:
        if name != me and name not in members:
            members.add(name)
            print(f"* {name} is in the room (members: {sorted(members | {me})})", flush=True)
        flush()

    while True:
        msg = ctx.receive()
        if isinstance(msg, NodeDown):
            if msg.node in members:
                members.discard(msg.node)
                print(f"* {msg.node} went away ({msg.reason})", flush=True)
            continue
        tag = msg[0]
        if tag == "join":
            ctx.send(("chat", msg[1]), ("members", me, sorted(members)))
            add(msg[1])
        elif tag == "members":
            add(msg[1])
            for name in msg[2]:
                if name != me and name not in members:
                    ctx.send(("chat", name), ("hello", me))
                add(name)
        elif tag == "hello":
            add(msg[1])
        elif tag == "say":
            heard += 1
            print(f"[{alive(msg[1])}] {msg[2]}", flush=True)
            flush()
        elif tag == "leave":
            members.discard(msg[1])
            print(f"* {msg[1]} left the room", flush=True)
        elif tag == "input":
            outbox.append(msg[1])
            if len(members) < members_wanted:
                print(f"[{me}] (nobody here yet: the line waits for someone to join)", flush=True)
            flush()
        elif tag == "eof":
            leaving = True
            flush()


def read_stdin(dest: Any, system: Any) -> None:
    """Forward lines typed on standard input (read in a worker thread, so the
    node keeps running meanwhile); ``("eof",)`` at the end."""
    pool = gevent.get_hub().threadpool
    while True:
        line = pool.apply(sys.stdin.readline)
        if not line:
            system.send(dest, ("eof",))
            return
        if line.strip():
            system.send(dest, ("input", line.rstrip("\n")))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="a chat room across joerl nodes")
    ap.add_argument("--node", required=True, help="this node's name (your nickname)")
    ap.add_argument("--port", type=int, default=0, help="listen port (default 0: any free port)")
    ap.add_argument("--connect", default=None, metavar="HOST:PORT|NAME", help="join the room through this node")
    ap.add_argument(
        "--epmd", default=None, metavar="HOST:PORT", help="port mapper (default $JOERL_EPMD_ADDRESS or 127.0.0.1:4369)"
    )
    ap.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the --connect node (default 60)")
    ap.add_argument("--say", default=None, help="comma-separated lines to say instead of reading standard input")
    ap.add_argument(
        "--members", type=int, default=1, help="other members to wait for before saying anything (default 1)"
    )
    ap.add_argument(
        "--exit-after",
        type=int,
        default=None,
        metavar="N",
        help="leave after hearing N lines (0: once our own lines are said)",
    )
    args = ap.parse_args(argv)

    node = DistributedSystem(args.node, f"127.0.0.1:{args.port}", args.epmd)

    def start(node: DistributedSystem) -> None:
        say = [s.strip() for s in args.say.split(",") if s.strip()] if args.say is not None else []
        room = node.spawn_fn(chat, node, say, args.members, args.exit_after, name="chat").pid
        print(f"[{args.node}] chat node up on port {node.listen_port} (port mapper {node.epmd_address})", flush=True)
        if args.connect:
            peer = find_node(node, args.connect, args.wait)
            if peer is None:
                print(f"[{args.node}] no node at {args.connect} within {args.wait}s")
                raise SystemExit(1)  # joerl.run shuts the node down first
            print(f"[{args.node}] joining the room through {peer}", flush=True)
            node.system.send(("chat", peer), ("join", args.node))
        if args.say is None:
            print(f"[{args.node}] type lines to chat; Ctrl+D to leave", flush=True)
            gevent.spawn(read_stdin, room, node.system)

    status = joerl.run(start, node)  # until Ctrl+C, SIGTERM or leaving the room; then a clean shutdown
    print(f"[{args.node}] leaving", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
