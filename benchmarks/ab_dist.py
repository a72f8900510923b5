"""Two trees of joerl in one run: ``python -m benchmarks.ab_dist OTHER_TREE [N] [TURNS] [oneway]``.

Before/after figures from separate runs on a shared machine move with its
load; this puts the round trips of two checkouts (``OTHER_TREE``, e.g. a
``git worktree`` of an earlier commit, and this one) in the same turns:
a pair of ``_dist_peer`` node processes from each tree, plus raw gevent
request-response, measured a, b, c, a, b, c, ... (``bench_dist.turns``).
Prints median and spread of each, the CPU microseconds each side spent per
round trip (steadier than the rates on a loaded machine), and the ratios
after/before. With ``oneway`` last, the one-way rows instead (N messages of
plain terms, and of dicts, from an actor to a sink of the other node).
"""

from __future__ import annotations

import re
import sys

from .bench_dist import PEER, Cluster, Contestant, turns


def main(argv: list[str]) -> None:
    other = argv[0]
    n = int(argv[1]) if len(argv) > 1 else 5000
    repeats = int(argv[2]) if len(argv) > 2 else 7
    oneway = len(argv) > 3 and argv[3] == "oneway"
    modes = ("oneway", "oneway-dict") if oneway else ("ping-pong", "call")
    unit = "msg/s" if oneway else "rt/s"
    with Cluster() as cluster:
        node = ["--epmd", cluster.epmd, "--tick", "60"]
        trees = {"before": dict(cluster.env, PYTHONPATH=other, PYTHONSAFEPATH="1"), "after": cluster.env}
        contestants = {}
        for label, env in trees.items():
            rx = cluster.spawn(f"rx-{label}", PEER + ["rx", f"ab{label}rx", *node], env=env)
            rx.ready()
            tx = cluster.spawn(f"tx-{label}", PEER + ["tx", f"ab{label}tx", f"ab{label}rx", *node], env=env)
            tx.ready(60)
            for mode in modes:
                contestants[f"{label} {mode}"] = Contestant(tx, rx, mode.replace("ping-pong", "pingpong"), n)
        if oneway:
            figures, cpu = turns(contestants, repeats, unit)
            for key, fig in figures.items():
                us = ", ".join(f"{side} {v:.2f}" for side, v in cpu.get(key, {}).items())
                print(f"{key:24s} {fig.median:12,.0f} {unit}  spread {fig.spread:.0%}  CPU us per message: {us}")
            for what in modes:
                b, a = figures[f"before {what}"].median, figures[f"after {what}"].median
                print(f"{what}: after/before {a / b:.3f}x")
            return
        server = cluster.peer("raw-server", "raw-server")
        ports = re.findall(r"port=(\d+)", server.ready())
        client = cluster.peer("raw-client", "raw-client", *ports)
        client.ready()
        contestants["raw request-response"] = Contestant(client, server, "rr", n)
        figures, cpu = turns(contestants, repeats, "rt/s")
    for key, fig in figures.items():
        us = ", ".join(f"{side} {v:.1f}" for side, v in cpu.get(key, {}).items())
        print(f"{key:24s} {fig.median:10,.0f} rt/s  spread {fig.spread:.0%}  CPU us per round trip: {us}")
    raw = figures["raw request-response"].median
    for what in ("ping-pong", "call"):
        b, a = figures[f"before {what}"].median, figures[f"after {what}"].median
        print(f"{what}: after/before {a / b:.3f}x; vs raw: before {b / raw:.3f}x, after {a / raw:.3f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
