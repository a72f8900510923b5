"""Port mapper throughput: joerl's daemon beside Erlang's ``epmd``, same run, same client.

Both daemons run as separate processes on loopback. A helper process holds
the registrations (plain ALIVE2 connections, as erl makes them, the same for
both daemons). This process is the client: 50 greenlets at once, each call
on its own connection (as erl's client does), measured in turns (ours, epmd,
ours, ...) so machine noise lands on both alike.

Figures, each with 10 and with 10,000 registered names:

- lookups/s with ``EpmdClient.lookup`` (our daemon: joerl's extension
  lookup; epmd: PORT_PLEASE2, what the client falls back to);
- lookups/s with PORT_PLEASE2 on both (the same request bytes);
- NAMES requests/s.

Target (issue 4): at least 0.5x epmd's rates. Erlang's epmd serves at most
FD_SETSIZE - 1 (1023) connections, stdio and its listen socket included, so
it cannot hold 10,000 registrations: the "10,000" rows say how many it held.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from gevent import socket

from benchmarks.harness import Figure, Row, interleaved
from joerl.epmd import EpmdClient

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 50
TARGET = 0.5

HOLDER = textwrap.dedent("""
    import resource, socket, struct, sys
    port, count, spare = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 100)), hard))
    held = []
    for i in range(count):
        name = b"bench%05d" % i
        body = struct.pack(">BHBBHHH", 120, 20000 + i % 40000, 77, 0, 6, 5, len(name)) + name + b"\\0\\0"
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(struct.pack(">H", len(body)) + body)
            reply = b""
            while len(reply) < 6:
                chunk = s.recv(6 - len(reply))
                if not chunk:
                    break
                reply += chunk
        except OSError:
            break
        if reply[:2] != b"v\\0":
            s.close()
            break
        held.append(s)
    if len(held) < count:  # the daemon is full: free room for the measuring connections
        for s in held[-spare:]:
            s.close()
        del held[-spare:]
    print("READY held=%d" % len(held), flush=True)
    sys.stdin.read()
""")


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class _Daemons:
    """Our daemon and Erlang's epmd, each with ``names`` registrations held."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.ours_port = _free_port()
        ours = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "joerl.epmd",
                f"127.0.0.1:{self.ours_port}",
                "--log-level",
                "warning",
                "--max-connections",
                "16000",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.procs.append(ours)
        assert ours.stdout is not None and ours.stdout.readline().startswith(b"READY")
        self.epmd_port = _free_port()
        self.procs.append(
            subprocess.Popen(
                ["epmd", "-port", str(self.epmd_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        client = EpmdClient(f"127.0.0.1:{self.epmd_port}", timeout=1)
        deadline = 100
        while not client.ping() and deadline:
            gevent.sleep(0.05)
            deadline -= 1
        self.holders: list[subprocess.Popen] = []

    def hold(self, port: int, count: int) -> tuple[subprocess.Popen, int]:
        """Register ``count`` names (fewer if the daemon fills up) from a helper process."""
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(port), str(count), str(CONCURRENCY + 20)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.holders.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        return proc, int(line.split("held=")[1])

    def release(self, proc: subprocess.Popen | None = None) -> None:
        for p in [proc] if proc is not None else list(self.holders):
            p.stdin.close()  # type: ignore[union-attr]
            p.wait(timeout=30)
            self.holders.remove(p)

    def close(self) -> None:
        self.release()
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=10)


def _concurrently(op: Callable[[int], Any]) -> Callable[[int], None]:
    def run(n: int) -> None:
        per = n // CONCURRENCY
        jobs = [gevent.spawn(lambda k=k: [op(k * per + j) for j in range(per)]) for k in range(CONCURRENCY)]
        gevent.joinall(jobs, raise_error=True)

    return run


def _measure(
    ours: EpmdClient, epmd: EpmdClient, held_ours: int, held_epmd: int, label: str, lookups: int, repeats: int
) -> list[Row]:
    note = f"{CONCURRENCY} concurrent connections; names held: ours {held_ours}, epmd {held_epmd}"
    if held_epmd < held_ours:
        note += " (epmd's cap: 1023 connections (FD_SETSIZE), less room for the 50 queries)"
    extra = {"names_ours": held_ours, "names_epmd": held_epmd, "concurrency": CONCURRENCY}
    m_ours, m_epmd = max(held_ours, 1), max(held_epmd, 1)
    rows = []
    figs = interleaved(
        {
            "ours": _concurrently(lambda i: ours.lookup(f"bench{i % m_ours:05d}")),
            "epmd": _concurrently(lambda i: epmd.lookup(f"bench{i % m_epmd:05d}")),
        },
        lookups,
        repeats=repeats,
        unit="lookups/s",
    )
    rows.append(
        Row(
            f"epmd lookup, {label}",
            figs["ours"],
            figs["epmd"],
            TARGET,
            extra=extra,
            note=note + "; EpmdClient.lookup (ours: extension, epmd: PORT_PLEASE2)",
        )
    )
    figs = interleaved(
        {
            "ours": _concurrently(lambda i: ours.port_please(f"bench{i % m_ours:05d}")),
            "epmd": _concurrently(lambda i: epmd.port_please(f"bench{i % m_epmd:05d}")),
        },
        lookups,
        repeats=repeats,
        unit="lookups/s",
    )
    rows.append(Row(f"epmd PORT_PLEASE2, {label}", figs["ours"], figs["epmd"], TARGET, note=note, extra=extra))
    n_names = lookups // 2 if max(held_ours, held_epmd) <= 100 else max(CONCURRENCY * 4, lookups // 10)
    figs = interleaved(
        {
            "ours": _concurrently(lambda i: ours.names()),
            "epmd": _concurrently(lambda i: epmd.names()),
        },
        n_names,
        repeats=repeats,
        unit="NAMES/s",
    )
    if held_ours == held_epmd:
        rows.append(Row(f"epmd NAMES, {label}", figs["ours"], figs["epmd"], TARGET, note=note, extra=extra))
    else:
        # Replies of different lengths: compare names listed per second (rate x names per reply).
        extra = dict(extra, names_per_s_ours=figs["ours"].median, names_per_s_epmd=figs["epmd"].median)
        scaled = {
            k: Figure(k, "names listed/s", [x * n for x in figs[k].samples])
            for k, n in (("ours", held_ours), ("epmd", held_epmd))
        }
        rows.append(
            Row(
                f"epmd NAMES, {label}",
                scaled["ours"],
                scaled["epmd"],
                TARGET,
                extra=extra,
                note=note + f"; NAMES/s ours {figs['ours'].median:.0f}, epmd {figs['epmd'].median:.0f}, "
                "compared as names listed/s",
            )
        )
    return rows


def run(quick: bool) -> list[Row]:
    if shutil.which("epmd") is None:
        return [Row("epmd", _empty("skipped: Erlang's epmd is not installed"))]
    _raise_fd_limit(16384)
    repeats = 3 if quick else 5
    lookups = 1500 if quick else 5000
    rows: list[Row] = []
    d = _Daemons()
    try:
        ours = EpmdClient(f"127.0.0.1:{d.ours_port}", timeout=10)
        epmd = EpmdClient(f"127.0.0.1:{d.epmd_port}", timeout=10)
        assert ours.probe() == "joerl" and epmd.probe() == "erlang"
        for count in (10, 10_000):
            h_epmd, held_epmd = d.hold(d.epmd_port, count)
            if held_epmd < count:
                # epmd cannot hold them all: first compare with the same number on both
                h_ours, held_ours = d.hold(d.ours_port, held_epmd)
                rows += _measure(ours, epmd, held_ours, held_epmd, f"{held_epmd} names (epmd's most)", lookups, repeats)
                d.release(h_ours)
            h_ours, held_ours = d.hold(d.ours_port, count)
            rows += _measure(ours, epmd, held_ours, held_epmd, f"{count} names", lookups, repeats)
            d.release()
    finally:
        d.close()
    return rows


def _empty(name: str) -> Figure:
    return Figure(name, "ops/s", [0.0])


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        base = row.baseline.median if row.baseline else float("nan")
        print(
            f"{row.group:34s} ours {row.figure.median:10.0f} (±{row.figure.spread:.0%})  "
            f"epmd {base:10.0f}  ratio {row.ratio or 0:.2f}  {'OK' if row.ok else 'BELOW'}  [{row.note}]"
        )
