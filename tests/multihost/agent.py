"""A joerl node on a simulated host, driven by a test through its standard input.

Usage::

    python agent.py NAME [--epmd HOST:PORT] [--listen HOST:PORT] [--advertise HOST]
                         [--tick S] [--no-global] [--discover KIND:ITEMS]

The node registers with its own host's port mapper (the harness starts one
per host) unless ``--epmd`` names a shared one; ``--discover
static:n1@alpha,n2@beta`` or ``epmd:alpha,beta`` runs a discovery strategy.

The cookie comes from ``$JOERL_COOKIE``. Prints ``READY port=N node=NAME
creation=C`` once registered, then reads one JSON request a line,
``{"id": N, "op": OP, ...}``, and answers each with ``REPLY {"id": N,
"elapsed": S, ...}`` (S: the seconds it took)
(requests run concurrently, so a slow one does not hold the others).
Things that happen on their own are ``EVENT {"kind": K, "t": T, ...}`` lines,
``T`` being ``time.monotonic()``, which every namespace of the machine shares:
``nodeup`` / ``nodedown`` (every node event), ``exit`` / ``down`` (what a
``watch`` sees), ``anchor_exit`` (an exit signal the ``anchor`` got),
``conflict`` (a global name this node's process lost).

Its processes: ``echo`` (``("ping", n, pid)`` -> ``("pong", n)``, ``("whois",
pid)`` -> ``("pid", echo)``), ``anchor`` (traps exits, reports them; answers
``whois`` too), ``stream`` (numbered messages ``("s", tag, seq)`` from any
number of senders: per tag the count, the highest, order violations
(duplicates or reorderings) and gaps), the GenServer ``store`` (``("echo",
x)`` -> ``x``; ``("hold",)`` is never answered), and the ``worker`` factory
for ``spawn_remote``. The operations are the ``op_*`` functions below.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event

from joerl import gen_server
from joerl.actor import ActorContext
from joerl.gen_server import GenServer, NoReply, Reply
from joerl.message import Down, Exit, NodeDown, NodeUp
from joerl.node.node import DistributedSystem
from joerl.pid import Pid
from joerl.system import From
from joerl.testing import stdin_lines

WAIT = 20.0


def emit(kind: str, body: dict[str, Any]) -> None:
    sys.stdout.write(f"{kind} {json.dumps(body, default=str)}\n")
    sys.stdout.flush()


def event(kind: str, **fields: Any) -> None:
    emit("EVENT", {"kind": kind, "t": time.monotonic(), **fields})


def echo(ctx: ActorContext) -> None:
    while True:
        msg = ctx.receive()
        if msg[0] == "ping":
            ctx.send(msg[2], ("pong", msg[1]))
        elif msg[0] == "whois":
            ctx.send(msg[1], ("pid", ctx.pid))


def anchor(ctx: ActorContext, node: DistributedSystem) -> None:
    ctx.trap_exit(True)
    while True:
        msg = ctx.receive()
        if isinstance(msg, Exit):
            event("anchor_exit", node=node.node_of(msg.pid), reason=str(msg.reason))
        elif msg[0] == "whois":
            ctx.send(msg[1], ("pid", ctx.pid))


def stream(ctx: ActorContext) -> None:
    tallies: dict[str, dict[str, Any]] = {}
    while True:
        msg = ctx.receive()
        if msg[0] == "s":
            t = tallies.setdefault(msg[1], {"received": 0, "highest": -1, "violations": 0, "gaps": []})
            seq = msg[2]
            if seq > t["highest"]:
                if seq > t["highest"] + 1:
                    t["gaps"].append([t["highest"] + 1, seq - 1])
                t["highest"] = seq
            else:
                t["violations"] += 1
            t["received"] += 1
        elif msg[0] == "report":
            ctx.send(msg[2], ("report", tallies.get(msg[1])))


def worker(ctx: ActorContext) -> None:
    while True:
        msg = ctx.receive()
        if msg[0] == "ping":
            ctx.send(msg[2], ("pong", msg[1]))
        elif msg[0] == "die":
            ctx.stop(msg[1])


def node_events(ctx: ActorContext, node: DistributedSystem) -> None:
    node.monitor_nodes(ctx.pid)
    while True:
        msg = ctx.receive()
        if isinstance(msg, NodeUp):
            event("nodeup", node=msg.node)
        elif isinstance(msg, NodeDown):
            event("nodedown", node=msg.node, reason=str(msg.reason))


class Store(GenServer):
    def handle_call(self, request: Any, from_: From, state: Any) -> Reply | NoReply:
        if request[0] == "hold":
            return NoReply()
        return Reply(request[1])


class Agent:
    """The operations a test asks for (``op_NAME(**request)``)."""

    def __init__(self, node: DistributedSystem) -> None:
        self.node = node
        self.streams: dict[str, dict[str, Any]] = {}

    def ask(self, fn: Callable[[ActorContext], Any], timeout: float = WAIT) -> Any:
        """Run ``fn`` in a new process of this node; its result."""
        box: dict[str, Any] = {}

        def body(ctx: ActorContext) -> None:
            try:
                box["result"] = fn(ctx)
            except Exception as exc:  # answered to the test, not a crash of this node
                box["error"] = exc

        g = self.node.spawn_fn(body)
        g.join(timeout + 5)
        if "error" in box:
            raise box["error"]
        if "result" not in box:
            raise TimeoutError(f"no result within {timeout + 5}s")
        return box["result"]

    def whois(self, ctx: ActorContext, name: str, node: str) -> Pid:
        ctx.send((name, node), ("whois", ctx.pid))
        msg = ctx.receive(match=lambda m: isinstance(m, tuple) and m[0] == "pid", timeout=WAIT)
        return msg[1]  # type: ignore[no-any-return]

    def op_connect(self, node: str, timeout: float = 10.0) -> dict[str, Any]:
        t0 = time.monotonic()
        ok = self.node.connect_to_node(node, timeout=timeout)
        return {"ok": ok, "seconds": time.monotonic() - t0}

    def op_disconnect(self, node: str) -> dict[str, Any]:
        return {"ok": self.node.disconnect_node(node)}

    def op_nodes(self) -> dict[str, Any]:
        return {"nodes": sorted(self.node.nodes())}

    def op_ping(self, node: str, timeout: float = 5.0, by: str = "name") -> dict[str, Any]:
        def run(ctx: ActorContext) -> dict[str, Any]:
            dest: Any = self.whois(ctx, "echo", node) if by == "pid" else ("echo", node)
            t0 = time.monotonic()
            ctx.send(dest, ("ping", 1, ctx.pid))
            ctx.receive(match=lambda m: m == ("pong", 1), timeout=timeout)
            return {"ok": True, "rtt": time.monotonic() - t0, "dest": str(dest)}

        return dict(self.ask(run, timeout))

    def op_call(self, node: str, value: Any = None, hold: bool = False, timeout: float = 5.0) -> dict[str, Any]:
        t0 = time.monotonic()
        request = ("hold",) if hold else ("echo", value)
        result = self.node.call(("store", node), request, timeout=timeout)
        return {"ok": True, "value": result, "seconds": time.monotonic() - t0}

    def op_spawn(self, node: str) -> dict[str, Any]:
        """Spawn a ``worker`` on ``node``, ping it by pid."""

        def run(ctx: ActorContext) -> dict[str, Any]:
            pid = self.node.spawn_remote(node, "worker")
            ctx.send(pid, ("ping", 7, ctx.pid))
            ctx.receive(match=lambda m: m == ("pong", 7), timeout=WAIT)
            ctx.send(pid, ("die", "normal"))
            return {"ok": True, "node": self.node.node_of(pid)}

        return dict(self.ask(run))

    def op_link_die(self, node: str, reason: str) -> dict[str, Any]:
        """Link to and monitor a ``worker`` spawned on ``node``, end it with ``reason``:
        the reasons of the Exit and the Down that arrive."""

        def run(ctx: ActorContext) -> dict[str, Any]:
            ctx.trap_exit(True)
            pid = self.node.spawn_remote(node, "worker")
            ctx.link(pid)
            ctx.monitor(pid)
            ctx.send(pid, ("die", reason))
            got = ctx.receive(match=Exit, timeout=WAIT)
            down = ctx.receive(match=Down, timeout=WAIT)
            return {"exit": str(got.reason), "down": str(down.reason)}

        return dict(self.ask(run))

    def op_watch(self, node: str) -> dict[str, Any]:
        """A process that links to ``node``'s anchor and monitors it, for good:
        ``exit`` and ``down`` events."""
        ready = gevent.event.Event()
        found: dict[str, Any] = {}

        def run(ctx: ActorContext) -> None:
            ctx.trap_exit(True)
            pid = self.whois(ctx, "anchor", node)
            ctx.link(pid)
            ctx.monitor(pid)
            found["pid"] = str(pid)
            ready.set()
            while True:
                msg = ctx.receive(match=(Exit, Down))
                kind = "exit" if isinstance(msg, Exit) else "down"
                event(kind, node=node, reason=str(msg.reason))
                if kind == "down":
                    return

        self.node.spawn_fn(run)
        if not ready.wait(WAIT):
            raise TimeoutError(f"the anchor of {node} did not answer")
        return {"ok": True, "anchor": found["pid"]}

    def op_stream_start(self, node: str, tag: str, rate: float) -> dict[str, Any]:
        """Send ``("s", tag, seq)`` to ``("stream", node)``, ``rate`` a second, until ``stream_stop``."""
        stats = self.node.stats
        state = {
            "attempts": 0,
            "sent0": stats.sent,
            "dropped0": stats.dropped_unreachable,
            "unconfirmed0": stats.unconfirmed_at_link_down,
            "stop": False,
        }
        self.streams[tag] = state

        def run(ctx: ActorContext) -> None:
            t0 = time.monotonic()
            while not state["stop"]:
                ctx.send(("stream", node), ("s", tag, state["attempts"]))
                state["attempts"] += 1
                ahead = t0 + state["attempts"] / rate - time.monotonic()
                if ahead > 0:
                    gevent.sleep(ahead)  # the pace of the stream

        state["greenlet"] = self.node.spawn_fn(run)
        return {"ok": True}

    def op_stream_stop(self, tag: str) -> dict[str, Any]:
        state = self.streams.pop(tag)
        state["stop"] = True
        state["greenlet"].join(WAIT)
        stats = self.node.stats
        return {
            "attempts": state["attempts"],
            "sent": stats.sent - state["sent0"],
            "dropped": stats.dropped_unreachable - state["dropped0"],
            "unconfirmed": stats.unconfirmed_at_link_down - state["unconfirmed0"],
        }

    def op_stream_report(self, tag: str) -> dict[str, Any]:
        def run(ctx: ActorContext) -> Any:
            ctx.send("stream", ("report", tag, ctx.pid))
            return ctx.receive(match=lambda m: isinstance(m, tuple) and m[0] == "report", timeout=WAIT)[1]

        return {"report": self.ask(run)}

    def op_stats(self) -> dict[str, Any]:
        s = self.node.stats
        return {
            "sent": s.sent,
            "received": s.received,
            "dropped_unreachable": s.dropped_unreachable,
            "dropped_stale": s.dropped_stale,
            "connects": s.connects,
            "connect_failures": s.connect_failures,
            "runtime_dropped": self.node.system.stats.dropped,
        }

    def op_global_register(self, name: str) -> dict[str, Any]:
        """Register a new process as ``name`` cluster-wide; it reports a lost conflict."""
        box: dict[str, Any] = {}
        done = gevent.event.Event()

        def run(ctx: ActorContext) -> None:
            box["ok"] = self.node.global_register(name, ctx.pid)
            box["pid"] = str(ctx.pid)
            done.set()
            while True:
                msg = ctx.receive()
                if isinstance(msg, tuple) and msg[0] == "global_name_conflict":
                    event("conflict", name=msg[1], winner=str(msg[2]), loser=str(ctx.pid))

        self.node.spawn_fn(run)
        done.wait(WAIT)
        return box

    def op_global_whereis(self, name: str) -> dict[str, Any]:
        pid = self.node.global_whereis(name)
        return {"pid": None if pid is None else str(pid), "node": None if pid is None else self.node.node_of(pid)}


def serve(agent: Agent) -> None:
    """Read requests from standard input until it closes; answer each in its own greenlet."""

    def answer(request: dict[str, Any]) -> None:
        rid = request.pop("id")
        op = request.pop("op")
        t0 = time.monotonic()
        try:
            body = getattr(agent, f"op_{op}")(**request)
        except Exception as exc:  # the test reads it; the node carries on
            body = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
        emit("REPLY", {"id": rid, "elapsed": time.monotonic() - t0, **body})

    for line in stdin_lines():
        if line.strip():
            gevent.spawn(answer, json.loads(line))


def discovery(spec: str | None, interval: float) -> Any:
    """``static:a@h1,b@h2`` or ``epmd:h1,h2``: a discovery strategy (None: none)."""
    if not spec:
        return None
    from joerl.discovery import EpmdDiscovery, StaticDiscovery

    kind, _, items = spec.partition(":")
    names = [item for item in items.split(",") if item]
    if kind == "static":
        return StaticDiscovery(names, interval=interval)
    if kind == "epmd":
        return EpmdDiscovery(names, interval=interval)
    raise SystemExit(f"unknown discovery {spec!r}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="agent")
    ap.add_argument("name", help="the node's name (without @host: this host's name)")
    ap.add_argument("--epmd", default=None, help="a shared port mapper (default: this host's, on 127.0.0.1)")
    ap.add_argument("--listen", default="0.0.0.0:0")
    ap.add_argument("--advertise", default=None)
    ap.add_argument("--tick", type=float, default=60.0)
    ap.add_argument("--no-global", action="store_true", help="no cluster-wide name server")
    ap.add_argument("--discover", default=None, metavar="KIND:ITEMS", help="static:NODE,... or epmd:HOST,...")
    ap.add_argument("--discover-interval", type=float, default=0.5)
    args = ap.parse_args(argv)
    if not os.environ.get("JOERL_COOKIE"):
        ap.error("set $JOERL_COOKIE")
    node = DistributedSystem(
        args.name,
        args.listen,
        args.epmd,
        start_epmd=False,
        tick_time=args.tick,
        advertise_host=args.advertise,
        global_names=not args.no_global,
        discovery=discovery(args.discover, args.discover_interval),
    )
    try:
        node.spawn_fn(echo, name="echo")
        node.spawn_fn(anchor, node, name="anchor")
        node.spawn_fn(stream, name="stream")
        node.spawn_fn(node_events, node)
        node.register_factory("worker", worker, function=True)
        gen_server.start(node.system, Store(), name="store")
        print(f"READY port={node.listen_port} node={node.node_name} creation={node.creation}", flush=True)
        serve(Agent(node))
    finally:
        node.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
