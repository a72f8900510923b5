"""The daemon as a program: ``python -m joerl.epmd``, ``joerl-epmd``,
``--daemon`` (through ``spawn_daemon``) and ``examples/epmd_server.py``;
readiness by a ``READY port=N`` line, clean stops on SIGINT and SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
from gevent import socket, subprocess

from joerl.epmd import EpmdClient, EpmdConnectionError, ping, spawn_daemon
from joerl.testing import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
WAIT = 20.0


class Running:
    """A daemon process started in the foreground, ready once it printed READY."""

    def __init__(self, argv: list[str]) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        with gevent.Timeout(WAIT):
            line = self.proc.stdout.readline().decode()
        if not line.startswith("READY"):
            self.proc.kill()
            raise AssertionError(f"no READY line: {line!r} {self.proc.stderr.read().decode()}")
        self.port = int(line.split("port=")[1].split()[0])

    def stop(self, signum: int) -> tuple[int, str]:
        self.proc.send_signal(signum)
        with gevent.Timeout(WAIT):
            code = self.proc.wait()
        return code, self.proc.stderr.read().decode()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def running() -> Iterator[Any]:
    started: list[Running] = []

    def start(argv: list[str]) -> Running:
        r = Running(argv)
        started.append(r)
        return r

    yield start
    for r in started:
        r.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_module_runs_logs_and_stops_cleanly(running: Any, signum: int) -> None:
    d = running([sys.executable, "-m", "joerl.epmd", "127.0.0.1:0", "--keepalive-timeout", "5"])
    c = EpmdClient(f"127.0.0.1:{d.port}", timeout=5)
    c.register("clinode", "h", 1234)
    assert c.lookup("clinode").port == 1234
    c.close()
    code, log = d.stop(signum)
    assert code == 0
    assert "registered clinode port=1234" in log
    assert "unregistered clinode" in log
    assert f"received {signal.Signals(signum).name}" in log and "stopped" in log


def test_console_script(running: Any) -> None:
    exe = shutil.which("joerl-epmd")
    if exe is None:
        pytest.skip("joerl-epmd is not installed (pip install -e .)")
    d = running([exe, "127.0.0.1:0", "--log-level", "warning"])
    assert ping(f"127.0.0.1:{d.port}")
    assert d.stop(signal.SIGTERM)[0] == 0


def test_example_server(running: Any) -> None:
    d = running([sys.executable, str(ROOT / "examples" / "epmd_server.py"), "127.0.0.1:0"])
    assert EpmdClient(f"127.0.0.1:{d.port}").probe() == "joerl"
    code, log = d.stop(signal.SIGINT)
    assert code == 0 and "bye" in log


def test_bad_address_and_taken_port() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "joerl.epmd", "127.0.0.1:notaport"], capture_output=True, timeout=WAIT, cwd=ROOT
    )
    assert r.returncode == 2 and b"bad port" in r.stderr
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        port = blocker.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "joerl.epmd", f"127.0.0.1:{port}"], capture_output=True, timeout=WAIT, cwd=ROOT
        )
        assert r.returncode == 1 and b"cannot listen" in r.stderr
        r = subprocess.run(
            [sys.executable, "-m", "joerl.epmd", "--daemon", f"127.0.0.1:{port}"],
            capture_output=True,
            timeout=WAIT,
            cwd=ROOT,
        )
        assert r.returncode == 1 and b"cannot listen" in r.stderr
        with pytest.raises(EpmdConnectionError, match="could not start joerl-epmd"):
            spawn_daemon(f"127.0.0.1:{port}", timeout=WAIT)
    finally:
        blocker.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_spawn_daemon_detaches_and_answers() -> None:
    address = f"127.0.0.1:{free_port()}"
    pid = spawn_daemon(address, timeout=WAIT, args=["--keepalive-timeout", "30"])
    try:
        assert pid > 0 and pid != os.getpid()
        assert os.getsid(pid) != os.getsid(0)  # another session: detached from ours
        assert ping(address)
        assert spawn_daemon(address, timeout=WAIT) == 0  # one answers already: nothing started
        c = EpmdClient(address)
        c.register("detached", "h", 99)
        assert c.lookup("detached").port == 99
        c.close()
    finally:
        os.kill(pid, signal.SIGTERM)
        try:
            wait_until(lambda: not _alive(pid), timeout=WAIT)
        except TimeoutError:
            pass
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert not ping(address)
