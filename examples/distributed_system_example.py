"""Two nodes in two OS processes talk: the
``distributed_system_example`` of the Rust joerl (https://crates.io/crates/joerl, "the seed"), in Python.

Run in two terminals (either first)::

    python examples/distributed_system_example.py node_a 5001
    python examples/distributed_system_example.py node_b 5002

Each node listens on the given port (0: any free one), registers its name
with the port mapper, and starts a ``greeter`` GenServer under that name.
Once the other node (``node_a`` <-> ``node_b``, or ``--peer NAME``) shows up
at the port mapper, each node, from plain code:

1. calls the peer's greeter by name, ``call(("greeter", peer), ...)``, which
   answers with a greeting and its own pid (a pid of the other node);
2. sends a plain message straight to that pid, carrying a local pid to
   answer to, and gets the answer (location transparency both ways);
3. asks the peer's greeter to add two numbers (a remote GenServer call);
4. casts ``("bye", me)`` and waits for the peer's own ``bye``, so neither
   process leaves before the other has finished with it; then exits 0.

Options: ``--peer NAME``; ``--epmd HOST:PORT``, the port mapper (default
``$JOERL_EPMD_ADDRESS``, else ``127.0.0.1:4369``, where one is started if
none answers); ``--wait S``, how long to wait for the peer (default 60).
Both processes need the same cookie: ``$JOERL_COOKIE``, else ``~/.joerl.cookie``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import gevent
from gevent.event import Event

from joerl.actor import ActorContext
from joerl.gen_server import From, GenServer, Reply, cast, start
from joerl.node.names import node_name
from joerl.node.node import DistributedSystem


class Greeter(GenServer):
    """Answers greetings and sums; sets ``peer_done`` when the peer says bye."""

    def __init__(self, node_name: str, peer_done: Event) -> None:
        self.node_name = node_name
        self.peer_done = peer_done

    def init(self, args: Any) -> int:
        return 0  # calls served

    def handle_call(self, request: Any, from_: From, served: int) -> Reply:
        if request[0] == "hello":
            print(f"[{self.node_name}] greeter: hello from {request[1]} (caller {from_.pid})")
            return Reply((f"hello {request[1]}, this is {self.node_name}", self.ctx.pid), served + 1)
        if request[0] == "add":
            print(f"[{self.node_name}] greeter: {request[1]} + {request[2]} for {from_.pid}")
            return Reply(request[1] + request[2], served + 1)
        raise ValueError(f"unknown request {request!r}")

    def handle_cast(self, request: Any, served: int) -> int:
        if request[0] == "bye":
            print(f"[{self.node_name}] greeter: {request[1]} is done with us (we served {served} calls)")
            self.peer_done.set()
        return served

    def handle_info(self, msg: Any, served: int) -> int:
        if msg[0] == "ping":  # a plain message, not a call
            _, text, reply_to = msg
            print(f"[{self.node_name}] greeter: plain message {text!r}, answering {reply_to}")
            self.ctx.send(reply_to, ("pong", text.upper()))
        return served


def wait_for_node(node: DistributedSystem, name: str, timeout: float) -> bool:
    """Link with ``name`` once it is registered at the port mapper (polled, bounded)."""
    deadline = time.monotonic() + timeout
    while not any(info.name == node_name(name) for info in node.list_nodes()):  # listed as name@host
        if time.monotonic() >= deadline:
            return False
        gevent.sleep(0.2)
    return node.connect_to_node(name)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="two joerl nodes greet each other")
    ap.add_argument("name", help="this node's name, e.g. node_a")
    ap.add_argument("port", type=int, help="listen port (0: any free port)")
    ap.add_argument("--peer", default=None, help="the other node (default: node_b for node_a, else node_a)")
    ap.add_argument(
        "--epmd", default=None, metavar="HOST:PORT", help="port mapper (default $JOERL_EPMD_ADDRESS or 127.0.0.1:4369)"
    )
    ap.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the peer (default 60)")
    args = ap.parse_args(argv)
    me = args.name
    peer = args.peer or ("node_b" if me == "node_a" else "node_a")

    with DistributedSystem(me, f"127.0.0.1:{args.port}", args.epmd) as node:
        print(
            f"[{me}] node up: id {node.node_id}, creation {node.creation}, port {node.listen_port}, "
            f"port mapper {node.epmd_address}"
        )
        peer_done = Event()
        start(node.system, Greeter(me, peer_done), name="greeter")
        print(f"[{me}] waiting for {peer} ...")
        if not wait_for_node(node, peer, args.wait):
            print(f"[{me}] {peer} did not appear within {args.wait}s")
            return 1
        listed = sorted(f"{i.name}:{i.port}" for i in node.list_nodes())
        print(f"[{me}] linked with {node.nodes()}; the port mapper lists {listed}")

        # 1. a call by name
        text, their_greeter = node.system.call(("greeter", peer), ("hello", me), timeout=10)
        print(f"[{me}] {peer} says: {text!r}; its greeter is {their_greeter}")

        # 2. a plain message to a pid of the other node, answered to one of ours
        result: dict[str, Any] = {}

        def asker(ctx: ActorContext) -> None:
            ctx.send(their_greeter, ("ping", f"greetings from {me}", ctx.pid))
            result["answer"] = ctx.receive(timeout=10)
            result["sender"] = ctx.sender

        node.spawn_fn(asker).join(15)
        print(f"[{me}] answer {result.get('answer')} from {result.get('sender')}")

        # 3. a remote computation
        total = node.system.call(("greeter", peer), ("add", 20, 22), timeout=10)
        print(f"[{me}] {peer} computed 20 + 22 = {total}")

        # 4. done: tell the peer, then wait until it is done with us
        cast(node.system, ("greeter", peer), ("bye", me))
        if not peer_done.wait(args.wait):
            print(f"[{me}] {peer} never said bye")
            return 1
        ok = result.get("answer") == ("pong", f"GREETINGS FROM {me.upper()}") and total == 42
        print(f"[{me}] done ({'ok' if ok else 'FAILED'}); shutting down")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
