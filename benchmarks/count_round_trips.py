"""Counts per round trip, joerl beside raw gevent: ``python -m benchmarks.count_round_trips [N]``.

Not a timed benchmark: counts, which do not depend on the machine's load
(issue 17's per-round-trip budget, written down in ``benchmarks/README.md``).
For each of raw gevent request-response, joerl actor ping-pong and joerl
remote ``system.call``, a fresh pair of ``_dist_peer`` processes does N round
trips and reports, per round trip and per side: greenlet switches
(``greenlet.settrace``, ``$JOERL_BENCH_COUNT``) and system calls
(``strace -c -f``, where installed), the warm-up and start-up taken off by
subtracting a run of N/10 round trips. Then the Python calls per round trip
(cProfile, every function both nodes run, the two nodes in this one process:
:func:`python_calls`).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

from .bench_dist import PEER, Child, Cluster

_SYSCALL = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$")


def _syscalls(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in path.read_text().splitlines():
        m = _SYSCALL.match(line)
        if m:
            out[m.group(2)] = int(m.group(1))
    return out


def _switches(child: Child) -> int:
    text = child.log_path.read_text(errors="replace")
    found = re.findall(r"SWITCHES (\d+)", text)
    return int(found[-1]) if found else 0


def _run(cluster: Cluster, kind: str, n: int, strace: bool) -> dict[str, dict[str, float]]:
    """Counts of one contestant's run of n round trips, for ``client`` and ``server``."""
    env = dict(cluster.env, JOERL_BENCH_COUNT="1")
    trace = cluster.dir / f"{kind}-{n}"

    def argv(side: str, *args: str) -> list[str]:
        pre = ["strace", "-f", "-c", "-o", f"{trace}-{side}.txt"] if strace else []
        return pre + PEER + list(args)

    tag = f"{kind}{n}"
    if kind == "rr":
        server = cluster.spawn(f"srv-{tag}", argv("server", "raw-server"), env=env)
        ports = re.findall(r"port=(\d+)", server.ready())
        client = cluster.spawn(f"cli-{tag}", argv("client", "raw-client", *ports), env=env)
    else:
        node = ["--epmd", cluster.epmd, "--tick", "60"]
        server = cluster.spawn(f"srv-{tag}", argv("server", "rx", f"crx{tag}", *node), env=env)
        server.ready()
        client = cluster.spawn(f"cli-{tag}", argv("client", "tx", f"ctx{tag}", f"crx{tag}", *node), env=env)
    client.ready(60)
    client.command(f"{kind} {n}", 300)
    client.stop()
    server.stop()
    counts: dict[str, dict[str, float]] = {}
    for side, child in (("client", client), ("server", server)):
        c: dict[str, float] = {"switches": _switches(child)}
        if strace:
            c.update(_syscalls(Path(f"{trace}-{side}.txt")))
        counts[side] = c
    return counts


def loop(kind: str, n: int) -> None:
    """N round trips (after 200 to warm up) of a ping-pong or remote call between
    two nodes of this process, uncounted: for an instruction count per round
    trip, run it under callgrind for two values of N and take the difference
    (``--loop KIND N``; benchmarks/README.md, the per-round-trip budget)."""
    _two_nodes(kind, n, profile=False)


def python_calls(kind: str, n: int) -> float:
    """Python calls (cProfile's count: Python functions and C builtins) per
    round trip of a ping-pong or remote call between two nodes of this
    process (``node_cluster``), both nodes counted."""
    return _two_nodes(kind, n, profile=True)


def _two_nodes(kind: str, n: int, profile: bool) -> float:
    import cProfile
    import pstats

    from gevent.event import AsyncResult

    from joerl import gen_server
    from joerl.pid import Pid
    from joerl.testing import node_cluster

    from ._dist_peer import echo_server_class

    with node_cluster("a", "b", cookie="count", global_names=False) as (a, b):

        def echo(ctx: Any) -> None:
            while True:
                msg = ctx.receive()
                ctx.send(ctx.sender, msg)

        def wire(pid: Pid) -> Any:
            return Pid(b.node_id, pid.id, b.creation)

        echo_pid = wire(b.system.spawn_fn(echo).pid)
        server = wire(gen_server.start(b.system, echo_server_class()(), None).pid)

        def ping(ctx: Any, k: int, out: AsyncResult) -> None:
            for i in range(k):
                ctx.send(echo_pid, ("ping", i))
                ctx.receive(timeout=10)
            out.set(None)

        def run(k: int) -> None:
            if kind == "pingpong":
                out: AsyncResult = AsyncResult()
                a.system.spawn_fn(ping, k, out)
                out.get(timeout=60)
            else:
                for i in range(k):
                    a.system.call(server, i, 10)

        run(max(200, n // 10))  # (the link up, caches warm)
        if not profile:
            run(n)
            return 0.0
        prof = cProfile.Profile()
        prof.enable()
        run(n)
        prof.disable()
        stats: Any = pstats.Stats(prof)
        return float(sum(v[1] for v in stats.stats.values())) / n


def main(argv: list[str]) -> None:
    if argv[:1] == ["--loop"]:
        loop(argv[1], int(argv[2]))
        return
    n = int(argv[0]) if argv else 5000
    strace = shutil.which("strace") is not None
    with Cluster() as cluster:
        for kind in ("rr", "pingpong", "call"):
            big, small = _run(cluster, kind, n, strace), _run(cluster, kind, n // 10, strace)
            print(f"{kind}: per round trip ({n} - {n // 10} round trips)")
            for side in ("client", "server"):
                keys = sorted(set(big[side]) | set(small[side]))
                per = {k: (big[side].get(k, 0) - small[side].get(k, 0)) / (n - n // 10) for k in keys}
                shown = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 0.05)
                print(f"  {side}: {shown}")
    for kind in ("pingpong", "call"):
        print(f"{kind}: {python_calls(kind, n):.0f} Python calls per round trip (cProfile, both nodes in one process)")


if __name__ == "__main__":
    main(sys.argv[1:])
