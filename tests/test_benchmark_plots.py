"""benchmarks/plots.py: SVG plots drawn from a benchmark run's JSON."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import plots  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


def _row(group: str, figure: list[float], base: float, target: float | None, ok: bool | None) -> dict:
    fig = {"name": group, "unit": "msg/s", "samples": figure, "median": sorted(figure)[len(figure) // 2]}
    return {
        "group": group,
        "figure": fig,
        "baseline": {"name": "floor", "unit": "msg/s", "samples": [base], "median": base},
        "ratio": fig["median"] / base,
        "target": target,
        "lower_is_better": False,
        "ok": ok,
    }


def test_a_module_plot_has_a_bar_a_whisker_and_a_target_per_row() -> None:
    module = {
        "name": "local",
        "rows": [
            _row("one-way", [40.0, 50.0, 60.0], 100.0, 0.3, True),
            _row("call", [10.0, 12.0, 11.0], 100.0, 0.5, False),
            _row("no baseline", [1.0], 1.0, None, None) | {"baseline": None, "ratio": None},
        ],
    }
    text = plots.svg(module)
    assert text is not None
    root = ET.fromstring(text)
    bars = root.findall(f"{SVG}rect")
    assert [b.get("fill") for b in bars] == ["#2e7d32", "#c62828"]  # met, missed; the row without a ratio left out
    labels = [t.text for t in root.findall(f"{SVG}text")]
    assert "0.50x" in labels and "0.11x" in labels
    assert any("one-way" in (t or "") for t in labels)


def test_a_module_without_ratios_gets_no_plot_and_write_names_its_files(tmp_path: Path) -> None:
    assert plots.svg({"name": "x", "rows": []}) is None
    report = {"modules": [{"name": "x", "rows": []}, {"name": "local", "rows": [_row("a", [1.0], 2.0, None, None)]}]}
    written = plots.write(report, tmp_path)
    assert written == [tmp_path / "benchmarks-local.svg"]
    ET.parse(written[0])
