"""``python -m joerl``: the command line's help, version and exit statuses."""

from __future__ import annotations

import subprocess
import sys

import joerl


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "joerl", *args], capture_output=True, text=True, timeout=60)


def test_no_command_prints_help_and_exits_2() -> None:
    r = _run()
    assert r.returncode == 2
    assert "usage: joerl" in r.stderr and "demo" in r.stderr and "version" in r.stderr


def test_version() -> None:
    r = _run("version")
    assert r.returncode == 0 and r.stdout.strip() == joerl.__version__


def test_an_unknown_command_is_refused() -> None:
    r = _run("bogus")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_the_demo_has_its_own_help() -> None:
    r = _run("demo", "--help")
    assert r.returncode == 0 and "--round-trips" in r.stdout
