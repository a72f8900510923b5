"""Ping-pong between two OS processes: the ``remote_ping_pong`` example of the
Rust joerl (https://crates.io/crates/joerl, "the seed"), in Python.

Run the server, then the client, in two terminals::

    python examples/remote_ping_pong.py server
    python examples/remote_ping_pong.py client

The server is node ``pong_server``; its process ``pong`` answers every
``("ping", n, reply_to)`` with ``("pong", n)``, sent straight to the pid that
came inside the ping. It runs until Ctrl+C, or, with ``--clients N``, until N
clients have said goodbye.

The client is node ``ping_client``. It waits for the server node to appear
at the port mapper, sends ``--count`` pings (default 5) to ``pong`` on the
server by name (``{pong, pong_server} ! Msg`` in Erlang), one at a time,
prints each pong with its round-trip time, says goodbye, and exits 0 once
every pong has come back (1 if one did not).

Options (both): ``--epmd HOST:PORT``, the port mapper (default
``$JOERL_EPMD_ADDRESS``, else ``127.0.0.1:4369``, where one is started if
none answers); ``--name NAME``; ``--port N``, where to listen (default 0:
any free port; peers find it through the port mapper). Client: ``--server
NAME``, ``--count N``, ``--wait S`` (how long to wait for the server).
Both processes need the same cookie: ``$JOERL_COOKIE``, else ``~/.joerl.cookie``.
"""

from __future__ import annotations

import argparse
import sys
import time

import gevent

import joerl
from joerl.actor import ActorContext
from joerl.errors import ReceiveTimeout
from joerl.message import NodeDown, NodeUp
from joerl.node.names import node_name
from joerl.node.node import DistributedSystem


def wait_for_node(node: DistributedSystem, name: str, timeout: float) -> bool:
    """Link with ``name`` once it is registered at the port mapper (polled, bounded)."""
    deadline = time.monotonic() + timeout
    while not any(info.name == node_name(name) for info in node.list_nodes()):  # listed as name@host
        if time.monotonic() >= deadline:
            return False
        gevent.sleep(0.2)
    return node.connect_to_node(name)


def run_server(args: argparse.Namespace) -> int:
    node = DistributedSystem(args.name or "pong_server", f"127.0.0.1:{args.port}", args.epmd)

    def pong(ctx: ActorContext) -> None:
        node.monitor_nodes(ctx.pid)
        goodbyes = 0
        while True:
            msg = ctx.receive()
            if isinstance(msg, NodeUp):
                print(f"[server] node {msg.node} connected")
            elif isinstance(msg, NodeDown):
                print(f"[server] node {msg.node} disconnected ({msg.reason})")
            elif msg[0] == "ping":
                _, n, reply_to = msg
                print(f"[server] ping {n} from {reply_to}")
                ctx.send(reply_to, ("pong", n))
            elif msg[0] == "bye":
                goodbyes += 1
                print(f"[server] {msg[1]} said goodbye ({goodbyes} so far)")
                if args.clients and goodbyes >= args.clients:
                    ctx.system.shutdown()  # ends joerl.run's wait, as a signal does

    def start(node: DistributedSystem) -> None:
        node.spawn_fn(pong, name="pong")
        print(
            f"[server] node {node.node_name} listening on port {node.listen_port} "
            f"(port mapper {node.epmd_address}); process 'pong' waits for pings"
        )

    status = joerl.run(start, node)  # until Ctrl+C or SIGTERM (or enough goodbyes); then a clean shutdown
    print("[server] stopped")
    return status


def run_client(args: argparse.Namespace) -> int:
    server = args.server
    with DistributedSystem(args.name or "ping_client", f"127.0.0.1:{args.port}", args.epmd) as node:
        print(f"[client] node {node.node_name} up; waiting for node {server}")
        if not wait_for_node(node, server, args.wait):
            print(f"[client] node {server} did not appear within {args.wait}s")
            return 1
        print(f"[client] linked with {server}")
        result: dict[str, int] = {"pongs": 0}

        def ping(ctx: ActorContext) -> None:
            for n in range(1, args.count + 1):
                t0 = time.perf_counter()
                ctx.send(("pong", server), ("ping", n, ctx.pid))
                try:
                    reply = ctx.receive(match=lambda m, n=n: m == ("pong", n), timeout=5)
                except ReceiveTimeout:
                    print(f"[client] no pong {n} within 5s")
                    return
                print(f"[client] {reply[0]} {reply[1]} from {server} in {(time.perf_counter() - t0) * 1000:.2f} ms")
                result["pongs"] += 1
            ctx.send(("pong", server), ("bye", node.node_name))

        node.spawn_fn(ping).join()
        print(f"[client] done: {result['pongs']} of {args.count} pongs")
        return 0 if result["pongs"] == args.count else 1


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="ping-pong between two joerl nodes (two OS processes)")
    ap.add_argument("role", choices=["server", "client"])
    ap.add_argument(
        "--epmd", default=None, metavar="HOST:PORT", help="port mapper (default $JOERL_EPMD_ADDRESS or 127.0.0.1:4369)"
    )
    ap.add_argument("--name", default=None, help="this node's name (default pong_server / ping_client)")
    ap.add_argument("--port", type=int, default=0, help="listen port (default 0: any)")
    ap.add_argument("--server", default="pong_server", help="client: the server node's name")
    ap.add_argument("--count", type=int, default=5, help="client: pings to send (default 5)")
    ap.add_argument("--wait", type=float, default=60.0, help="client: seconds to wait for the server (default 60)")
    ap.add_argument(
        "--clients", type=int, default=0, help="server: stop after N clients said goodbye (default: run until Ctrl+C)"
    )
    args = ap.parse_args(argv)
    return run_server(args) if args.role == "server" else run_client(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
