"""Every ``examples/*.py`` runs as a subprocess, exits 0 and prints its key line.

The table ``EXAMPLES`` lists every example with what to pass it and what to
expect; a test fails when an example file is missing from it, so a new
example cannot go untested by accident. Examples that run servers or need
peers are marked ``tested_elsewhere`` with the test that covers them.

A distributed example runs as several processes (``peers``, started first,
then the main one), against a private port mapper process on a free port
(``epmd=True``), with ``$JOERL_COOKIE`` set: nothing touches port 4369 or the
home directory, and every process is killed at the end.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "examples"


@dataclass(frozen=True)
class Peer:
    """Another process of a distributed example (another node), started before the main one.

    Attributes:
        args: its command-line arguments (placeholders as in ``Example.args``).
        ready: start the next process only once this one printed a line containing this.
        expect: lines it must print, in order; it must exit 0 soon after the main one.
    """

    args: tuple[str, ...]
    ready: str | None = None
    expect: tuple[str, ...] = ()


@dataclass(frozen=True)
class Example:
    """How to run one example and what it must print.

    Attributes:
        args: command-line arguments.
        expect: lines (substrings of one stdout line each) that must appear, in order.
        anywhere: lines that must appear, in any order (output of concurrent processes).
        allow_tracebacks: the example crashes actors on purpose and lets the
            runtime log tracebacks on stderr.
        tested_elsewhere: why this test does not run it, and which test does.
        max_seconds: how long a run may take (generous: the machine is shared).
        peers: processes run beside this one (the other nodes of a distributed example).
        epmd: run against a private port mapper process: ``{epmd}`` in args becomes
            its address, also in ``$JOERL_EPMD_ADDRESS``; ``$JOERL_COOKIE`` is set;
            ``{port0}``, ``{port1}``, ... become free loopback ports.
        xfail: a known bug the example trips over (strict: passing fails the test).
    """

    args: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()
    anywhere: tuple[str, ...] = ()
    allow_tracebacks: bool = False
    tested_elsewhere: str | None = None
    max_seconds: float = 15.0
    env: dict[str, str] = field(default_factory=dict)
    peers: tuple[Peer, ...] = ()
    epmd: bool = False
    xfail: str | None = None


EXAMPLES: dict[str, Example] = {
    # -- the local runtime -------------------------------------------------------
    "counter.py": Example(
        expect=("client c", "final count: 1000", "counter stopped (shutdown) at 1000", "system shut down")
    ),
    "ping_pong.py": Example(expect=("pong: got ping 1", "ping: got pong 5", "ping: done after 5 rounds")),
    "link_monitor.py": Example(
        expect=(
            "1. linked partner",
            "2. trapping process got Exit from",
            "Down reason='noproc'",
            "4. trapping process",
            "done",
        )
    ),
    "named_processes.py": Example(
        expect=(
            "second 'store' refused: name 'store' is already registered",
            "after the store died: whereis('store') -> None",
            "store['lang'] = 'python'",
            "registered names after the announcer ended: ['store']",
        )
    ),
    # lines of one process are ordered; lines of different processes may interleave
    "scheduled_messaging.py": Example(
        expect=(
            "reminders: cancel() -> True",
            "reminders: got 'first reminder'",
            "reminders: got 'reminder sent to a name'",
            "a 60 s timer is pending: True",
            "after shutdown the pending timer is active: False",
        ),
        anywhere=("heartbeat: tick 1", "heartbeat: done after 4 ticks", "reminders: nothing for 0.3s, giving up"),
    ),
    "selective_receive.py": Example(
        expect=(
            "worker: urgent  -> disk full",
            "worker: urgent  -> fire",
            "worker: reply   -> 42",
            "worker: the rest, in order -> ['job 1', 'job 2', 'job 3']",
        )
    ),
    # -- owned by other modules' authors: fill in ``expect`` when they land ---------
    "gen_server_counter.py": Example(expect=("done",), allow_tracebacks=True),
    "supervision_tree.py": Example(allow_tracebacks=True),
    "serialization_example.py": Example(
        expect=(
            "node B sees reply_to=<7.42.1>",
            "reply_to=<0.42.0> (local again: True)",
            "Job v1 upgraded",
            "refused at send time: msg['items'][3].tags[0]",
            "hostile input refused",
        )
    ),
    # -- distributed: several processes, a private port mapper ----------------------
    "distributed_system_example.py": Example(
        args=("node_b", "0", "--epmd", "{epmd}", "--wait", "20"),
        peers=(
            Peer(("node_a", "0", "--epmd", "{epmd}", "--wait", "20"), expect=("node_b says", "[node_a] done (ok)")),
        ),
        expect=(
            "[node_b] linked with ['node_a']",
            "node_a says: 'hello node_b, this is node_a'",
            "answer ('pong', 'GREETINGS FROM NODE_B')",
            "node_a computed 20 + 22 = 42",
            "[node_b] done (ok)",
        ),
        epmd=True,
        max_seconds=30.0,
    ),
    "distributed_cluster.py": Example(
        args=("node_c", "0", "--epmd", "{epmd}", "--expect", "3", "--wait", "20", "--interval", "0.2"),
        peers=tuple(
            Peer(
                (name, "0", "--epmd", "{epmd}", "--expect", "3", "--wait", "20", "--interval", "0.2"),
                expect=(f"[{name}] cluster complete: ['node_a', 'node_b', 'node_c']",),
            )
            for name in ("node_a", "node_b")
        ),
        expect=("[node_c] cluster: ['node_a', 'node_b', 'node_c']", "[node_c] cluster complete", "[node_c] leaving"),
        epmd=True,
        max_seconds=30.0,
    ),
    "remote_actors.py": Example(  # the port mapper from $JOERL_EPMD_ADDRESS
        expect=(
            "lists ['node_a', 'node_b', 'node_c']",
            "[node_a] got EchoReply(content='Hello from node_a!', from_node='node_b')",
            "[node_c] got ComputeReply(result=100, from_node='node_b')",
            "[node_b] got EchoReply(content='Greetings from node_b!', from_node='node_a')",
            "[node_a] got ('relayed', 30, 'node_b')",
            "ok: 3 nodes",
            "Example completed!",
        ),
        epmd=True,
    ),
    "distributed_chat.py": Example(
        args=(
            "--node",
            "carol",
            "--port",
            "{port2}",
            "--connect",
            "127.0.0.1:{port0}",
            "--epmd",
            "{epmd}",
            "--say",
            "hi from carol",
            "--members",
            "2",
            "--exit-after",
            "2",
        ),
        peers=(
            Peer(
                (
                    "--node",
                    "alice",
                    "--port",
                    "{port0}",
                    "--epmd",
                    "{epmd}",
                    "--say",
                    "hi from alice",
                    "--members",
                    "2",
                    "--exit-after",
                    "2",
                ),
                ready="chat node up",
                expect=("[alice] leaving",),
            ),
            Peer(
                (
                    "--node",
                    "bob",
                    "--port",
                    "{port1}",
                    "--connect",
                    "alice",
                    "--epmd",
                    "{epmd}",
                    "--say",
                    "hi from bob",
                    "--members",
                    "2",
                    "--exit-after",
                    "2",
                ),
                ready="chat node up",
                expect=("[bob] leaving",),
            ),
        ),
        expect=("[carol] joining the room through alice", "[carol] leaving"),
        anywhere=("[alice] hi from alice", "[bob] hi from bob", "[carol] (you) hi from carol"),
        epmd=True,
        max_seconds=30.0,
    ),
    "remote_ping_pong.py": Example(
        args=("client", "--epmd", "{epmd}", "--count", "5", "--wait", "20"),
        peers=(
            Peer(
                ("server", "--epmd", "{epmd}", "--clients", "1"),
                ready="waits for pings",
                expect=("[server] ping 5 from", "[server] ping_client said goodbye"),
            ),
        ),
        expect=(
            "[client] linked with pong_server",
            "[client] pong 1 from pong_server",
            "[client] pong 5 from pong_server",
            "[client] done: 5 of 5 pongs",
        ),
        epmd=True,
        max_seconds=30.0,
    ),
    "distributed_supervision.py": Example(
        args=("--epmd", "{epmd}"),
        expect=(
            "[boss] spawned summer",
            "[boss] kill -9 worker1",
            "[boss] restarting the work on worker2",
            "[boss] total",
            "[boss] worker exit codes: [-9, 0]",
        ),
        anywhere=("[boss] Down: summer", "ended (noconnection)", "[boss] NodeDown: worker1 (noconnection)", ": ok"),
        epmd=True,
        max_seconds=30.0,
    ),
    "wsgi_server.py": Example(
        tested_elsewhere="runs an HTTP server until stopped; covered by its own integration test"
    ),
    "epmd_server.py": Example(
        tested_elsewhere="runs an EPMD daemon until stopped; covered by the EPMD integration tests"
    ),
}


def test_every_example_is_in_the_table() -> None:
    files = sorted(p.name for p in EXAMPLES_DIR.glob("*.py"))
    missing = [name for name in files if name not in EXAMPLES]
    assert not missing, (
        f"examples not listed in tests/test_examples.py EXAMPLES: {missing}; "
        "add an entry (args, expected lines), or tested_elsewhere with the reason"
    )


class _Running:
    """A process run beside an example (a peer node, the port mapper); two
    threads collect its output so that a full pipe never stalls it."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._eof = 0
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._pump, args=(f, lines), daemon=True)
            for f, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for t in self._threads:
            t.start()

    def _pump(self, stream: Any, lines: list[str]) -> None:
        for line in stream:
            with self._cond:
                lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof += 1
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float) -> str | None:
        """The first stdout line containing ``text``, waiting up to ``timeout`` (None: never came)."""

        def found() -> str | None:
            return next((line for line in self.out if text in line), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None or self._eof == 2, timeout)
            return found()

    def finish(self, timeout: float) -> int | None:
        """The exit status, waiting up to ``timeout`` (None: still running)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self._threads:
            t.join(timeout)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for t in self._threads:
            t.join(5)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()

    def report(self) -> str:
        out, err = "\n".join(self.out), "\n".join(self.err)
        return f"--- {' '.join(self.argv[1:])}: stdout ---\n{out}\n--- stderr ---\n{err}"


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@contextlib.contextmanager
def _cluster(name: str, spec: Example, env: dict[str, str]) -> Iterator[tuple[dict[str, str], list[_Running]]]:
    """The port mapper and the peers of a distributed example; yields the
    placeholder values and the running peers, and kills them all after."""
    started: list[_Running] = []
    fill = {f"port{i}": str(p) for i, p in enumerate(_free_ports(4))}
    try:
        if spec.epmd:
            epmd = _Running([sys.executable, "-m", "joerl.epmd", "127.0.0.1:0"], env)
            started.append(epmd)
            line = epmd.wait_for("READY", 20)
            assert line, f"the port mapper did not start\n{epmd.report()}"
            fill["epmd"] = f"127.0.0.1:{line.split('port=')[1].split()[0]}"
            env.update(JOERL_EPMD_ADDRESS=fill["epmd"], JOERL_COOKIE="joerl-examples-test")
        peers: list[_Running] = []
        for peer in spec.peers:
            run = _Running([sys.executable, str(EXAMPLES_DIR / name), *(a.format_map(fill) for a in peer.args)], env)
            started.append(run)
            peers.append(run)
            if peer.ready:
                assert run.wait_for(peer.ready, spec.max_seconds), f"{name}: no line {peer.ready!r}\n{run.report()}"
        yield fill, peers
    finally:
        for run in reversed(started):
            run.kill()


def _check_lines(name: str, lines: list[str], expect: tuple[str, ...], anywhere: tuple[str, ...], report: str) -> None:
    pos = 0
    for wanted in expect:
        for i in range(pos, len(lines)):
            if wanted in lines[i]:
                pos = i + 1
                break
        else:
            pytest.fail(f"{name}: no line containing {wanted!r} (in order)\n{report}")
    for wanted in anywhere:
        assert any(wanted in line for line in lines), f"{name}: no line containing {wanted!r}\n{report}"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=EXAMPLES[n].xfail or ""))
        if EXAMPLES[n].xfail
        else n
        for n in sorted(EXAMPLES)
    ],
)
def test_example_runs(name: str) -> None:
    spec = EXAMPLES[name]
    if spec.tested_elsewhere:
        pytest.skip(f"{name}: tested elsewhere: {spec.tested_elsewhere}")
    path = EXAMPLES_DIR / name
    if not path.exists():
        pytest.skip(f"{name} is not written yet")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.update(spec.env)
    distributed = spec.epmd or bool(spec.peers)
    around: contextlib.AbstractContextManager[tuple[dict[str, str], list[_Running]]]
    around = _cluster(name, spec, env) if distributed else contextlib.nullcontext(({}, []))
    with around as (fill, peers):
        args = [a.format_map(fill) for a in spec.args] if distributed else list(spec.args)
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(path), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=spec.max_seconds * 2,
            stdin=subprocess.DEVNULL,
        )
        elapsed = time.monotonic() - t0
        codes = [run.finish(spec.max_seconds) for run in peers]
        report = f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}" + "".join(
            "\n" + run.report() for run in peers
        )
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{report}"
    assert proc.stdout.strip(), f"{name} printed nothing: an example says what it does\n{report}"
    if not spec.allow_tracebacks:
        assert "Traceback" not in proc.stderr, f"{name} logged a traceback\n{report}"
    _check_lines(name, proc.stdout.splitlines(), spec.expect, spec.anywhere, report)
    for peer, run, code in zip(spec.peers, peers, codes, strict=False):
        assert code == 0, f"{name} {' '.join(peer.args)} exited {code}\n{report}"
        if not spec.allow_tracebacks:
            assert not any("Traceback" in line for line in run.err), (
                f"{name} {' '.join(peer.args)} logged a traceback\n{report}"
            )
        _check_lines(f"{name} {' '.join(peer.args)}", run.out, peer.expect, (), report)
    assert elapsed < spec.max_seconds, f"{name} took {elapsed:.1f}s"
