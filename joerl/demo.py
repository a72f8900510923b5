"""``python -m joerl demo``: a port mapper, three node processes and a tour of them.

The demo starts a private port mapper (on a free loopback port, so it never
disturbs a real one), three node processes (alpha, beta, gamma), and joins
them as a fourth node. It shows discovery, remote ping-pong with latency and
throughput, a message to a registered name on another node, a supervisor
whose child runs on another node surviving that node's ``kill -9``, and a
clean shutdown. It exits 0 when every step worked.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any

import gevent
from gevent import subprocess  # cooperative waits: the node keeps running meanwhile

from .actor import Actor
from .message import Down, NodeDown, NodeUp

PEERS = ("alpha", "beta", "gamma")


# -- the node processes ----------------------------------------------------------


def _pong(ctx: Any) -> None:
    while True:
        msg = ctx.receive()
        ctx.send(ctx.sender, msg)


def _counter(ctx: Any) -> None:
    """Counts ("n", i) messages; answers ("count", n) to ("report", pid)."""
    n = 0
    while True:
        msg = ctx.receive()
        if msg[0] == "n":
            n += 1
        elif msg[0] == "report":
            ctx.send(msg[1], ("count", n))


def _greeter(ctx: Any, node: str) -> None:
    while True:
        msg = ctx.receive()
        if isinstance(msg, tuple) and msg[0] == "hello":
            ctx.send(msg[1], f"hello {msg[2]}, this is {ctx.pid} on node {node}")


class Worker(Actor):
    """A supervised worker: answers ("where", pid) with its node's name."""

    def __init__(self, node: str) -> None:
        self.node = node

    def handle_message(self, msg: Any, ctx: Any) -> None:
        if isinstance(msg, tuple) and msg[0] == "where":
            ctx.send(msg[1], ("here", self.node, ctx.pid))


def node_main(argv: list[str]) -> int:
    """One demo node: registers its services, prints READY, runs until told to stop."""
    from .node.node import DistributedSystem

    parser = argparse.ArgumentParser(prog="python -m joerl demo-node")
    parser.add_argument("name")
    parser.add_argument("--epmd", required=True)
    parser.add_argument("--tick", type=float, default=2.0)
    args = parser.parse_args(argv)
    node = DistributedSystem(args.name, "127.0.0.1:0", args.epmd, start_epmd=False, tick_time=args.tick)
    system = node.system
    system.register("pong", system.spawn_fn(_pong).pid)
    system.register("counter", system.spawn_fn(_counter).pid)
    system.register("greeter", system.spawn_fn(_greeter, args.name).pid)
    node.register_factory("worker", lambda: Worker(args.name))
    stop = gevent.event.Event()

    def control(ctx: Any) -> None:
        ctx.receive(lambda m: m == "stop")
        stop.set()

    system.register("control", system.spawn_fn(control).pid)
    print(f"READY port={node.listen_port}", flush=True)
    stop.wait()
    node.shutdown()
    return 0


# -- the tour ----------------------------------------------------------------------


def _say(text: str = "") -> None:
    print(text, flush=True)


def _start(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("READY port="):
            return proc, int(line.split("port=")[1].split()[0])
    proc.kill()
    raise RuntimeError(f"{' '.join(cmd)} did not start")


def _observe(node: Any, port: int) -> None:
    """Serve the web observer of ``node`` on ``port`` until SIGINT or SIGTERM."""
    from .cli.observer import wait_for_stop
    from .observer import serve

    with serve(node, port) as observer:
        _say(f"\n-- the cluster keeps running: web observer at {observer.url} (Ctrl+C to finish) --")
        if "/metrics" in observer.app.mounts:
            _say(f"  Prometheus metrics at {observer.url}metrics")
        wait_for_stop()


def main(argv: list[str]) -> int:
    from .node.node import DistributedSystem
    from .supervisor import ChildSpec, Supervisor, start_supervisor, which_children

    parser = argparse.ArgumentParser(prog="python -m joerl demo")
    parser.add_argument("--messages", type=int, default=50_000, help="one-way messages to send")
    parser.add_argument("--round-trips", type=int, default=5_000, help="ping-pong round trips")
    parser.add_argument(
        "--observe",
        type=int,
        metavar="PORT",
        default=None,
        help="after the steps, serve the web observer (and /metrics) on 127.0.0.1:PORT until Ctrl+C (0: a free port)",
    )
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env.setdefault("JOERL_COOKIE", "joerl-demo-" + os.urandom(6).hex())
    os.environ["JOERL_COOKIE"] = env["JOERL_COOKIE"]
    procs: dict[str, subprocess.Popen[str]] = {}
    _say("== joerl demo: a port mapper, three node processes, and this one ==")
    epmd, epmd_port = _start([sys.executable, "-m", "joerl.epmd", "127.0.0.1:0", "--log-level", "warning"], env)
    epmd_address = f"127.0.0.1:{epmd_port}"
    _say(f"port mapper (joerl-epmd, speaks Erlang's EPMD protocol) on {epmd_address}, pid {epmd.pid}")
    node = None
    try:
        for name in PEERS:
            procs[name], port = _start([sys.executable, "-m", "joerl", "demo-node", name, "--epmd", epmd_address], env)
            _say(f"node {name:5} started: OS pid {procs[name].pid}, listening on 127.0.0.1:{port}")
        node = DistributedSystem("demo", "127.0.0.1:0", epmd_address, start_epmd=False, tick_time=2.0)
        this = node  # (the closures below run while it is set)
        system = node.system

        _say("\n-- discovery: what the port mapper knows --")
        for info in sorted(node.list_nodes(), key=lambda i: i.name):
            _say(f"  {info.name:6} {info.host}:{info.port}  creation {info.creation}")

        _say("\n-- remote ping-pong with alpha --")
        result: dict[str, Any] = {}

        def pinger(ctx: Any, n: int) -> None:
            ctx.send(("pong", "alpha"), ("ping", -1, ctx.pid))
            first = ctx.receive(timeout=10)
            pong = ctx.sender  # the remote pid, learnt from the reply
            result["pong"] = pong
            t0 = time.perf_counter()
            for i in range(n):
                ctx.send(pong, ("ping", i))
                ctx.receive(timeout=10)
            result["rtt"] = (time.perf_counter() - t0) / n
            result["first"] = first

        system.spawn_fn(pinger, args.round_trips).join(60)
        if "rtt" not in result:
            raise RuntimeError("ping-pong with alpha failed")
        _say(f"  alpha's pong process is {result['pong']} (a remote pid: node id {result['pong'].node})")
        _say(
            f"  {args.round_trips} round trips: {result['rtt'] * 1e6:.0f} us each, {1 / result['rtt']:,.0f} round trips/s"
        )

        _say("\n-- one-way throughput to beta --")

        def blaster(ctx: Any, n: int) -> None:
            t0 = time.perf_counter()
            for i in range(n):
                ctx.send(("counter", "beta"), ("n", i))
            ctx.send(("counter", "beta"), ("report", ctx.pid))
            reply = ctx.receive(timeout=60)
            result["count"] = reply[1]
            result["oneway"] = n / (time.perf_counter() - t0)

        system.spawn_fn(blaster, args.messages).join(120)
        _say(
            f"  beta counted {result.get('count')} of {args.messages} messages: {result.get('oneway', 0):,.0f} messages/s"
        )
        if result.get("count") != args.messages:
            raise RuntimeError("messages were lost")

        _say("\n-- a message to a registered name on gamma: ('greeter', 'gamma') ! ... --")

        def greet(ctx: Any) -> None:
            ctx.send(("greeter", "gamma"), ("hello", ctx.pid, "demo"))
            result["greeting"] = ctx.receive(timeout=10)

        system.spawn_fn(greet).join(15)
        _say(f"  reply: {result.get('greeting')}")

        _say("\n-- failure across nodes: a supervisor here, its worker on beta; kill -9 beta --")
        events: list[Any] = []
        got_events = gevent.event.Event()

        def watcher(ctx: Any) -> None:
            this.monitor_nodes(ctx.pid)
            ctx.send(("control", "beta"), "ping")  # make sure a link to beta is up
            while True:
                msg = ctx.receive()
                if isinstance(msg, (NodeUp, NodeDown, Down)):
                    events.append((time.monotonic(), msg))
                    if any(isinstance(m, NodeDown) for _, m in events) and any(isinstance(m, Down) for _, m in events):
                        got_events.set()
                elif isinstance(msg, tuple) and msg[0] == "monitor":
                    ctx.monitor(msg[1])
                    msg[2].set()

        watch = system.spawn_fn(watcher)
        placement = ["beta", "gamma", "alpha"]

        def start_worker(ctx: Any) -> Any:
            for target in list(placement):
                try:
                    return this.spawn_remote(target, "worker", link=True, caller=ctx)
                except Exception:  # noqa: BLE001 - that node is gone: try the next
                    placement.remove(target)
            raise RuntimeError("no node left to run the worker")

        sup = start_supervisor(
            system, Supervisor("one_for_one", [ChildSpec("worker", start_worker)], intensity=5, period=10)
        )
        worker = which_children(system, sup)[0].pid
        _say(
            f"  supervisor {sup.pid} started worker {worker} on {node.node_of(worker) if worker is not None else None}"
        )
        monitoring = gevent.event.Event()
        system.send(watch.pid, ("monitor", worker, monitoring))
        monitoring.wait(5)
        killed_at = time.monotonic()
        procs["beta"].send_signal(signal.SIGKILL)
        procs["beta"].wait(10)
        _say(f"  kill -9 {procs['beta'].pid} (beta)")
        if not got_events.wait(15):
            raise RuntimeError("the loss of beta was not seen")
        for at, msg in events:
            if not isinstance(msg, NodeUp):
                _say(f"  +{(at - killed_at) * 1000:.0f} ms  {msg}")

        def moved() -> Any:
            kids = which_children(system, sup)
            pid = kids[0].pid if kids else None
            return pid if pid is not None and pid != worker else None

        deadline = time.monotonic() + 15
        new_worker = moved()
        while new_worker is None and time.monotonic() < deadline:
            gevent.sleep(0.05)
            new_worker = moved()
        if new_worker is None:
            raise RuntimeError("the supervisor did not restart the worker")

        def ask_where(ctx: Any) -> None:
            ctx.send(new_worker, ("where", ctx.pid))
            result["where"] = ctx.receive(timeout=10)

        system.spawn_fn(ask_where).join(15)
        _say(f"  the supervisor restarted the worker as {new_worker}; it answers from node {result['where'][1]}")

        if args.observe is not None:
            _observe(node, args.observe)

        _say("\n-- clean shutdown --")
        for name in ("alpha", "gamma"):
            system.send(("control", name), "stop")
        for name in ("alpha", "gamma"):
            code = procs[name].wait(15)
            _say(f"  node {name} exited with status {code}")
            if code != 0:
                raise RuntimeError(f"node {name} exited with {code}")
        node.shutdown()
        node = None
        _say("  node demo shut down; stopping the port mapper")
        _say("\ndemo finished: all steps worked")
        return 0
    finally:
        if node is not None:
            node.shutdown()
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        epmd.terminate()
        try:
            epmd.wait(5)
        except subprocess.TimeoutExpired:
            epmd.kill()
