"""``joerl-epmd -names``, ``-kill``, ``-stop NAME`` print what Erlang's ``epmd`` prints.

Both command lines ask the same daemon, Erlang's real epmd (strict, then
relaxed with ``-relaxed_command_check``), holding a name registered by an
:class:`~joerl.epmd.EpmdClient`: their standard output and exit status must
match, except where epmd closes a refused request unanswered (joerl's then
explains on standard error, where Erlang's prints ``responded with <>``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from gevent import subprocess

from joerl.epmd import EpmdClient

pytestmark = pytest.mark.interop


def ours(port: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "joerl.epmd", "-port", str(port), *args],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.timeout(120)
def test_names_and_kill_match_epmd_at_a_strict_daemon(
    real_epmd: Callable[..., Any], run_epmd_cli: Callable[..., Any], clients: Callable[..., EpmdClient]
) -> None:
    epmd = real_epmd()
    clients(epmd.address).register("pyreg", "127.0.0.1", 6001)
    expected = {"-names": "name pyreg at port 6001\n", "-kill": "Killing not allowed - living nodes in database.\n"}
    for arg, line in expected.items():
        theirs, mine = run_epmd_cli(epmd.port, arg), ours(epmd.port, arg)
        assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), arg
        assert mine.stdout.endswith(line)
    theirs, mine = run_epmd_cli(epmd.port, "-stop", "pyreg"), ours(epmd.port, "-stop", "pyreg")
    assert mine.returncode == theirs.returncode == 1
    assert "STOP refused" in mine.stderr
    assert epmd.proc.poll() is None


@pytest.mark.timeout(120)
def test_stop_and_kill_match_epmd_at_a_relaxed_daemon(
    real_epmd: Callable[..., Any], run_epmd_cli: Callable[..., Any], clients: Callable[..., EpmdClient]
) -> None:
    epmd = real_epmd("-relaxed_command_check")
    clients(epmd.address).register("pyreg", "127.0.0.1", 6001)
    theirs, mine = run_epmd_cli(epmd.port, "-stop", "nosuch"), ours(epmd.port, "-stop", "nosuch")
    assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout) == (0, "NOEXIST\n")
    mine = ours(epmd.port, "-stop", "pyreg")
    assert (mine.returncode, mine.stdout) == (0, "STOPPED\n")
    mine = ours(epmd.port, "-kill")
    assert (mine.returncode, mine.stdout) == (0, "Killed\n")
    assert epmd.proc.wait(timeout=10) == 0
