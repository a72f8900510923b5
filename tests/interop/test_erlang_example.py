"""examples/erlang_interop.py against a real erl: it becomes ready, answers net_adm:ping,
gen_server:call and its one rpc handler, refuses other rpc, and exits 0 on SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest
from erl_shell import Epmd, ErlShell
from gevent import subprocess

from joerl.erlang import Atom

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "erlang_interop.py"


@pytest.fixture
def epmd(erl: str) -> Iterator[Epmd]:
    e = Epmd()
    yield e
    e.kill()


def test_the_example_serves_erlang_nodes_until_sigterm(epmd: Epmd) -> None:
    env = dict(os.environ, ERL_EPMD_PORT=str(epmd.port))
    env.pop("JOERL_EPMD_ADDRESS", None)
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--name", "py@127.0.0.1", "--cookie", "JOERLTEST"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    shell = None
    try:
        with gevent.Timeout(30, AssertionError("the example printed nothing")):
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready: py@127.0.0.1"
        shell = ErlShell(epmd.port, "e9")
        assert shell.eval("net_adm:ping('py@127.0.0.1')") == Atom("pong")
        assert shell.eval("gen_server:call({echo, 'py@127.0.0.1'}, {hello, [1, 2, 3], <<\"bytes\">>})") == (
            Atom("hello"),
            [1, 2, 3],
            b"bytes",
        )
        assert shell.eval("rpc:call('py@127.0.0.1', echo, upper, [<<\"abc\">>])") == b"ABC"
        refused = shell.eval("rpc:call('py@127.0.0.1', os, cmd, [\"id\"])")
        assert refused[0] == Atom("badrpc")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if shell is not None:
            shell.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
