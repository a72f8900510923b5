"""Large messages and link compression between two node processes (issue 17).

Helpers: ``benchmarks/_large_peer.py``, on one private port mapper (as
``bench_dist.py``). Rows:

* **large/throughput**: ``("blob", bytes)`` of 64 KiB, 1 MiB and 32 MiB from
  an actor to a sink actor of another node, each acknowledged before the
  next, beside raw gevent writing ``Len:32 | bytes`` with one ``sendall`` and
  waiting for a 4-byte ack (MB/s of message bytes). ``extra.cpu_ms_per_msg``:
  the CPU time each process spent per message (``/proc/PID/schedstat``,
  nanoseconds; steadier than the rates on a shared machine).
* **large/memory**: the peak resident set of each node process during those
  samples, above its resident set just before (``VmHWM`` after resetting it
  through ``/proc/PID/clear_refs``), in bytes, beside the message size. The
  message is made once, before the samples (it is in the resident set before
  each): the figure is what sending and receiving it cost, beyond the
  message the sender holds. Target: at most 3x (no quadratic copying).
* **large/bystander**: while one 32 MiB message crosses, another actor of the
  sending node does ping-pong with the other node; its longest round trip
  beside the big message's own transfer time. Target: at most 1x (a big
  message stalls others at most for its own transmission).
* **compression**: a JSON-like nested dict of about 1 MiB (the codec's road),
  acknowledged each, between node pairs offering no compression, zlib and
  (with the ``zstd`` extra) zstd: bytes on the wire per message and rate.
  And 100-byte messages with and without compression enabled (below
  ``compress_min``: no attempt, so the cost must be nil).

Two trees in the same turns: ``python -m benchmarks.bench_large OTHER_TREE
[SIZE [N [TURNS]]]`` (e.g. a ``git worktree`` of an earlier commit, and this
one; as ``ab_dist.py``): ``big SIZE N`` from each tree's node pair and raw
gevent, a, b, c, a, b, c, ...; prints the rate, each process's CPU ms per
message and the peaks above idle (x the message size) of each.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bench_dist import Child, Cluster
from .harness import Figure, Row

LARGE = [sys.executable, "-m", "benchmarks._large_peer"]
KiB, MiB = 1024, 1024 * 1024
TARGET_MEMORY = 3.0  # x the message size, above idle
TARGET_STALL = 1.0  # x the big message's own transfer time


@dataclass(frozen=True)
class Params:
    repeats: int
    counts: dict[int, int]  # message size -> messages per sample
    doc_n: int
    small_n: int

    @classmethod
    def for_mode(cls, quick: bool) -> Params:
        if quick:
            return cls(3, {64 * KiB: 100, MiB: 10, 32 * MiB: 1}, 5, 1000)
        return cls(5, {64 * KiB: 300, MiB: 30, 32 * MiB: 2}, 15, 3000)


def _status(pid: int, key: str) -> int:
    """A ``/proc/PID/status`` size in bytes (``VmRSS``, ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} for process {pid}")


def _cpu_ns(pid: int) -> int:
    """The CPU time of a process's main thread so far (``/proc/PID/schedstat``; gevent runs there)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def _reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to VmRSS (Linux >= 4.0)
        return True
    except OSError:
        return False


class _Pair:
    """A client and the server it talks to; ``run`` a command and watch their memory."""

    def __init__(self, client: Child, server: Child) -> None:
        self.client, self.server = client, server

    def run(self, cmd: str, timeout: float = 600.0) -> dict[str, Any]:
        procs = {"client": self.client.pid, "server": self.server.pid}
        idle = {k: _status(pid, "VmRSS") for k, pid in procs.items()}
        peaks_ok = all(_reset_peak(pid) for pid in procs.values())
        cpu = {k: _cpu_ns(pid) for k, pid in procs.items()}
        answer = self.client.command(cmd, timeout)
        for k, pid in procs.items():
            answer[f"{k}_cpu_ns"] = _cpu_ns(pid) - cpu[k]
        if peaks_ok:
            for k, pid in procs.items():
                answer[f"{k}_peak"] = _status(pid, "VmHWM") - idle[k]
        return answer


def _nodes(cluster: Cluster, tag: str, compress: str = "") -> _Pair:
    extra = ["--epmd", cluster.epmd, "--compress", compress]
    rx = cluster.spawn(f"rx-{tag}", [*LARGE, "rx", f"lrx{tag}", *extra])
    rx.ready()
    tx = cluster.spawn(f"tx-{tag}", [*LARGE, "tx", f"ltx{tag}", f"lrx{tag}", *extra])
    tx.ready()
    return _Pair(tx, rx)


def _raw(cluster: Cluster) -> _Pair:
    server = cluster.spawn("raw-server", [*LARGE, "raw-server"])
    port = server.ready().split("port=")[1]
    client = cluster.spawn("raw-client", [*LARGE, "raw-client", port])
    client.ready()
    return _Pair(client, server)


def _size_name(size: int) -> str:
    return f"{size // MiB} MiB" if size >= MiB else f"{size // KiB} KiB"


def _large_rows(joerl: _Pair, raw: _Pair, p: Params) -> list[Row]:
    rows: list[Row] = []
    for size, n in p.counts.items():
        name = _size_name(size)
        rate: dict[str, list[float]] = {"joerl": [], "raw": []}
        peaks: dict[str, list[float]] = {"tx": [], "rx": [], "raw-client": [], "raw-server": []}
        cpu: dict[str, list[float]] = {k: [] for k in peaks}
        for pair in (joerl, raw):
            pair.run(f"big {size} 1")  # warm-up
        for _ in range(p.repeats):
            for key, pair in (("joerl", joerl), ("raw", raw)):
                a = pair.run(f"big {size} {n}")
                rate[key].append(a["n"] * size / a["seconds"] / 1e6)
                sides = ("tx", "rx") if key == "joerl" else ("raw-client", "raw-server")
                cpu[sides[0]].append(a["client_cpu_ns"] / a["n"] / 1e6)
                cpu[sides[1]].append(a["server_cpu_ns"] / a["n"] / 1e6)
                if "client_peak" in a:
                    peaks[sides[0]].append(a["client_peak"])
                    peaks[sides[1]].append(a["server_peak"])
        rows.append(
            Row(
                "large/throughput",
                Figure(f"joerl, {name} messages", "MB/s", rate["joerl"]),
                Figure(f"raw gevent sendall, {name}", "MB/s", rate["raw"]),
                note=f"('blob', {name} of bytes) actor -> remote sink, acknowledged each, {n} per sample; "
                f"beside raw gevent Len:32 | bytes and a 4-byte ack",
                extra={"cpu_ms_per_msg": {k: statistics.median(v) for k, v in cpu.items()}},
            )
        )
        for side in ("tx", "rx"):
            if peaks[side]:
                raw_side = "raw-client" if side == "tx" else "raw-server"
                rows.append(
                    Row(
                        "large/memory",
                        Figure(f"{'sending' if side == 'tx' else 'receiving'} node peak RSS, {name}", "B", peaks[side]),
                        Figure(f"the message ({name})", "B", [float(size)]),
                        target=TARGET_MEMORY,
                        lower_is_better=True,
                        note=f"peak resident set above idle during the {name} samples (VmHWM), beside the message size",
                        extra={"raw_peak_bytes": peaks[raw_side]},
                    )
                )
    return rows


def _bystander_row(joerl: _Pair, p: Params) -> Row:
    stall: list[float] = []
    transfer: list[float] = []
    idle: list[float] = []
    during: list[int] = []
    for _ in range(p.repeats):
        a = joerl.run(f"bystand {32 * MiB}")
        stall.append(a["rtt_max_ms"])
        transfer.append(a["seconds"] * 1000)
        idle.append(a["rtt_idle_ms"])
        during.append(a["rtt_during"])
    return Row(
        "large/bystander",
        Figure("longest ping-pong round trip during a 32 MiB transfer", "ms", stall),
        Figure("the 32 MiB message's own transfer", "ms", transfer),
        target=TARGET_STALL,
        lower_is_better=True,
        note="another actor's round trips on the same link while one 32 MiB message crosses, beside that transfer",
        extra={"idle_rtt_ms": idle, "round_trips_during": during},
    )


def _compression_rows(cluster: Cluster, plain: _Pair, p: Params) -> list[Row]:
    from joerl.node.compression import available

    pairs = {"none": plain, **{codec: _nodes(cluster, codec, codec) for codec in available()}}
    rate: dict[str, list[float]] = {k: [] for k in pairs}
    wire: dict[str, list[float]] = {k: [] for k in pairs}
    small: dict[str, list[float]] = {k: [] for k in pairs}
    for pair in pairs.values():
        pair.run(f"doc {MiB} 1")
    for _ in range(p.repeats):
        for key, pair in pairs.items():
            a = pair.run(f"doc {MiB} {p.doc_n}")
            rate[key].append(a["n"] / a["seconds"])
            wire[key].append(a["bytes_out"] / a["n"])
            a = pair.run(f"big 100 {p.small_n}")
            small[key].append(a["n"] / a["seconds"])
    rows = []
    for codec in pairs:
        if codec == "none":
            continue
        rows += [
            Row(
                "compression",
                Figure(f"{codec}: bytes on the wire per 1 MiB document", "B", wire[codec]),
                Figure("no compression", "B", wire["none"]),
                lower_is_better=True,
                note="a JSON-like nested dict of ~1 MiB (msgpack), actor -> remote sink, acknowledged each",
            ),
            Row(
                "compression",
                Figure(f"{codec}: 1 MiB documents", "msg/s", rate[codec]),
                Figure("no compression", "msg/s", rate["none"]),
                note="the same documents: the rate on loopback (compression pays off where bandwidth is scarce)",
            ),
            Row(
                "compression",
                Figure(f"{codec} enabled: 100-byte messages", "rt/s", small[codec]),
                Figure("no compression", "rt/s", small["none"]),
                note="small messages under compress_min are never tried: the cost must be nil (~1x)",
            ),
        ]
    return rows


def run(quick: bool) -> list[Row]:
    p = Params.for_mode(quick)
    with Cluster() as cluster:
        joerl = _nodes(cluster, "plain")
        raw = _raw(cluster)
        print("  large: throughput and memory", file=sys.stderr)
        rows = _large_rows(joerl, raw, p)
        print("  large: a bystander during a 32 MiB transfer", file=sys.stderr)
        rows.append(_bystander_row(joerl, p))
        print("  large: compression", file=sys.stderr)
        rows += _compression_rows(cluster, joerl, p)
    return rows


def _ab(argv: list[str]) -> None:
    other = argv[0]
    size, n, turns = (int(a) for a in (argv[1:] + ["1048576", "30", "7"][len(argv) - 1 :])[:3])
    with Cluster() as cluster:
        pairs: dict[str, _Pair] = {}
        for label, env in {
            "before": dict(cluster.env, PYTHONPATH=other, PYTHONSAFEPATH="1"),
            "after": cluster.env,
        }.items():
            extra = ["--epmd", cluster.epmd, "--compress", ""]
            rx = cluster.spawn(f"rx-{label}", [*LARGE, "rx", f"ab{label}rx", *extra], env=env)
            rx.ready()
            tx = cluster.spawn(f"tx-{label}", [*LARGE, "tx", f"ab{label}tx", f"ab{label}rx", *extra], env=env)
            tx.ready(60)
            pairs[label] = _Pair(tx, rx)
        pairs["raw"] = _raw(cluster)
        for pair in pairs.values():
            pair.run(f"big {size} 1")  # (warm-up; makes the message)
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in pairs}
        for _ in range(turns):
            for key, pair in pairs.items():
                runs[key].append(pair.run(f"big {size} {n}"))
    for key, answers in runs.items():
        fig = Figure(key, "MB/s", [a["n"] * size / a["seconds"] / 1e6 for a in answers])

        def med(field: str, per: float, answers: list[dict[str, Any]] = answers) -> float:
            return statistics.median(a.get(field, 0) / per for a in answers)

        print(
            f"{key:7s} {fig.median:9.1f} MB/s (spread {fig.spread:.0%})  CPU ms per message: "
            f"tx {med('client_cpu_ns', n * 1e6):.3f} rx {med('server_cpu_ns', n * 1e6):.3f}  "
            f"peak above idle x the message (median, max): tx {med('client_peak', size):.2f}, "
            f"{max(a.get('client_peak', 0) for a in answers) / size:.2f} rx {med('server_peak', size):.2f}, "
            f"{max(a.get('server_peak', 0) for a in answers) / size:.2f}"
        )


if __name__ == "__main__":
    _ab(sys.argv[1:])
