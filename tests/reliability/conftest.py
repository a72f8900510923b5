"""Fixtures of the fault and soak tests, and the figures they record.

Every test here takes the ``scenario`` fixture and writes its figures into it
(messages sent, delivered, reported lost, order violations, times to detect
and to reconnect, memory, ...) and the invariants it checked. At the end of
the session every scenario, with the outcome of every test of this directory
(bugs found are ``xfail(strict=True)`` tests: their reasons are listed too),
goes to a JSON file: ``$JOERL_RELIABILITY_JSON``, else
``tests/reliability/.last_run.json``. ``python -m benchmarks.reliability``
runs the suite and turns that file into ``docs/reliability.md``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _reliakit import COOKIE, ROOT, WAIT, epmd_argv, node_argv

from joerl.node.connection import LinkConfig
from joerl.node.node import DistributedSystem
from joerl.testing import ChildProcess, ProcessGroup, fields

RESULTS_ENV = "JOERL_RELIABILITY_JSON"
DEFAULT_JSON = Path(__file__).with_name(".last_run.json")

_scenarios: dict[str, Scenario] = {}
_tests: dict[str, dict[str, Any]] = {}
_started = time.time()


class Scenario:
    """The figures and checks of one test (see the module docstring)."""

    def __init__(self, nodeid: str, key: str, title: str, setup: str) -> None:
        self.nodeid, self.key, self.title, self.setup = nodeid, key, title, setup
        self.figures: list[dict[str, Any]] = []
        self.checks: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def figure(self, key: str, value: Any, label: str, unit: str = "") -> Any:
        """Record a figure (replacing one of the same key); return the value."""
        if isinstance(value, float):
            value = round(value, 3)
        self.figures = [f for f in self.figures if f["key"] != key]
        self.figures.append({"key": key, "label": label, "value": value, "unit": unit})
        return value

    def check(self, ok: Any, what: str) -> bool:
        """Record an invariant and whether it held (assert them all with :meth:`verify`)."""
        self.checks.append({"what": what, "ok": bool(ok)})
        return bool(ok)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def verify(self) -> None:
        """Fail the test if any recorded check failed (after every figure is in)."""
        failed = [c["what"] for c in self.checks if not c["ok"]]
        figures = {f["key"]: f["value"] for f in self.figures}
        assert not failed, f"{self.key}: failed checks {failed}; figures {figures}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "setup": self.setup,
            "figures": self.figures,
            "checks": self.checks,
            "notes": self.notes,
        }


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Callable[..., Scenario]:
    """``scenario(key, title, setup)``: this test's :class:`Scenario`."""

    def make(key: str, title: str, setup: str = "") -> Scenario:
        rec = _scenarios[request.node.nodeid] = Scenario(request.node.nodeid, key, title, setup)
        return rec

    return make


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # A conftest's runtest hooks see the items of its directory only.
    entry = _tests.setdefault(
        report.nodeid, {"nodeid": report.nodeid, "outcome": "passed", "seconds": 0.0, "reason": ""}
    )
    entry["seconds"] = round(entry["seconds"] + report.duration, 3)
    wasxfail = getattr(report, "wasxfail", None)
    if report.when == "call" or report.outcome != "passed":
        if wasxfail is not None:
            entry["outcome"] = "xfailed" if report.skipped else "xpassed"
            entry["reason"] = wasxfail
        elif report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            entry["reason"] = str(report.longrepr)[-2000:]
        elif report.skipped:
            entry["outcome"] = "skipped"
            entry["reason"] = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _tests:
        return
    import gevent

    tests = []
    for nodeid, entry in _tests.items():
        rec = _scenarios.get(nodeid)
        tests.append(dict(entry, scenario=rec.as_dict() if rec is not None else None))
    data = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.time() - _started, 1),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "gevent": gevent.__version__,
        },
        "argv": sys.argv[1:],
        "exitstatus": int(exitstatus),
        "tests": tests,
    }
    path = Path(os.environ.get(RESULTS_ENV) or DEFAULT_JSON)
    path.write_text(json.dumps(data, indent=1) + "\n")


# -- processes ----------------------------------------------------------------------------------


@pytest.fixture
def procs() -> Iterator[ProcessGroup]:
    """Every child process a test starts goes here; all are killed and reaped after it."""
    with ProcessGroup(cookie=COOKIE, cwd=ROOT, timeout=WAIT) as group:
        yield group


@pytest.fixture
def start(procs: ProcessGroup) -> Callable[[list[str]], ChildProcess]:
    """``start(argv) -> ChildProcess``, killed after the test."""
    return procs.start


@pytest.fixture
def epmd(start: Callable[[list[str]], ChildProcess]) -> str:
    """A private port mapper process on a free loopback port; its address."""
    child = start(epmd_argv("127.0.0.1:0"))
    return f"127.0.0.1:{fields(child.wait_line('READY'))['port']}"


@pytest.fixture
def start_node(start: Callable[[list[str]], ChildProcess], epmd: str) -> Callable[..., ChildProcess]:
    """``start_node(name, role, *options, tick=1.0)``: a node_main process, once READY."""

    def run(name: str, role: str, *options: str, tick: float = 1.0) -> ChildProcess:
        child = start(node_argv(name, epmd, role, *options, tick=tick))
        child.wait_ready()
        return child

    return run


@pytest.fixture
def here(epmd: str) -> Iterator[DistributedSystem]:
    """This test process as a node on the private port mapper: tick time 1 s,
    handshake deadline 2 s (so that a dial into a frozen peer gives up soon)."""
    node = DistributedSystem(
        "tester",
        "127.0.0.1:0",
        epmd,
        cookie=COOKIE,
        start_epmd=False,
        link_config=LinkConfig(tick_time=1.0, handshake_timeout=2.0),
    )
    try:
        yield node
    finally:
        node.shutdown()
