"""The cost of an idle full mesh (issue 17): N node processes, each linked to all others.

N joerl nodes (``benchmarks/_mesh_peer.py``) on one private port mapper, and
N Erlang nodes beside them where ``erl`` is installed, all with the same tick
time. Each is told the names of all at once and links to every other; the
benchmark waits for every node's full mesh, then lets them idle and reads
their CPU time (``/proc/PID/stat``) and resident sets. Rows, joerl beside
Erlang (lower is better):

* **time to full mesh**: from the command to the last node's full mesh.
* **idle CPU**: CPU of all N nodes together over the idle window, in percent
  of one core. Target: no more than Erlang (issue 17 asks it at 80 nodes;
  ``JOERL_BENCH_MESH_N`` sets N, default 20, quick mode 10).
* **RSS per node**: the median resident set once idle.

The Erlang nodes run without scheduler busy-waiting (``+sbwt none``, and for
the dirty schedulers): 80 virtual machines spinning after every wake-up on
two cores starve each other, and with a 4 s tick their links then time out
while the mesh forms (``global``'s overlapping-partition guard then drops
more, and the mesh never completes: seen at N = 80, OTP 25). Busy-waiting
is CPU that counts as idle cost, so this makes Erlang's figure lower, a
stricter baseline. They use Erlang's own port mapper (``epmd``, in C) where it is
installed, as the joerl nodes use joerl's. The guard
(``prevent_overlapping_partitions``) is off,
and each Erlang node pings the nodes it misses again every second, as
``net_adm:ping`` once may lose to such a timeout; neither acts on an idle
mesh. If Erlang still cannot form the mesh, the rows say so and keep
joerl's figures.

"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import sys
import time
from pathlib import Path

from joerl.testing import free_port

from .bench_dist import Child, Cluster, cpu_seconds
from .harness import Figure, Row

MESH = [sys.executable, "-m", "benchmarks._mesh_peer"]
TICK = 4.0  # seconds: the setting (Erlang's net_ticktime is whole seconds)
TARGET_IDLE_CPU = 1.0  # x Erlang's


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _erl_code(n: int) -> str:
    """An erl node: READY, then on a line of node names ping them all, wait for
    the full mesh (pinging the missing again every second), print MESHED; then
    idle until killed."""
    return (
        'io:format("READY~n"), L = io:get_line(""), '
        'Ps = [list_to_atom(P) || P <- tl(string:tokens(string:trim(L), " ")), list_to_atom(P) =/= node()], '
        "T0 = erlang:monotonic_time(microsecond), [spawn(fun() -> net_adm:ping(P) end) || P <- Ps], "
        "W = fun W(K) -> case length(nodes()) >= "
        f"{n - 1}"
        " of true -> ok; false -> "
        "case K rem 200 of 199 -> [spawn(fun() -> net_adm:ping(P) end) || P <- Ps -- nodes()]; _ -> ok end, "
        "timer:sleep(5), W(K + 1) end end, W(0), "
        'io:format("MESHED seconds=~.4f~n", [(erlang:monotonic_time(microsecond) - T0) / 1.0e6]), '
        "receive never -> ok end."
    )


#: No busy-waiting schedulers, no overlapping-partition guard (see the module docstring).
ERL_AFLAGS = "+sbwt none +sbwtdcpu none +sbwtdio none -kernel prevent_overlapping_partitions false"


def _mesh(children: list[Child], names: list[str]) -> tuple[float, list[float], int]:
    """Seconds from the command to the last node's full mesh, each node's own,
    and how many nodes gave up with a partial mesh (links lost and not back)."""
    t0 = time.perf_counter()
    for child in children:
        child.send("mesh " + " ".join(names))
    lines = [child.expect(lambda line: line.startswith(("MESHED", "PARTIAL")), 180) for child in children]
    partial = sum(line.startswith("PARTIAL") for line in lines)
    return time.perf_counter() - t0, [float(line.split("seconds=")[1].split()[0]) for line in lines], partial


def _idle(children: list[Child], seconds: float) -> tuple[float, list[int]]:
    """CPU percent of one core of all ``children`` over ``seconds``, and their RSS."""
    pids = [c.pid for c in children]
    before = [cpu_seconds(p) or 0.0 for p in pids]
    t0 = time.monotonic()
    deadline = t0 + seconds
    while time.monotonic() < deadline:  # (the benchmark itself idles: nothing to wait on)
        time.sleep(min(1.0, deadline - time.monotonic()))
    after = [cpu_seconds(p) or 0.0 for p in pids]
    wall = time.monotonic() - t0
    return 100.0 * (sum(after) - sum(before)) / wall, [_rss(p) for p in pids]


def _joerl(cluster: Cluster, n: int, tick: float) -> list[Child]:
    children = []
    for i in range(n):
        child = cluster.spawn(f"mesh-j{i}", [*MESH, f"mj{i}", "--epmd", cluster.epmd, "--tick", str(tick)])
        children.append(child)
    for child in children:
        child.ready(180)  # (N interpreters importing at once on a busy machine)
    return children


def _erlang_epmd(cluster: Cluster) -> None:
    """Erlang's own port mapper for the Erlang nodes, where installed (each side
    with its own, as deployed: joerl's in Python would be Erlang's bottleneck at
    N = 80, 6,320 PORT_PLEASE2 connections at once)."""
    if shutil.which("epmd") is None:
        return
    port = free_port()
    cluster.spawn("erl-epmd", ["epmd", "-port", str(port)], stop_signal=signal.SIGTERM)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Erlang's epmd did not listen on port {port} within 10 s") from None
            time.sleep(0.05)
    cluster.epmd_port = port  # (Cluster.erl gives the Erlang nodes ERL_EPMD_PORT from it)


def _erlang(cluster: Cluster, n: int, tick: float) -> list[Child]:
    cluster.env["ERL_AFLAGS"] = ERL_AFLAGS  # (Cluster.erl passes its env on)
    _erlang_epmd(cluster)
    children = []
    for i in range(n):
        child = cluster.erl(f"mesh-e{i}", f"me{i}", _erl_code(n), tick=tick)
        child.stop_signal = signal.SIGKILL
        children.append(child)
    for child in children:
        child.ready(60)
    return children


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def run(quick: bool) -> list[Row]:
    n = int(os.environ.get("JOERL_BENCH_MESH_N", "10" if quick else "20"))
    window = 10.0 if quick else 30.0
    repeats = 3
    rows: list[Row] = []
    with Cluster() as cluster:
        print(f"  mesh: {n} joerl nodes, tick {TICK}s", file=sys.stderr)
        joerl = _joerl(cluster, n, TICK)
        j_mesh, j_each, j_partial = _mesh(joerl, [f"mj{i}" for i in range(n)])
        j_cpu, j_rss = [], []
        for _ in range(repeats):
            cpu, rss = _idle(joerl, window / repeats)
            j_cpu.append(cpu)
            j_rss.append(float(statistics.median(rss)))
        j_load = _load()
        print(f"  mesh: joerl {j_mesh:.2f}s to mesh, idle {j_cpu} % ({j_load})", file=sys.stderr)
        for child in joerl:
            child.stop()
        e_mesh = None
        e_each: list[float] = []
        e_cpu: list[float] = []
        e_rss: list[float] = []
        e_load = failed = ""
        if cluster.build_erlang():
            print(f"  mesh: {n} Erlang nodes, net_ticktime {int(TICK)}", file=sys.stderr)
            try:
                erl = _erlang(cluster, n, TICK)
                e_mesh, e_each, _ = _mesh(erl, [Cluster.erl_name(f"me{i}") for i in range(n)])  # (all or a timeout)
                for _ in range(repeats):
                    cpu, rss = _idle(erl, window / repeats)
                    e_cpu.append(cpu)
                    e_rss.append(float(statistics.median(rss)))
                e_load = _load()
                print(f"  mesh: Erlang {e_mesh:.2f}s to mesh, idle {e_cpu} % ({e_load})", file=sys.stderr)
            except RuntimeError as exc:  # (a mesh that never formed: joerl's figures stand alone)
                e_mesh, e_cpu = None, []
                failed = f"; Erlang failed: {str(exc).splitlines()[0][:200]}"
                print(f"  mesh: Erlang failed: {exc}", file=sys.stderr)
        erlang = e_mesh is not None
        each = f"; per node, median (max) joerl {statistics.median(j_each):.2f} s ({max(j_each):.2f})"
        if j_partial:
            each += f" ({j_partial} joerl nodes gave up with links missing after 120 s: a partial mesh)"
        if e_each:
            each += f", Erlang {statistics.median(e_each):.2f} s ({max(e_each):.2f})"
        rows.append(
            Row(
                "mesh",
                Figure(f"joerl, {n} nodes: time to full mesh", "s", [j_mesh]),
                Figure("Erlang", "s", [e_mesh]) if e_mesh is not None else None,
                lower_is_better=True,
                note=f"{n} node processes told all names at once, until each has a link to every other{each}{failed}",
                extra={"joerl_each": j_each, "erlang_each": e_each},
            )
        )
        rows.append(
            Row(
                "mesh",
                Figure(f"joerl, {n} nodes: idle CPU, tick {TICK:g}s", "% of a core", j_cpu),
                Figure("Erlang", "% of a core", e_cpu) if erlang else None,
                target=TARGET_IDLE_CPU if erlang else None,
                lower_is_better=True,
                note=f"CPU of all {n} nodes over {window:g} idle seconds (full mesh), beside as many Erlang nodes"
                f"; joerl's window at {j_load}" + (f", Erlang's at {e_load}" if erlang else ""),
            )
        )
        rows.append(
            Row(
                "mesh",
                Figure(f"joerl, {n} nodes: RSS per node", "B", j_rss),
                Figure("Erlang", "B", e_rss) if erlang else None,
                lower_is_better=True,
                note="median resident set of the nodes, idle in the full mesh",
            )
        )
    return rows
