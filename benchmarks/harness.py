"""Shared measuring code for the benchmarks.

Every benchmark module ``benchmarks/bench_*.py`` exposes
``run(quick: bool) -> list[Row]``. A ``Row`` is one figure measured several
times (median and spread reported), with the baseline it is compared to and
the target ratio from the issue that asked for it. ``python -m benchmarks``
runs them all, prints a table and writes JSON.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Figure:
    """A rate (or size) measured ``len(samples)`` times."""

    name: str
    unit: str
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """Relative spread: (max - min) / median."""
        m = self.median
        return (max(self.samples) - min(self.samples)) / m if m else 0.0


@dataclass
class Row:
    """A figure beside a baseline; ``ratio = figure / baseline`` (or inverted for costs)."""

    group: str
    figure: Figure
    baseline: Figure | None = None
    target: float | None = None  # minimum ratio (or maximum, when lower_is_better)
    lower_is_better: bool = False
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline.median:
            return None
        return self.figure.median / self.baseline.median

    @property
    def ok(self) -> bool | None:
        if self.target is None or self.ratio is None:
            return None
        return self.ratio <= self.target if self.lower_is_better else self.ratio >= self.target

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("figure", "baseline"):
            fig = getattr(self, key)
            if fig is not None:
                d[key].update(median=fig.median, spread=fig.spread)
        d.update(ratio=self.ratio, ok=self.ok)
        return d


def rate(fn: Callable[[int], Any], n: int, *, repeats: int = 5, name: str = "", unit: str = "ops/s") -> Figure:
    """Run ``fn(n)`` ``repeats`` times; each sample is ``n / seconds``."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(n)
        dt = time.perf_counter() - t0
        samples.append(n / dt if dt > 0 else float("inf"))
    return Figure(name or getattr(fn, "__name__", "?"), unit, samples)


def interleaved(
    fns: dict[str, Callable[[int], Any]], n: int, *, repeats: int = 5, unit: str = "ops/s"
) -> dict[str, Figure]:
    """Measure several functions in turns (a, b, c, a, b, c, ...) so that noise on
    the shared machine lands on all of them alike."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn(n)
            dt = time.perf_counter() - t0
            samples[key].append(n / dt if dt > 0 else float("inf"))
    return {k: Figure(k, unit, v) for k, v in samples.items()}
