"""The benchmark runner: ``python -m benchmarks [--quick] [--only NAME,...] [--json PATH]``.

Imports every ``benchmarks/bench_NAME.py``, calls its ``run(quick)`` (a list of
:class:`~benchmarks.harness.Row`), prints one table of every figure beside its
baseline and target, and writes the lot as JSON (``benchmarks/results.json``
unless ``--json`` says otherwise). ``--write-docs`` also writes a markdown
summary to ``docs/benchmarks.md``. A module that raises is reported as failed
and the others still run; the exit status is then 1 (with ``--strict``, a
missed target also gives 1).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib
import importlib.metadata
import json
import os
import pkgutil
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from . import plots
from .harness import Row

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_JSON = HERE / "results.json"
DOCS = ROOT / "docs" / "benchmarks.md"
PREFIX = "bench_"


@dataclass
class Outcome:
    """What one benchmark module gave: its rows, or the error it raised."""

    name: str
    rows: list[Row] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.error is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": not self.failed,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "rows": [row.as_dict() for row in self.rows],
        }


# -- discovering and running ------------------------------------------------------


def available() -> list[str]:
    """Names of the benchmark modules (``bench_NAME.py`` gives ``NAME``), sorted."""
    return sorted(m.name[len(PREFIX) :] for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith(PREFIX))


def select(only: str | None, names: Sequence[str]) -> list[str]:
    """The modules ``--only`` asks for (comma-separated, ``bench_`` prefix optional).

    Raises:
        ValueError: a name that is not a benchmark module.
    """
    if not only:
        return list(names)
    wanted = [w.strip().removeprefix(PREFIX) for w in only.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise ValueError(f"no benchmark module named {', '.join(unknown)}; available: {', '.join(names) or 'none'}")
    return [n for n in names if n in wanted]


def load(name: str) -> ModuleType:
    return importlib.import_module(f"{__package__ or 'benchmarks'}.{PREFIX}{name}")


def run_one(name: str, quick: bool, loader: Callable[[str], Any] = load) -> Outcome:
    """Import module ``name`` and run it; any exception becomes a failed Outcome."""
    t0 = time.perf_counter()
    outcome = Outcome(name)
    try:
        rows = loader(name).run(quick)
        if not isinstance(rows, list) or not all(isinstance(r, Row) for r in rows):
            raise TypeError(f"bench_{name}.run() must return a list of Row, got {type(rows).__name__}")
        outcome.rows = rows
    except Exception as exc:  # noqa: BLE001 - one broken module must not stop the others
        outcome.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
    outcome.seconds = time.perf_counter() - t0
    gc.collect()
    return outcome


def run_all(names: Sequence[str], quick: bool, loader: Callable[[str], Any] = load) -> list[Outcome]:
    outcomes = []
    for name in names:
        print(f"[{name}] running{' (quick)' if quick else ''} ...", file=sys.stderr, flush=True)
        outcome = run_one(name, quick, loader)
        status = "FAILED" if outcome.failed else f"{len(outcome.rows)} figures"
        print(f"[{name}] {status} in {outcome.seconds:.1f}s", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    return outcomes


# -- formatting -------------------------------------------------------------------


def fmt_value(value: float | None, unit: str) -> str:
    """A figure with its unit: rates with k/M prefixes, bytes with separators."""
    if value is None:
        return "-"
    if value != value or value in (float("inf"), float("-inf")):
        return f"{value} {unit}"
    if unit.endswith("/s"):
        for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= scale:
                return f"{value / scale:.3g}{prefix} {unit}"
        return f"{value:.3g} {unit}"
    if unit == "B":
        return f"{value:,.0f} B"
    return f"{value:.4g} {unit}".strip()


def _target(row: Row) -> str:
    if row.target is None:
        return "-"
    return f"{'<=' if row.lower_is_better else '>='} {row.target:.2f}x"


def _ok(row: Row) -> str:
    return {True: "yes", False: "NO", None: "-"}[row.ok]


HEADER = ("#", "group", "figure", "median", "spread", "baseline", "baseline median", "ratio", "target", "ok")


def table_rows(outcomes: Sequence[Outcome]) -> list[tuple[str, ...]]:
    """One tuple of cells per figure, in HEADER order."""
    out: list[tuple[str, ...]] = []
    i = 0
    for outcome in outcomes:
        for row in outcome.rows:
            i += 1
            group = row.group if row.group.startswith(outcome.name) else f"{outcome.name}/{row.group}"
            fig, base = row.figure, row.baseline
            out.append(
                (
                    str(i),
                    group,
                    fig.name,
                    fmt_value(fig.median, fig.unit),
                    f"{fig.spread:.1%}",
                    base.name if base is not None else "-",
                    fmt_value(base.median, base.unit) if base is not None else "-",
                    f"{row.ratio:.3g}x" if row.ratio is not None else "-",
                    _target(row),
                    _ok(row),
                )
            )
    return out


def notes(outcomes: Sequence[Outcome]) -> list[str]:
    out, i = [], 0
    for outcome in outcomes:
        for row in outcome.rows:
            i += 1
            if row.note:
                out.append(f"#{i}: {row.note}")
    return out


def render_text(outcomes: Sequence[Outcome]) -> str:
    rows = table_rows(outcomes)
    widths = [max(len(h), *(len(r[c]) for r in rows)) if rows else len(h) for c, h in enumerate(HEADER)]
    right = {0, 3, 4, 6, 7}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if j in right else c.ljust(w) for j, (c, w) in enumerate(zip(cells, widths, strict=False))
        ).rstrip()

    lines = [line(HEADER), line(["-" * w for w in widths])]
    lines += [line(r) for r in rows]
    lines += [""] + notes(outcomes) if rows else []
    for outcome in outcomes:
        if outcome.failed:
            lines.append(f"{outcome.name}: FAILED: {outcome.error}")
    return "\n".join(lines)


def render_markdown(outcomes: Sequence[Outcome], meta: dict[str, Any], plots: Sequence[Path] = ()) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|")

    mode = "quick" if meta["quick"] else "full"
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m benchmarks{' --quick' if meta['quick'] else ''} --write-docs` on "
        f"{meta['started'][:10]} ({mode} run; modules: {', '.join(o.name for o in outcomes)}).",
        f"Machine: {meta['platform']}, {meta['cpus']} CPUs, Python {meta['python']}; "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
        + ".",
        "",
        "Every figure stands beside a baseline measured in the same run; the ratio is figure / baseline, "
        "the median of several samples, and the spread is (max - min) / median. "
        "What each figure measures, and why: `benchmarks/README.md`.",
        "",
        *[f"![{p.stem}](images/{p.name})\n" for p in plots],
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---:" if j in (0, 3, 4, 6, 7) else "---" for j in range(len(HEADER))) + "|",
    ]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in table_rows(outcomes)]
    ns = notes(outcomes)
    if ns:
        lines += ["", "Notes:", ""] + [f"- {cell(n)}" for n in ns]
    failed = [o for o in outcomes if o.failed]
    if failed:
        lines += ["", "Failed modules:", ""] + [f"- `{o.name}`: {cell(o.error or '')}" for o in failed]
    return "\n".join(lines) + "\n"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def metadata(quick: bool) -> dict[str, Any]:
    return {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "versions": {d: _version(d) for d in ("joerl", "gevent", "greenlet", "msgpack", "pykka")},
        "argv": sys.argv[1:],
    }


# -- the command ------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the benchmark modules (benchmarks/bench_*.py), print every figure beside "
        "its baseline and target, and write the results as JSON.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer, smaller samples (well under a minute)")
    parser.add_argument("--only", metavar="NAME,...", help="run only these modules (bench_NAME.py)")
    parser.add_argument(
        "--json",
        metavar="PATH",
        type=Path,
        default=DEFAULT_JSON,
        help=f"where to write the results (default: {DEFAULT_JSON.relative_to(ROOT)})",
    )
    parser.add_argument("--write-docs", action="store_true", help=f"also write {DOCS.relative_to(ROOT)}")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed, too")
    parser.add_argument("--list", action="store_true", help="list the benchmark modules and exit")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = available()
    if args.list:
        print("\n".join(names))
        return 0
    try:
        chosen = select(args.only, names)
    except ValueError as exc:
        print(f"python -m benchmarks: {exc}", file=sys.stderr)
        return 2
    meta = metadata(args.quick)
    outcomes = run_all(chosen, args.quick)
    print(render_text(outcomes))
    report = {"meta": meta, "modules": [o.as_dict() for o in outcomes]}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {args.json}", file=sys.stderr)
    if args.write_docs:
        DOCS.parent.mkdir(parents=True, exist_ok=True)
        drawn = plots.write(report, DOCS.parent / "images")  # SVG, one per module (benchmarks/plots.py)
        DOCS.write_text(render_markdown(outcomes, meta, drawn))
        print(f"wrote {DOCS}", file=sys.stderr)
    if any(o.failed for o in outcomes):
        return 1
    if args.strict and any(r.ok is False for o in outcomes for r in o.rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
