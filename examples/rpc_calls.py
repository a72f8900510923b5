"""Remote procedure calls between nodes (joerl.rpc): only registered functions run.

Runs by itself: a private port mapper and three nodes (client, calc, store) in
this one process, on loopback. ``calc`` registers a few functions by name;
``client`` calls them, sees a remote exception with its traceback, asks for
a name nobody registered, runs out of time, and calls one name on every node
at once.

    python examples/rpc_calls.py
"""

from __future__ import annotations

import sys

from gevent.event import Event

from joerl import rpc
from joerl.epmd import EpmdServer
from joerl.errors import CallTimeout, NodeUnreachable
from joerl.node.node import DistributedSystem
from joerl.rpc import RpcError


def divide(x: float, y: float) -> float:
    return x / y


def main() -> int:
    epmd = EpmdServer("127.0.0.1:0")
    epmd.start()
    address = f"127.0.0.1:{epmd.port}"
    nodes = [
        DistributedSystem(name, "127.0.0.1:0", address, cookie="rpc-example", start_epmd=False)
        for name in ("client", "calc", "store")
    ]
    never = Event()
    try:
        client, calc, store = nodes
        # What peers may call on calc: nothing else runs there (no code travels).
        rpc.register(calc, "math:add", lambda x, y: x + y)  # an Erlang {math, add} maps to "math:add"
        rpc.register(calc, "math:divide", divide)
        rpc.register(calc, "slow", lambda: never.wait())
        for node in nodes:
            rpc.register(node, "node:name", lambda node=node: node.node_name)

        print(f"calc says 20 + 22 = {rpc.call(client, 'calc', 'math:add', 20, 22)}", flush=True)
        print(f"calc says 1 / 4 = {rpc.call(client, 'calc', 'math:divide', 1, 4)}", flush=True)
        try:
            rpc.call(client, "calc", "math:divide", 1, 0)
        except RpcError as exc:
            last = exc.remote_traceback.strip().splitlines()[-1]
            print(f"remote error: {exc.remote_type}: {exc.remote_message} (traceback ends {last!r})", flush=True)
        try:
            rpc.call(client, "calc", "os:system", "rm -rf /")
        except RpcError as exc:
            print(f"refused: {exc}", flush=True)
        try:
            rpc.call(client, "calc", "slow", timeout=0.2)
        except CallTimeout:
            print("slow: no answer within 0.2 s", flush=True)
        try:
            rpc.call(client, "nowhere", "node:name", timeout=2.0)
        except NodeUnreachable as exc:
            print(f"unreachable: {exc}", flush=True)

        results, errors = rpc.multicall(client, ["client", "calc", "store", "nowhere"], "node:name", timeout=2.0)
        print(f"multicall results: {dict(sorted(results.items()))}", flush=True)
        print(f"multicall errors: {sorted(errors)}", flush=True)
        rpc.cast(client, "store", "node:name")  # run there, answer nobody
        print("rpc done", flush=True)
        return 0
    finally:
        never.set()
        for node in reversed(nodes):
            node.shutdown()
        epmd.stop()


if __name__ == "__main__":
    sys.exit(main())
