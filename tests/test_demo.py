"""The README's first command: ``python -m joerl demo`` runs and exits 0."""

from __future__ import annotations

import sys

import pytest

from joerl.node.names import node_name as full
from joerl.testing import ChildProcess


@pytest.mark.timeout(120)
def test_demo_runs_every_step_and_exits_0() -> None:
    argv = [sys.executable, "-m", "joerl", "demo", "--messages", "5000", "--round-trips", "500"]
    with ChildProcess(argv, cookie="demo-test-cookie", stdin=False, timeout=100) as demo:
        code = demo.wait()
        out = "\n".join(demo.lines) + "\n"
        assert code == 0, out + demo.stderr()
    for line in (
        "-- discovery: what the port mapper knows --",
        "beta counted 5000 of 5000 messages",
        "reply: hello demo",
        f"NodeDown(node={full('beta')!r}, reason='noconnection')",
        "reason='noconnection')",
        "the supervisor restarted the worker",
        "node alpha exited with status 0",
        "demo finished: all steps worked",
    ):
        assert line in out, f"missing {line!r} in:\n{out}"


def test_unknown_command_exits_2() -> None:
    with ChildProcess([sys.executable, "-m", "joerl", "nope"], stdin=False, timeout=30) as cli:
        assert cli.wait() == 2
        assert "usage" in cli.stderr()
