"""Counts per local one-way message, joerl beside the floor: ``python -m benchmarks.count_local [N]``.

Not a timed benchmark: counts, which do not depend on the machine's load
(issue 17's local one-way row; the method is in ``benchmarks/README.md``).
For each one-way contestant of :mod:`benchmarks.bench_local` (the inline
deque+Waiter floor, that protocol as a class, the joerl ``Actor`` and the
``spawn_fn`` receive loop), in bursts of 5,000 as the benchmark sends them:

* machine instructions per message (``valgrind --tool=callgrind``, where
  installed): the difference between a run of N + 5,000 messages and one of
  5,000, over N, so that start-up and imports drop out (``PYTHONHASHSEED=0``,
  no bytecode written, the interpreter itself rather than a shim);
* Python bytecodes and Python calls per message, by function
  (``sys.settrace`` with opcode events), and greenlet switches per burst.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import greenlet

from . import bench_local as b

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("floor", "class", "actor", "fn")
BURST = 5_000


def contestant(kind: str) -> tuple[Callable[[int], None], Any]:
    """The one-way burst of ``kind`` and the system it runs on (None for the raw ones)."""
    from joerl.system import ActorSystem

    if kind == "floor":
        return b.raw_deque_waiter_burst, None
    if kind == "class":
        return b.raw_mailbox_class_burst, None
    system = ActorSystem("count-local")
    if kind == "fn":
        return b.joerl_one_way_fn(system), system
    counter = b.Counter()
    pid = system.spawn(counter).pid
    gevent.sleep(0)
    return b.joerl_one_way(system, counter, pid), system


def run_child(kind: str, n: int) -> None:
    """Child side of the instruction count: warm up, then ``n`` messages in bursts."""
    burst, system = contestant(kind)
    burst(1_000)
    for _ in range(max(1, n // BURST)):
        burst(BURST)
    if system is not None:
        system.shutdown()


def instructions(kind: str, n: int) -> float | None:
    """Machine instructions per message of ``kind`` (None without valgrind)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    python = os.path.realpath(sys.executable)  # not a pyenv shim: count the interpreter
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    code = "import sys; from benchmarks.count_local import run_child; run_child(sys.argv[1], int(sys.argv[2]))"
    counts = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (BURST, n + BURST):
            out = subprocess.run(
                [
                    valgrind,
                    "--tool=callgrind",
                    f"--callgrind-out-file={tmp}/cg.out",
                    python,
                    "-c",
                    code,
                    kind,
                    str(size),
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=1800,
                check=True,
            )
            found = re.search(r"Collected : (\d+)", out.stderr)
            if found is None:
                raise RuntimeError(f"callgrind gave no count for {kind}: {out.stderr[-500:]}")
            counts.append(int(found.group(1)))
    return (counts[1] - counts[0]) / n


def bytecodes(kind: str, n: int) -> tuple[float, float, int, dict[str, float]]:
    """Bytecodes and Python calls per message, greenlet switches per burst, bytecodes per message by function."""
    ops: collections.Counter[str] = collections.Counter()
    calls = [0]
    switches = [0]

    def trace(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "call":
            calls[0] += 1
        elif event == "opcode":
            code = frame.f_code
            ops[f"{Path(code.co_filename).name}:{code.co_name}"] += 1
        return trace

    def on_switch(event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            switches[0] += 1

    bursts = max(1, n // BURST)
    sys.settrace(trace)  # before the contestant starts: a frame begun untraced stays untraced
    greenlet.settrace(on_switch)
    try:
        burst, system = contestant(kind)
        burst(1_000)
        ops.clear()
        calls[0] = switches[0] = 0
        for _ in range(bursts):
            burst(BURST)
    finally:
        sys.settrace(None)
        greenlet.settrace(None)
    if system is not None:
        system.shutdown()
    total = bursts * BURST
    by_fn = {k: v / total for k, v in ops.most_common(6) if v / total >= 0.5}
    return sum(ops.values()) / total, calls[0] / total, round(switches[0] / bursts), by_fn


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 100_000
    for kind in KINDS:
        per_op, per_call, per_burst, by_fn = bytecodes(kind, 20_000)
        instr = instructions(kind, n)
        shown = "n/a (no valgrind)" if instr is None else f"{instr:,.0f}"
        print(
            f"{kind:6} instructions/msg {shown:>8}  bytecodes/msg {per_op:6.1f}  calls/msg {per_call:4.2f}  "
            f"switches/burst {per_burst}"
        )
        for name, v in by_fn.items():
            print(f"         {v:6.1f}  {name}")


if __name__ == "__main__":
    main(sys.argv)
