"""Three nodes in one process trade echo and compute requests: the
Rust joerl's (https://crates.io/crates/joerl, "the seed")
``remote_actors``, with a real transport underneath.

Run::

    python examples/remote_actors.py [--epmd HOST:PORT]

The seed simulated nodes with a shared table of actor systems; here
``node_a``, ``node_b`` and ``node_c`` are real nodes that happen to share a
process: each listens on its own port, registers with the port mapper
(``--epmd``, else ``$JOERL_EPMD_ADDRESS``, else ``127.0.0.1:4369``, where one
is started if none answers) and reaches the others over authenticated TCP
links, dialled on first use. Run the same code in three processes and
nothing changes.

Each node runs a ``service`` process. The messages are ``@serializable``
dataclasses (the seed's ``RemoteMessage`` variants); a request carries the
pid to reply to, as in Erlang::

    Echo(content, reply_to)     ->  EchoReply(content, from_node)
    Compute(a, b, reply_to)     ->  ComputeReply(result, from_node)

1. node_a -> node_b: echo
2. node_c -> node_b: compute 42 + 58
3. node_b -> node_a: echo
4. round trip through three nodes: node_a spawns a relay on node_c
   (``spawn_remote`` by factory name: no code travels), then asks node_b to
   compute with the reply going to that relay (node_b has never heard of
   node_c: it dials it from the pid alone), which passes it back to node_a.

Every reply is awaited (no sleeps); the script prints each step and exits 0.
The nodes share one cookie: ``$JOERL_COOKIE``, else ``~/.joerl.cookie``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from joerl.actor import Actor, ActorContext
from joerl.node.node import DistributedSystem
from joerl.pid import Pid
from joerl.serialization import serializable

# -- the messages that cross nodes ---------------------------------------------------


@serializable("remote_actors::Echo")
@dataclass(frozen=True)
class Echo:
    content: str
    reply_to: Pid


@serializable("remote_actors::EchoReply")
@dataclass(frozen=True)
class EchoReply:
    content: str
    from_node: str


@serializable("remote_actors::Compute")
@dataclass(frozen=True)
class Compute:
    a: int
    b: int
    reply_to: Pid


@serializable("remote_actors::ComputeReply")
@dataclass(frozen=True)
class ComputeReply:
    result: int
    from_node: str


# -- the actors -------------------------------------------------------------------------


class Service(Actor):
    """A node's entry point: answers Echo and Compute to the pid inside them."""

    def __init__(self, node_name: str) -> None:
        self.node_name = node_name

    def started(self, ctx: ActorContext) -> None:
        print(f"[{self.node_name}] service started as {ctx.pid}")

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if isinstance(msg, Echo):
            print(f"[{self.node_name}] echo request {msg.content!r} from {msg.reply_to}")
            ctx.send(msg.reply_to, EchoReply(msg.content, self.node_name))
        elif isinstance(msg, Compute):
            print(f"[{self.node_name}] computing {msg.a} + {msg.b} for {msg.reply_to}")
            ctx.send(msg.reply_to, ComputeReply(msg.a + msg.b, self.node_name))

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        print(f"[{self.node_name}] service stopped ({reason})")


def relay(ctx: ActorContext, back_to: Pid) -> None:
    """Spawned remotely (by factory name): pass one reply on to ``back_to``."""
    msg = ctx.receive(timeout=10)
    print(f"[relay {ctx.pid}] got {msg} from {ctx.sender}; passing it to {back_to}")
    ctx.send(back_to, ("relayed", msg.result, msg.from_node))


def request(node: DistributedSystem, to_node: str, make: Any) -> Any:
    """From a fresh process on ``node``: send ``make(my_pid)`` to ``service``
    on ``to_node`` and return the reply."""
    box: dict[str, Any] = {}

    def client(ctx: ActorContext) -> None:
        ctx.send(("service", to_node), make(ctx.pid))
        box["reply"] = ctx.receive(timeout=10)

    node.spawn_fn(client).join(15)
    return box.get("reply")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="three joerl nodes in one process")
    ap.add_argument(
        "--epmd", default=None, metavar="HOST:PORT", help="port mapper (default $JOERL_EPMD_ADDRESS or 127.0.0.1:4369)"
    )
    args = ap.parse_args(argv)

    print("=== Remote actors: three nodes, one process ===")
    nodes: dict[str, DistributedSystem] = {}
    try:
        for name in ("node_a", "node_b", "node_c"):
            node = nodes[name] = DistributedSystem(name, "127.0.0.1:0", args.epmd)
            print(f"created {name}: id {node.node_id}, port {node.listen_port}")
            node.spawn(Service(name), name="service")
            node.register_factory("relay", relay, function=True)
        a, b, c = nodes["node_a"], nodes["node_b"], nodes["node_c"]
        full = {n.node_name for n in nodes.values()}  # name@host
        mine = sorted(i.name for i in a.list_nodes() if i.name in full)
        print(f"the port mapper at {a.epmd_address} lists {mine}")

        print("\n1. node_a -> node_b (echo)")
        reply = request(a, "node_b", lambda me: Echo("Hello from node_a!", me))
        print(f"[node_a] got {reply}")
        ok = reply == EchoReply("Hello from node_a!", "node_b")

        print("\n2. node_c -> node_b (compute)")
        reply = request(c, "node_b", lambda me: Compute(42, 58, me))
        print(f"[node_c] got {reply}")
        ok &= reply == ComputeReply(100, "node_b")

        print("\n3. node_b -> node_a (echo)")
        reply = request(b, "node_a", lambda me: Echo("Greetings from node_b!", me))
        print(f"[node_b] got {reply}")
        ok &= reply == EchoReply("Greetings from node_b!", "node_a")

        print("\n4. node_a -> node_b -> node_c -> node_a")

        def start(ctx: ActorContext) -> None:
            relay_pid = a.spawn_remote("node_c", "relay", ctx.pid)
            print(f"[node_a] spawned a relay on node_c: {relay_pid}")
            ctx.send(("service", "node_b"), Compute(10, 20, relay_pid))
            box["final"] = ctx.receive(timeout=10)

        box: dict[str, Any] = {}
        a.spawn_fn(start).join(30)
        print(f"[node_a] got {box.get('final')}")
        ok &= box.get("final") == ("relayed", 30, "node_b")
        print(f"\nlinks: node_a {a.nodes()}, node_b {b.nodes()}, node_c {c.nodes()}")
        print("\n--- Summary ---")
        print(f"{'ok' if ok else 'FAILED'}: {len(nodes)} nodes, request-reply across them, pids passed between nodes")
        print('In Erlang: {service, node_b} ! {echo, self(), <<"Hello">>}')
    finally:
        for node in reversed(list(nodes.values())):
            node.shutdown()
    print("Example completed!")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
