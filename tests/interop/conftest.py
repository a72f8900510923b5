"""Fixtures for tests against Erlang's own tools: a real ``epmd`` on a free
port, joerl's daemon in this process, and ``erl`` nodes pointed at either.

Every child is bounded by a timeout and killed by pid in teardown. The tests
skip only where ``erl`` (or ``epmd``) is not installed; CI installs
Debian's ``erlang-nox``. Child processes are waited on with
``gevent.subprocess`` so that the daemon in this process keeps serving.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from gevent import subprocess

from joerl.epmd import EpmdClient, EpmdServer
from joerl.testing import free_port, wait_until

BOOT = 30.0  # an erl node boots in about a second; be generous on a loaded CI machine


@pytest.fixture(scope="session")
def erl() -> str:
    path = shutil.which("erl")
    if path is None or shutil.which("epmd") is None:
        pytest.skip("Erlang (erl, epmd) is not installed; CI installs erlang-nox")
    return path


class RealEpmd:
    """Erlang's epmd in the foreground on ``port``."""

    def __init__(self, port: int, *args: str) -> None:
        self.port = port
        self.address = f"127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ERL_EPMD")}
        self.proc = subprocess.Popen(
            ["epmd", "-port", str(port), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(
            lambda: EpmdClient(self.address, timeout=1).ping() or self.proc.poll() is not None,
            timeout=10,
            what="epmd answers",
        )
        assert self.proc.poll() is None, "epmd exited at once"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def real_epmd(erl: str) -> Iterator[Callable[..., RealEpmd]]:
    started: list[RealEpmd] = []

    def start(*args: str, port: int | None = None) -> RealEpmd:
        e = RealEpmd(port or free_port(), *args)
        started.append(e)
        return e

    yield start
    for e in started:
        e.kill()


@pytest.fixture
def our_epmd(erl: str) -> Iterator[Callable[..., EpmdServer]]:
    servers: list[EpmdServer] = []

    def start(address: str | tuple[str, int] = "127.0.0.1:0", **kw: Any) -> EpmdServer:
        s = EpmdServer(address, **kw)
        s.start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def erl_env(epmd_port: int) -> dict[str, str]:
    """The environment that points erl (and the epmd CLI) at ``epmd_port``."""
    return dict(os.environ, ERL_EPMD_PORT=str(epmd_port))


def erl_argv(name: str, code: str, *extra: str) -> list[str]:
    """An erl node named ``name@127.0.0.1`` that never starts an epmd of its own."""
    return [
        "erl",
        "-name",
        f"{name}@127.0.0.1",
        "-setcookie",
        "JOERLTEST",
        "-start_epmd",
        "false",
        "-noshell",
        *extra,
        "-eval",
        code,
    ]


def run_erl(epmd_port: int, name: str, code: str, timeout: float = BOOT) -> subprocess.CompletedProcess:
    """Boot a node, run ``code`` (which should end with ``init:stop()``), return its output."""
    return subprocess.run(
        erl_argv(name, code),
        env=erl_env(epmd_port),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def run_epmd_cli(epmd_port: int, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
    """``epmd -port N ARGS`` (client mode: -names, -dump, -kill, -stop NAME)."""
    return subprocess.run(
        ["epmd", "-port", str(epmd_port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


class ErlNode:
    """A long-running erl node; ``first_line`` is the first thing it printed."""

    def __init__(self, epmd_port: int, name: str, code: str) -> None:
        self.proc = subprocess.Popen(
            erl_argv(name, code),
            env=erl_env(epmd_port),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        with gevent.Timeout(BOOT, AssertionError(f"erl node {name} printed nothing")):
            self.first_line = self.proc.stdout.readline().strip()

    def kill(self, signum: int = 9) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        self.proc.wait(timeout=BOOT)

    def close(self) -> None:
        self.kill()
        self.proc.stdout.close()


@pytest.fixture
def erl_node(erl: str) -> Iterator[Callable[..., ErlNode]]:
    nodes: list[ErlNode] = []

    def start(epmd_port: int, name: str, code: str) -> ErlNode:
        n = ErlNode(epmd_port, name, code)
        nodes.append(n)
        return n

    yield start
    for n in nodes:
        n.close()


@pytest.fixture(name="run_erl")
def run_erl_fixture(erl: str) -> Callable[..., subprocess.CompletedProcess]:
    """:func:`run_erl`."""
    return run_erl


@pytest.fixture(name="run_epmd_cli")
def run_epmd_cli_fixture(erl: str) -> Callable[..., subprocess.CompletedProcess]:
    """:func:`run_epmd_cli`."""
    return run_epmd_cli


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., Any]:
    """:func:`wait_until`."""
    return wait_until


@pytest.fixture
def clients() -> Iterator[Callable[..., EpmdClient]]:
    made: list[EpmdClient] = []

    def make(address: str, **kw: Any) -> EpmdClient:
        kw.setdefault("timeout", 5.0)
        c = EpmdClient(address, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


# -- a joerl node with Erlang distribution, and erl nodes to talk to (one of each per module) --------


@pytest.fixture(scope="module")
def epmd_port(erl: str) -> Iterator[int]:
    """Erlang's own epmd on a free port, for the module (modules may override it with ours)."""
    e = RealEpmd(free_port())
    yield e.port
    e.kill()


@pytest.fixture(scope="module")
def py_node(epmd_port: int) -> Iterator[Any]:
    """``py@127.0.0.1``, a joerl node with Erlang distribution on."""
    from erl_shell import erlang_node

    node = erlang_node(epmd_port)
    yield node
    node.shutdown()


@pytest.fixture(scope="module")
def e1(epmd_port: int, py_node: Any) -> Iterator[Any]:
    """``e1@127.0.0.1``, a long-running erl evaluating expressions (``e1.eval(...)``)."""
    from erl_shell import ErlShell

    shell = ErlShell(epmd_port, "e1")
    yield shell
    shell.close()
