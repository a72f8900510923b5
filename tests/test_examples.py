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
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from gevent import subprocess

from joerl.node.names import node_name as full
from joerl.testing import ChildProcess, ProcessGroup

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
    "timers.py": Example(
        expect=(
            "1. heartbeat: ['tick', 'tick', 'tick']; cancel() -> True; active: False",
            "2. the pinger ended; its interval timer is active: False",
            "3. apply_after: 'applied later'",
            "4. worker of 3 steps ended with 'normal'; watchdog active: False",
            "4. worker of 50 steps ended with 'timeout'",
            "5. a trapping process with kill_after ended with 'killed'",
            "done",
        )
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
            f"[node_b] linked with [{full('node_a')!r}]",
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
                expect=(f"[{name}] cluster complete: {[full('node_a'), full('node_b'), full('node_c')]}",),
            )
            for name in ("node_a", "node_b")
        ),
        expect=(
            f"[node_c] cluster: {[full('node_a'), full('node_b'), full('node_c')]}",
            "[node_c] cluster complete",
            "[node_c] leaving",
        ),
        epmd=True,
        max_seconds=30.0,
    ),
    "remote_actors.py": Example(  # the port mapper from $JOERL_EPMD_ADDRESS
        expect=(
            f"lists {[full('node_a'), full('node_b'), full('node_c')]}",
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
                expect=("[server] ping 5 from", f"[server] {full('ping_client')} said goodbye"),
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
        anywhere=(
            "[boss] Down: summer",
            "ended (noconnection)",
            f"[boss] NodeDown: {full('worker1')} (noconnection)",
            ": ok",
        ),
        epmd=True,
        max_seconds=30.0,
    ),
    "wsgi_server.py": Example(
        tested_elsewhere="runs an HTTP server until stopped; covered by its own integration test"
    ),
    "epmd_server.py": Example(
        tested_elsewhere="runs an EPMD daemon until stopped; covered by the EPMD integration tests"
    ),
    "erlang_interop.py": Example(
        tested_elsewhere="serves Erlang nodes until SIGTERM; tests/interop/test_erlang_example.py runs it against erl"
    ),
    "discovery_static.py": Example(
        expect=(
            "[a@example] linked with ['b@example', 'c@example']",
            "[a@example] NodeDown(node='c@example', reason='noconnection')",
            "[a@example] NodeUp(node='c@example')",
            "done",
        ),
        max_seconds=30.0,
    ),
    "discovery_epmd.py": Example(
        expect=(
            "[a@example] alone: []",
            "[a@example] linked with ['b@example', 'c@example']",
            "[a@example] NodeDown(node='b@example', reason='noconnection')",
            "[a@example] linked with ['c@example']",
            "done",
        ),
        max_seconds=30.0,
    ),
    "discovery_dns.py": Example(
        tested_elsewhere="needs a DNS server: tests/discovery/test_discovery_examples.py runs it against dnsmasq"
    ),
    "discovery_etcd.py": Example(
        tested_elsewhere="needs an etcd: tests/discovery/test_discovery_examples.py runs it against a real etcd"
    ),
    "discovery_multicast.py": Example(
        tested_elsewhere="sends multicast: tests/multihost/test_multicast_discovery.py runs it on three simulated hosts"
    ),
    "multihost_cluster.py": Example(
        tested_elsewhere="needs a port mapper on port 4369 per host: run on three simulated hosts "
        "(network namespaces) by tests/multihost/test_example.py"
    ),
    "pg_chat.py": Example(
        expect=(
            "room members seen from alice: 3",
            "[carol] left the room",
            "room after carol left: 2 members",
            "chat done",
        ),
        anywhere=("[alice] carol says 'hey from carol'", "[bob] alice says 'hello from alice'"),
    ),
    "threads_and_asyncio.py": Example(expect=("log: hello from asyncio 0", "final count: 4100", "done")),
    "code_lock.py": Example(
        expect=(
            "1. wrong code: locked",
            "2. right code: open",
            "3. relocked by its state timeout",
            "4. right code again: open",
            "5. the postponed lock_now answered: locked",
            "stateDiagram-v2",
            "done",
        )
    ),
    "tasks_and_pools.py": Example(
        expect=(
            "task results: [55, 610, 6765]",
            "task crashed: ValueError",
            "supervised by name: 987",
            "pool.map: [0, 10, 20, 30, 40, 50]",
            "joerl.pool.map:",
            "done",
        )
    ),
    "rpc_calls.py": Example(
        expect=(
            "calc says 20 + 22 = 42",
            "remote error: ZeroDivisionError: division by zero",
            "refused: rpc 'os:system' on 'calc': no such handler",
            "slow: no answer within 0.2 s",
            "unreachable: node 'nowhere'",
            "multicall errors: ['nowhere']",
            "rpc done",
        )
    ),
}


def test_every_example_is_in_the_table() -> None:
    files = sorted(p.name for p in EXAMPLES_DIR.glob("*.py"))
    missing = [name for name in files if name not in EXAMPLES]
    assert not missing, (
        f"examples not listed in tests/test_examples.py EXAMPLES: {missing}; "
        "add an entry (args, expected lines), or tested_elsewhere with the reason"
    )


def _report(child: ChildProcess) -> str:
    out = "\n".join(child.lines)
    return f"--- {' '.join(child.argv[1:])}: stdout ---\n{out}\n--- stderr ---\n{child.stderr(limit=1 << 20)}"


def _containing(text: str) -> Callable[[str], bool]:
    return lambda line: text in line


def _finish(child: ChildProcess, timeout: float) -> int | None:
    """Its exit status, waiting up to ``timeout`` (None: still running)."""
    try:
        return child.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


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
def _cluster(
    name: str, spec: Example, env: dict[str, str], group: ProcessGroup
) -> Iterator[tuple[dict[str, str], list[ChildProcess]]]:
    """The port mapper and the peers of a distributed example, in ``group``;
    yields the placeholder values and the running peers."""
    fill = {f"port{i}": str(p) for i, p in enumerate(_free_ports(4))}
    if spec.epmd:
        epmd = group.start([sys.executable, "-m", "joerl.epmd", "127.0.0.1:0"], env=dict(env), timeout=20)
        fill["epmd"] = f"127.0.0.1:{epmd.wait_ready()['port']}"
        env.update(JOERL_EPMD_ADDRESS=fill["epmd"], JOERL_COOKIE="joerl-examples-test")
    peers: list[ChildProcess] = []
    for peer in spec.peers:
        argv = [sys.executable, str(EXAMPLES_DIR / name), *(a.format_map(fill) for a in peer.args)]
        run = group.start(argv, env=dict(env))
        peers.append(run)
        if peer.ready:
            run.wait_line(_containing(peer.ready), spec.max_seconds)
    yield fill, peers


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
    with ProcessGroup(cwd=ROOT, stdin=False, timeout=spec.max_seconds) as group:
        around: contextlib.AbstractContextManager[tuple[dict[str, str], list[ChildProcess]]]
        around = _cluster(name, spec, env, group) if distributed else contextlib.nullcontext(({}, []))
        with around as (fill, peers):
            args = [a.format_map(fill) for a in spec.args] if distributed else list(spec.args)
            t0 = time.monotonic()
            main = group.start([sys.executable, str(path), *args], env=dict(env))
            code = _finish(main, spec.max_seconds * 2)
            elapsed = time.monotonic() - t0
            codes = [_finish(run, spec.max_seconds) for run in peers]
            report = "".join("\n" + _report(run) for run in [main, *peers])
            assert code is not None, f"{name} still ran after {spec.max_seconds * 2}s\n{report}"
    stdout, stderr = "\n".join(main.lines), main.stderr(limit=1 << 20)
    assert code == 0, f"{name} exited {code}\n{report}"
    assert stdout.strip(), f"{name} printed nothing: an example says what it does\n{report}"
    if not spec.allow_tracebacks:
        assert "Traceback" not in stderr, f"{name} logged a traceback\n{report}"
    _check_lines(name, main.lines, spec.expect, spec.anywhere, report)
    for peer, run, peer_code in zip(spec.peers, peers, codes, strict=False):
        assert peer_code == 0, f"{name} {' '.join(peer.args)} exited {peer_code}\n{report}"
        if not spec.allow_tracebacks:
            assert "Traceback" not in run.stderr(limit=1 << 20), (
                f"{name} {' '.join(peer.args)} logged a traceback\n{report}"
            )
        _check_lines(f"{name} {' '.join(peer.args)}", run.lines, peer.expect, (), report)
    assert elapsed < spec.max_seconds, f"{name} took {elapsed:.1f}s"
