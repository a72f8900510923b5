"""Work that survives the death of the machine doing it: remote spawn, a
remote monitor, and recovery from a node killed with ``kill -9``.

Run::

    python examples/distributed_supervision.py [--epmd HOST:PORT]

This process is node ``boss``. It starts two worker nodes as OS processes
(this same file with ``--worker-node NAME``), each offering a ``summer``
factory: a process that sums the squares of a range of numbers, chunk by
chunk, reporting each chunk to the boss. Then the boss's ``manager``:

1. spawns ``summer`` on ``worker1`` (``spawn_remote(..., monitor=True)``:
   by factory name, no code travels) and watches the node too
   (``monitor_node``);
2. after three progress reports, kills worker1's OS process (SIGKILL);
3. gets ``Down(ref, pid, "noconnection")`` for the summer and
   ``NodeDown("worker1@<host>", "noconnection")``, and prints how long that took;
4. restarts the rest of the work on ``worker2`` from the last chunk it
   heard of (messages from one process arrive in order, and before its
   Down, so nothing is counted twice or lost);
5. checks the total against a local computation, stops worker2 and exits 0.

A real system would put this under a supervisor (a ``ChildSpec`` whose
start function calls ``spawn_remote`` on a node that is up); the moving
parts are the ones shown here. All nodes use a tick time of 1 s (``--tick``),
so even a node that hangs rather than dies is noticed within about a second.

Options: ``--epmd HOST:PORT``, the port mapper (default
``$JOERL_EPMD_ADDRESS``, else ``127.0.0.1:4369``, where one is started if
none answers). The nodes share one cookie: ``$JOERL_COOKIE``, else
``~/.joerl.cookie``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import gevent
from gevent import subprocess

from joerl.actor import ActorContext
from joerl.message import Down, NodeDown
from joerl.node.names import node_name
from joerl.node.node import DistributedSystem
from joerl.pid import Pid

START, END, CHUNK = 1, 100_001, 10_000


def summer(ctx: ActorContext, manager: Pid, lo: int, hi: int, chunk: int) -> None:
    """Runs on a worker node: sum i*i over [lo, hi), reporting every chunk."""
    print(f"  [{ctx.system.node_name}] summer {ctx.pid} starts on [{lo}, {hi})", flush=True)
    while lo < hi:
        top = min(lo + chunk, hi)
        ctx.send(manager, ("progress", top, sum(i * i for i in range(lo, top))))
        lo = top
        gevent.sleep(0.05)  # stands for slow work
    ctx.send(manager, ("finished", hi))


def worker_node(name: str, epmd: str, tick: float) -> int:
    """The program of a worker node: serve ``summer`` until standard input closes."""
    with DistributedSystem(name, "127.0.0.1:0", epmd, tick_time=tick) as node:
        node.register_factory("summer", summer, function=True)
        print(f"  [{name}] worker node up (OS pid {os.getpid()}, port {node.listen_port})", flush=True)
        gevent.get_hub().threadpool.apply(sys.stdin.read)  # until EOF
        print(f"  [{name}] stopping", flush=True)
    return 0


def start_worker(name: str, epmd: str, tick: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--worker-node", name, "--epmd", epmd, "--tick", str(tick)],
        stdin=subprocess.PIPE,
    )


def wait_registered(node: DistributedSystem, names: set[str], timeout: float = 30.0) -> bool:
    """Poll the port mapper (bounded) until every one of ``names`` is registered."""
    deadline = time.monotonic() + timeout
    while not {node_name(n) for n in names} <= {i.name for i in node.list_nodes()}:  # listed as name@host
        if time.monotonic() >= deadline:
            return False
        gevent.sleep(0.1)
    return True


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="remote spawn, remote monitor, recovery from a killed node")
    ap.add_argument(
        "--epmd", default=None, metavar="HOST:PORT", help="port mapper (default $JOERL_EPMD_ADDRESS or 127.0.0.1:4369)"
    )
    ap.add_argument("--tick", type=float, default=1.0, help="tick time of every node, seconds (default 1)")
    ap.add_argument("--worker-node", default=None, metavar="NAME", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker_node:
        return worker_node(args.worker_node, args.epmd, args.tick)

    expected = sum(i * i for i in range(START, END))
    with DistributedSystem("boss", "127.0.0.1:0", args.epmd, tick_time=args.tick) as node:
        print(f"[boss] node up; port mapper {node.epmd_address}; starting worker1 and worker2")
        workers = {name: start_worker(name, node.epmd_address, args.tick) for name in ("worker1", "worker2")}
        try:
            if not wait_registered(node, set(workers)):
                print("[boss] the worker nodes did not come up")
                return 1
            print(f"[boss] the port mapper lists {sorted(i.name for i in node.list_nodes())}")
            result: dict[str, Any] = {}

            def manager(ctx: ActorContext) -> None:
                node.monitor_node(ctx.pid, "worker1")
                pid, ref = node.spawn_remote("worker1", "summer", ctx.pid, START, END, CHUNK, caller=ctx, monitor=True)
                print(f"[boss] spawned summer {pid} on worker1, monitoring it ({ref})")
                done_upto, total, reports, killed_at = START, 0, 0, 0.0
                seen: set[str] = set()
                while True:
                    msg = ctx.receive(timeout=30)
                    if isinstance(msg, Down) and msg.ref == ref:
                        seen.add("down")
                        print(
                            f"[boss] Down: summer {msg.pid} ended ({msg.reason}) "
                            f"{(time.monotonic() - killed_at) * 1000:.0f} ms after the kill"
                        )
                        result["down_reason"] = msg.reason
                    elif isinstance(msg, NodeDown):
                        seen.add("nodedown")
                        print(
                            f"[boss] NodeDown: {msg.node} ({msg.reason}) "
                            f"{(time.monotonic() - killed_at) * 1000:.0f} ms after the kill"
                        )
                        result["nodedown"] = (msg.node, msg.reason)
                    elif isinstance(msg, Down):
                        continue  # the replacement's Down, after it finished
                    elif msg[0] == "progress":
                        done_upto, total = msg[1], total + msg[2]
                        reports += 1
                        print(f"[boss] progress: summed up to {done_upto} ({reports} reports)")
                        if reports == 3 and not killed_at:
                            print(f"[boss] kill -9 worker1 (OS pid {workers['worker1'].pid})")
                            killed_at = time.monotonic()
                            workers["worker1"].kill()
                    elif msg[0] == "finished":
                        result["total"] = total
                        return
                    if seen == {"down", "nodedown"}:
                        seen.clear()
                        print(f"[boss] restarting the work on worker2 from {done_upto}")
                        pid, ref = node.spawn_remote(
                            "worker2", "summer", ctx.pid, done_upto, END, CHUNK, caller=ctx, monitor=True
                        )
                        print(f"[boss] spawned summer {pid} on worker2")

            node.spawn_fn(manager, name="manager").join(60)
            total = result.get("total")
            ok = (
                total == expected
                and result.get("down_reason") == "noconnection"
                and result.get("nodedown") == (node_name("worker1"), "noconnection")
            )
            print(f"[boss] total {total}, expected {expected}: {'ok' if ok else 'WRONG'}")
        finally:
            for proc in workers.values():
                if proc.poll() is None:
                    proc.stdin.close()
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                elif proc.stdin:
                    proc.stdin.close()
        print(f"[boss] worker exit codes: {[p.returncode for p in workers.values()]} (worker1 was killed)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
