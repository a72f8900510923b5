"""A node of ``bench_mesh.py``: ``python -m benchmarks._mesh_peer NAME --epmd HOST:PORT --tick SECONDS``.

Prints ``READY``, then takes one command on standard input, ``mesh NAME...``:
it connects to every named node (all at once), waits until it has a link to
each, and prints ``MESHED seconds=S links=L`` (from the command to its full
mesh), or ``PARTIAL ...`` if after two minutes links are still missing.
Then it idles until its input ends.
"""

from __future__ import annotations

import argparse
import sys
import time

import gevent

from ._dist_peer import commands, say


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks._mesh_peer")
    ap.add_argument("name")
    ap.add_argument("--epmd", required=True)
    ap.add_argument("--tick", type=float, default=60.0)
    args = ap.parse_args(argv)

    from gevent.event import Event

    from joerl.message import NodeUp
    from joerl.node.node import DistributedSystem

    node = DistributedSystem(args.name, "127.0.0.1:0", args.epmd, start_epmd=False, tick_time=args.tick)
    ups = Event()
    want: set[str] = set()

    def watch(ctx: object) -> None:
        while True:
            msg = ctx.receive()  # type: ignore[attr-defined]
            if msg.__class__ is NodeUp and want and want <= set(node.nodes()):
                ups.set()

    node.monitor_nodes(node.system.spawn_fn(watch).pid)
    say("READY")
    for words in commands():
        if words[0] != "mesh":
            continue
        t0 = time.perf_counter()
        peers = [w for w in words[1:] if not w.startswith(args.name + "@") and w != args.name]
        full = getattr(node._peers, "full_name", str)  # (name@host since issue 18; bare names before)
        want.update(full(p) for p in peers)
        for p in peers:
            gevent.spawn(node.connect_to_node, p, timeout=60)
        if not want <= set(node.nodes()):
            ups.wait(120)
        word = "MESHED" if want <= set(node.nodes()) else "PARTIAL"  # (links lost in the storm and not back)
        say(f"{word} seconds={time.perf_counter() - t0:.4f} links={len(node.nodes())}")
    node.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
