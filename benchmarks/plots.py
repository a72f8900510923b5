"""SVG plots of a benchmark run, drawn from its JSON (``python -m benchmarks.plots [RESULTS.json] [OUT_DIR]``).

One plot per benchmark module: a horizontal bar per row with a baseline, its
length the ratio figure / baseline (the median of the samples), a whisker
over the range the figure's samples spanned (relative to the baseline's
median), and a mark at the row's target ratio when it has one (a cost, such
as memory, has a maximum ratio: lower is better). Bars are green where the
target is met, red where it is missed, grey without a target.
A ratio of 1 (as fast as the baseline) is the dashed line.

Plain SVG text, written without a plotting library, so that the docs build
needs nothing more; ``python -m benchmarks --write-docs`` draws them beside
docs/benchmarks.md.
"""

from __future__ import annotations

import json
import sys
from html import escape
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WIDTH = 900
LABEL = 440  # the left column with the row names
BAR = 22
GAP = 10
TOP = 40


def _short(label: str, size: int = 68) -> str:
    return label if len(label) <= size else label[: size - 3] + "..."


def _rows(module: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in module.get("rows", []) if r.get("ratio") is not None and r.get("baseline")]


def svg(module: dict[str, Any]) -> str | None:
    """The module's plot, or None when none of its rows has a ratio."""
    rows = _rows(module)
    if not rows:
        return None
    spans = []
    for r in rows:
        base = r["baseline"]["median"]
        samples = r["figure"].get("samples") or [r["figure"]["median"]]
        spans.append((min(samples) / base, max(samples) / base))
    top = max([1.0] + [hi for _, hi in spans] + [r.get("target") or 0 for r in rows]) * 1.1
    scale = (WIDTH - LABEL - 60) / top
    height = TOP + len(rows) * (BAR + GAP) + 30
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(module["name"])}: '
        "ratio to the baseline of the same run (median; whisker: samples' range)</text>",
    ]
    x1 = LABEL + scale
    out.append(
        f'<line x1="{x1:.1f}" y1="{TOP - 8}" x2="{x1:.1f}" y2="{height - 24}" stroke="#555" stroke-dasharray="4 3"/>'
    )
    out.append(f'<text x="{x1:.1f}" y="{height - 10}" text-anchor="middle">1x</text>')
    for i, (r, (lo, hi)) in enumerate(zip(rows, spans, strict=True)):
        y = TOP + i * (BAR + GAP)
        ok = r.get("ok")
        colour = "#9e9e9e" if ok is None else "#2e7d32" if ok else "#c62828"
        ratio = r["ratio"]
        label = f"{r['group']}: {r['figure']['name']} / {r['baseline']['name']}"
        if r.get("lower_is_better"):
            label += " (lower is better)"
        out.append(f'<text x="{LABEL - 8}" y="{y + BAR * 0.7:.1f}" text-anchor="end">{escape(_short(label))}</text>')
        out.append(f'<rect x="{LABEL}" y="{y}" width="{ratio * scale:.1f}" height="{BAR}" fill="{colour}"/>')
        mid = y + BAR / 2
        out.append(
            f'<line x1="{LABEL + lo * scale:.1f}" y1="{mid}" x2="{LABEL + hi * scale:.1f}" y2="{mid}" stroke="#000"/>'
        )
        out.append(
            f'<text x="{LABEL + max(ratio, hi, r.get("target") or 0) * scale + 6:.1f}" y="{y + BAR * 0.7:.1f}">{ratio:.2f}x</text>'
        )
        target = r.get("target")
        if target:
            tx = LABEL + target * scale
            out.append(
                f'<line x1="{tx:.1f}" y1="{y - 3}" x2="{tx:.1f}" y2="{y + BAR + 3}" stroke="#000" stroke-width="2"/>'
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(report: dict[str, Any], folder: Path) -> list[Path]:
    """Write ``benchmarks-NAME.svg`` into ``folder`` for every module with ratios; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for module in report.get("modules", []):
        text = svg(module)
        if text is not None:
            path = folder / f"benchmarks-{module['name']}.svg"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else HERE / "results.json"
    folder = Path(argv[1]) if len(argv) > 1 else HERE.parent / "docs" / "images"
    for path in write(json.loads(source.read_text(encoding="utf-8")), folder):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
