"""The benchmark runner works: ``python -m benchmarks --quick --only local`` prints
the table and writes JSON; a benchmark module that raises is reported as failed
while the others still run; ``--only`` rejects unknown names.

The subprocess run measures for real (quick mode, some 10-20 s); it checks the
shape of the results, never the figures, which depend on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # ``benchmarks`` is not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import __main__ as runner  # noqa: E402
from benchmarks.harness import Figure, Row  # noqa: E402

GROUPS = {"one-way", "ping-pong", "call", "spawn-exit", "memory", "scaling"}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.mark.timeout(120)
def test_quick_local_run_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "local", "--json", str(out)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = proc.stdout.splitlines()[0].split()
    for column in ("group", "figure", "median", "spread", "baseline", "ratio", "target", "ok"):
        assert column in header, proc.stdout
    for group in GROUPS:
        assert f"local/{group}" in proc.stdout, proc.stdout

    report = json.loads(out.read_text())
    assert report["meta"]["quick"] is True
    assert report["meta"]["versions"]["gevent"]
    [module] = report["modules"]
    assert module["name"] == "local" and module["ok"] is True and module["error"] is None
    rows = module["rows"]
    assert {r["group"] for r in rows} == GROUPS
    for r in rows:
        fig = r["figure"]
        assert len(fig["samples"]) >= 2 and all(s > 0 for s in fig["samples"]), r
        assert fig["median"] > 0 and fig["spread"] >= 0
        assert r["baseline"] is not None and r["baseline"]["median"] > 0, r
        assert r["ratio"] == pytest.approx(fig["median"] / r["baseline"]["median"])
    targets = {(r["group"], r["target"]) for r in rows if r["target"] is not None}
    assert {
        ("one-way", 0.3),
        ("ping-pong", 0.6),
        ("call", 0.35),
        ("call", 3.0),
        ("spawn-exit", 0.5),
        ("memory", 1.3),
        ("scaling", 0.7),
    } <= targets
    assert all(isinstance(r["ok"], bool) for r in rows if r["target"] is not None)
    assert {r["extra"]["live"] for r in rows if r["group"] == "scaling"} == {100, 10_000}


def _fake(rows: list[Row] | None = None, error: BaseException | None = None) -> Any:
    def run(quick: bool) -> list[Row]:
        if error is not None:
            raise error
        return rows or []

    return SimpleNamespace(run=run)


def test_a_module_that_raises_is_reported_and_the_others_still_run() -> None:
    row = Row("g", Figure("fast", "msg/s", [2.0, 2.0, 2.0]), Figure("floor", "msg/s", [4.0, 4.0, 4.0]), 0.3)
    modules = {"a": _fake(error=RuntimeError("boom")), "b": _fake([row]), "c": _fake(error=ImportError("gone"))}
    outcomes = runner.run_all(["a", "b", "c"], quick=True, loader=modules.__getitem__)

    assert [o.failed for o in outcomes] == [True, False, True]
    assert outcomes[0].error == "RuntimeError: boom"
    assert outcomes[1].rows == [row]
    text = runner.render_text(outcomes)
    assert "b/g" in text and "0.5x" in text and ">= 0.30x" in text and "yes" in text
    assert "a: FAILED: RuntimeError: boom" in text and "c: FAILED: ImportError: gone" in text
    assert json.loads(json.dumps([o.as_dict() for o in outcomes]))[1]["rows"][0]["ok"] is True


def test_a_module_returning_something_else_fails() -> None:
    [outcome] = runner.run_all(["x"], quick=True, loader=lambda name: SimpleNamespace(run=lambda quick: 42))
    assert outcome.failed and "list of Row" in (outcome.error or "")


def test_only_selects_modules_and_rejects_unknown_names() -> None:
    names = runner.available()
    assert "local" in names
    assert runner.select("bench_local", names) == ["local"]
    assert runner.select(None, names) == names
    with pytest.raises(ValueError, match="nope"):
        runner.select("local,nope", names)


def test_markdown_summary_is_a_table() -> None:
    row = Row(
        "memory", Figure("actor", "B", [9.0, 10.0]), Figure("greenlet", "B", [10.0, 10.0]), 1.3, lower_is_better=True
    )
    md = runner.render_markdown([runner.Outcome("local", [row])], runner.metadata(quick=True))
    lines = md.splitlines()
    assert lines[0] == "# Benchmarks"
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 3 and "<= 1.30x" in table[2] and "| yes |" in table[2]
