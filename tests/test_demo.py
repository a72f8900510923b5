"""The README's first command: ``python -m joerl demo`` runs and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.timeout(120)
def test_demo_runs_every_step_and_exits_0() -> None:
    env = dict(os.environ, JOERL_COOKIE="demo-test-cookie")
    env.pop("JOERL_EPMD_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "joerl", "demo", "--messages", "5000", "--round-trips", "500"],
        capture_output=True,
        text=True,
        timeout=100,
        env=env,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for line in (
        "-- discovery: what the port mapper knows --",
        "beta counted 5000 of 5000 messages",
        "reply: hello demo",
        "NodeDown(node='beta', reason='noconnection')",
        "reason='noconnection')",
        "the supervisor restarted the worker",
        "node alpha exited with status 0",
        "demo finished: all steps worked",
    ):
        assert line in out, f"missing {line!r} in:\n{out}"


def test_unknown_command_exits_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "joerl", "nope"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "usage" in proc.stderr
