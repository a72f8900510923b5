"""``joerl-epmd -names``, ``-kill`` and ``-stop NAME`` against joerl's daemon.

The daemon runs as a child process (``python -m joerl.epmd 127.0.0.1:0``),
the commands as other child processes; names are registered by an
:class:`~joerl.epmd.EpmdClient` in this process. KILL is refused while
names are registered and STOP unless the daemon is relaxed, as Erlang's
epmd does (``tests/interop/test_epmd_commands_vs_erlang.py`` compares the two).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gevent import socket, subprocess

from joerl.epmd import EpmdClient
from joerl.epmd.client import describe_listener
from joerl.epmd.protocol import Alive2Req, Alive2Resp, ClassicReplyDecoder
from joerl.testing import ChildProcess, free_port, wait_until

TIMEOUT = 30.0


def command(port: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "joerl.epmd", "-port", str(port), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def daemon() -> Iterator[ChildProcess]:
    with ChildProcess([sys.executable, "-m", "joerl.epmd", "127.0.0.1:0"], timeout=TIMEOUT) as child:
        child.wait_ready()
        yield child


@pytest.fixture
def relaxed() -> Iterator[ChildProcess]:
    argv = [sys.executable, "-m", "joerl.epmd", "127.0.0.1:0", "-relaxed_command_check"]
    with ChildProcess(argv, timeout=TIMEOUT) as child:
        child.wait_ready()
        yield child


@pytest.mark.timeout(90)
def test_names_lists_the_registered_names_as_epmd_does(daemon: ChildProcess) -> None:
    port = int(daemon.ready["port"])
    empty = command(port, "-names")
    assert (empty.returncode, empty.stdout) == (0, f"epmd: up and running on port {port} with data:\n")
    with EpmdClient(f"127.0.0.1:{port}") as client:
        client.register("alpha", "127.0.0.1", 6001)
        client.register("beta", "127.0.0.1", 6002)
        listed = command(port, "--names")  # the long spelling too
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        f"epmd: up and running on port {port} with data:",
        "name beta at port 6002",
        "name alpha at port 6001",
    ]


@pytest.mark.timeout(90)
def test_kill_is_refused_while_names_live_and_obeyed_once_none_do(daemon: ChildProcess) -> None:
    port = int(daemon.ready["port"])
    with EpmdClient(f"127.0.0.1:{port}") as client:
        client.register("alpha", "127.0.0.1", 6001)
        refused = command(port, "-kill")
        assert (refused.returncode, refused.stdout) == (1, "Killing not allowed - living nodes in database.\n")
        assert daemon.alive
    wait_until(lambda: command(port, "-names").stdout.count("\n") == 1, timeout=10.0, what="alpha unregistered")
    killed = command(port, "-kill")
    assert (killed.returncode, killed.stdout) == (0, "Killed\n")
    assert daemon.wait() == 0


@pytest.mark.timeout(90)
def test_stop_is_refused_by_a_daemon_that_is_not_relaxed(daemon: ChildProcess) -> None:
    port = int(daemon.ready["port"])
    with EpmdClient(f"127.0.0.1:{port}") as client:
        client.register("alpha", "127.0.0.1", 6001)
        refused = command(port, "-stop", "alpha")
        assert refused.returncode == 1
        assert "STOP refused by the port mapper" in refused.stderr and "--relaxed-command-check" in refused.stderr
        assert client.lookup("alpha") is not None


def alive2(port: int, name: str, node_port: int) -> socket.socket:
    """A registration as an erl node makes it: ALIVE2 on a connection held open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.sendall(Alive2Req(node_port, name).encode())
    reply = ClassicReplyDecoder(Alive2Req(node_port, name))
    while (answer := reply.feed(sock.recv(64))) is None:
        pass
    assert isinstance(answer, Alive2Resp) and answer.ok
    return sock


@pytest.mark.timeout(90)
def test_a_relaxed_daemon_obeys_stop_and_kill_with_names_registered(relaxed: ChildProcess) -> None:
    port = int(relaxed.ready["port"])
    alpha, beta = alive2(port, "alpha", 6001), alive2(port, "beta", 6002)
    try:
        assert command(port, "-stop", "nosuch").stdout == "NOEXIST\n"
        stopped = command(port, "-stop", "alpha")
        assert (stopped.returncode, stopped.stdout) == (0, "STOPPED\n")
        assert alpha.recv(1) == b""  # the daemon dropped alpha's registration (and its connection)
        assert command(port, "-names").stdout.splitlines()[1:] == ["name beta at port 6002"]
        killed = command(port, "-kill")
        assert (killed.returncode, killed.stdout) == (0, "Killed\n")
        assert relaxed.wait() == 0
    finally:
        alpha.close()
        beta.close()


@pytest.mark.timeout(60)
def test_asking_where_no_daemon_listens_fails_with_a_clear_message() -> None:
    port = free_port()
    for args in (["-names"], ["-kill"], ["-stop", "alpha"]):
        result = command(port, *args)
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.startswith("joerl-epmd: ") and f"127.0.0.1:{port}" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.timeout(90)
def test_the_example_server_on_a_taken_port_says_who_holds_it_and_how_to_stop_it(daemon: ChildProcess) -> None:
    port = int(daemon.ready["port"])
    example = Path(__file__).resolve().parents[2] / "examples" / "epmd_server.py"
    with EpmdClient(f"127.0.0.1:{port}") as client:
        client.register("alpha", "127.0.0.1", 6001)
        for argv in ([str(example)], ["-m", "joerl.epmd"]):
            result = subprocess.run(
                [sys.executable, *argv, f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=TIMEOUT
            )
            assert result.returncode == 1
            assert "joerl's port mapper listens there, with 1 name registered (alpha)" in result.stderr
            assert f"joerl-epmd -port {port} -kill" in result.stderr
            assert "Traceback" not in result.stderr


@pytest.mark.timeout(60)
def test_describe_listener_tells_a_port_mapper_from_something_else(daemon: ChildProcess) -> None:
    port = int(daemon.ready["port"])
    assert describe_listener(f"127.0.0.1:{port}") == (
        f"joerl's port mapper listens there, with no names: stop it with: joerl-epmd -port {port} -kill"
    )
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen()
    try:  # accepts connections, answers nothing
        text = describe_listener(other.getsockname(), timeout=0.5)
    finally:
        other.close()
    assert text.startswith("something that is not a port mapper listens there")
