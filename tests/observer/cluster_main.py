"""A small cluster with the web observer, run as a child process by the browser tests.

Usage::

    python tests/observer/cluster_main.py [--token TOKEN]

Starts a port mapper and two nodes, ``obs_a`` and ``obs_b`` (linked), in this
process; on ``obs_a``: a supervisor ``top_sup`` with a GenServer ``store``
and a worker ``worker``, an idle process ``idler`` with three queued
messages, a ping-pong pair; on ``obs_b``: a process ``remote_idler``. Serves
the observer of ``obs_a`` and prints ``READY url=URL a=NAME b=NAME``. Then
reads commands on its standard input, one a line:

``spawn NAME``
    spawns an idle process registered as NAME on ``obs_a``; prints ``SPAWNED NAME pid=PID``.
``kill NAME``
    kills it; prints ``KILLED NAME`` once it is gone.

and shuts everything down when its standard input closes.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import gevent

from joerl.actor import ActorContext
from joerl.gen_server import GenServer, Reply
from joerl.observer import serve
from joerl.supervisor import ChildSpec, Supervisor
from joerl.testing import node_cluster, stdin_lines


class Store(GenServer):
    def init(self, args: Any) -> Any:
        return {"orders": ["apple", "pear"], "total": 2}

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply(state["total"])


def idle(ctx: ActorContext) -> None:
    ctx.receive(lambda m: m == "never")


def pong(ctx: ActorContext) -> None:
    while True:
        ctx.send(ctx.receive(), "pong")


def ping(ctx: ActorContext, other: Any) -> None:
    while True:
        ctx.send(other, ctx.pid)
        ctx.receive()
        gevent.sleep(0.01)  # pacing: a steady, modest message rate for the charts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", default=None)
    args = parser.parse_args()
    with node_cluster("obs_a", "obs_b") as (a, b):
        a.connect_to_node(b.node_name)
        children = [ChildSpec.worker("store", Store, name="store"), ChildSpec.worker("worker", lambda: _Idle())]
        a.spawn(Supervisor("one_for_one", children), name="top_sup")
        idler = a.spawn_fn(idle, name="idler")
        for i in range(3):
            idler.send(("queued", i))
        ponger = a.spawn_fn(pong, name="ponger")
        a.spawn_fn(ping, ponger.pid, name="pinger")
        b.spawn_fn(idle, name="remote_idler")
        with serve(a, token=args.token, interval=0.5) as observer:
            print(f"READY url={observer.url} a={a.node_name} b={b.node_name}", flush=True)
            _commands(a)
    return 0


class _Idle(GenServer):
    def init(self, args: Any) -> Any:
        return None


def _commands(node: Any) -> None:
    spawned: dict[str, Any] = {}
    for line in stdin_lines():
        words = line.split()
        if words[:1] == ["spawn"]:
            ref = spawned[words[1]] = node.spawn_fn(idle, name=words[1])
            print(f"SPAWNED {words[1]} pid={ref.pid}", flush=True)
        elif words[:1] == ["kill"]:
            ref = spawned.pop(words[1])
            node.system.exit(ref.pid, "kill")
            ref.join(5.0)
            print(f"KILLED {words[1]}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
