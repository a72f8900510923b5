"""``joerl nodes``, ``ps``, ``top`` and ``observer``, run as subprocesses against a real node process.

The node (a child process, :data:`NODE_PROGRAM`) runs an idle process with
queued messages, a busy pair that ping-pongs without end, a GenServer under
a supervisor; it prints ``READY`` and answers ``nodes`` on its standard input
with the nodes it sees, so that the tests can check the commands joined
hidden. Every command runs as ``python -m joerl ...`` with a timeout.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gevent import subprocess  # the port mapper runs in this process: the hub must keep running

from joerl.testing import ChildProcess, child_env, fields, running_epmd

COOKIE = "joerl-cli-test-cookie"

NODE_PROGRAM = r"""
import sys
from joerl.node.node import DistributedSystem
from joerl.testing import stdin_lines
from joerl.gen_server import GenServer, Reply
from joerl.supervisor import ChildSpec, Supervisor

class Store(GenServer):
    def init(self, args):
        return {"kept": 7}
    def handle_call(self, request, from_, state):
        return Reply(state["kept"])

def idle(ctx):
    ctx.receive(lambda m: m == "never")

def pong(ctx):
    while True:
        msg = ctx.receive()
        ctx.send(msg, ctx.pid)

def ping(ctx, other):
    while True:
        ctx.send(other, ctx.pid)
        ctx.receive()

node = DistributedSystem(sys.argv[1], "127.0.0.1:0", sys.argv[2], start_epmd=False)
ref = node.spawn_fn(idle, name="idler")
for i in range(5):
    ref.send(("queued", i))
ponger = node.spawn_fn(pong, name="ponger")
node.spawn_fn(ping, ponger.pid, name="pinger")
node.spawn(Supervisor("one_for_one", [ChildSpec.worker("store", Store, name="store")]), name="top_sup")
print("READY node=%s" % node.node_name, flush=True)
for line in stdin_lines():
    if line.strip() == "nodes":
        print("NODES visible=%s hidden=%s" % (",".join(node.nodes()) or "-", ",".join(node.nodes("hidden")) or "-"), flush=True)
node.shutdown(2.0)
"""


def joerl(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "joerl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else child_env(),
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, str, ChildProcess]]:
    """A port mapper (in this process) and a node process: (epmd address, node name, the child)."""
    with running_epmd() as epmd:
        with ChildProcess([sys.executable, "-c", NODE_PROGRAM, "target", epmd], cookie=COOKIE) as child:
            name = fields(child.wait_line("READY", timeout=30.0))["node"]
            yield epmd, name, child


def _args(cluster: Any) -> list[str]:
    epmd, _name, _child = cluster
    return ["--epmd", epmd, "--cookie", COOKIE]


def test_nodes_lists_what_the_port_mapper_knows(cluster: Any) -> None:
    _, name, _ = cluster
    r = joerl("nodes", *_args(cluster), "--json")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    target = [rec for rec in records if rec["name"] == name]
    assert target and target[0]["up"] is True and target[0]["hidden"] is False
    text = joerl("nodes", *_args(cluster))
    assert text.returncode == 0 and name in text.stdout and " up" in text.stdout


def test_ps_lists_processes_sorted_by_mailbox(cluster: Any) -> None:
    _, name, _ = cluster
    r = joerl("ps", name, *_args(cluster), "--json")
    assert r.returncode == 0, r.stderr
    procs = [json.loads(line) for line in r.stdout.splitlines()]
    names = [p["name"] for p in procs]
    assert {"idler", "ponger", "pinger", "store", "top_sup", "joerl_introspection"} <= set(names)
    assert procs[0]["name"] == "idler" and procs[0]["mailbox_len"] == 5  # the longest mailbox first
    store = procs[names.index("store")]
    assert store["behaviour"] == "gen_server" and store["parent"] == procs[names.index("top_sup")]["pid"]
    table = joerl("ps", name, *_args(cluster), "--limit", "3")
    lines = table.stdout.splitlines()
    assert table.returncode == 0 and lines[0].split()[:4] == ["PID", "NAME", "ACTOR", "STATUS"]
    assert len(lines) == 4 and "idler" in lines[1]


def test_ps_sorts_by_message_rate(cluster: Any) -> None:
    _, name, _ = cluster
    r = joerl("ps", name, *_args(cluster), "--sort", "rate", "--interval", "0.5", "--json", "--limit", "2")
    assert r.returncode == 0, r.stderr
    top2 = [json.loads(line) for line in r.stdout.splitlines()]
    assert {p["name"] for p in top2} == {"pinger", "ponger"} and all(p["rate"] > 0 for p in top2)


def test_top_refreshes(cluster: Any) -> None:
    _, name, _ = cluster
    r = joerl("top", name, *_args(cluster), "--iterations", "2", "--interval", "0.3", "--limit", "4")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(f"node {name}  processes") == 2
    assert r.stdout.count("PID  ") == 2 and "pinger" in r.stdout
    once = joerl("top", name, *_args(cluster), "--once")
    assert once.returncode == 0 and once.stdout.count("PID  ") == 1


def test_the_commands_join_hidden(cluster: Any) -> None:
    _, name, child = cluster
    r = joerl("ps", name, *_args(cluster))
    assert r.returncode == 0, r.stderr
    child.write_line("nodes")
    line = child.wait_line("NODES", timeout=10.0)
    assert fields(line)["visible"] == "-"  # nodes() of the target never listed the command's node


def test_the_cookie_comes_from_the_environment_or_the_cookie_file(cluster: Any, tmp_path: Path) -> None:
    epmd, name, _ = cluster
    by_env = joerl("ps", name, "--epmd", epmd, env=child_env(COOKIE))
    assert by_env.returncode == 0 and "idler" in by_env.stdout
    home = tmp_path / "home"
    home.mkdir()
    cookie_file = home / ".joerl.cookie"
    cookie_file.write_text(COOKIE + "\n")
    cookie_file.chmod(0o600)
    env = child_env()
    env.pop("JOERL_COOKIE", None)
    env["HOME"] = str(home)
    by_file = joerl("ps", name, "--epmd", epmd, env=env)
    assert by_file.returncode == 0 and "idler" in by_file.stdout, by_file.stderr


def test_a_wrong_cookie_fails_with_a_message(cluster: Any) -> None:
    epmd, name, _ = cluster
    r = joerl("ps", name, "--epmd", epmd, "--cookie", "wrong", "--timeout", "5")
    assert r.returncode == 1, r.stderr
    assert f"joerl ps: cannot ask node {name!r}" in r.stderr, r.stderr


def test_an_unknown_node_fails_with_a_message(cluster: Any) -> None:
    r = joerl("ps", "nosuchnode", *_args(cluster), "--timeout", "2")
    assert r.returncode == 1 and "cannot ask node" in r.stderr


@pytest.mark.timeout(90)
def test_observer_serves_the_node_until_interrupted(cluster: Any) -> None:
    epmd, name, _ = cluster
    argv = [sys.executable, "-m", "joerl", "observer", name, "--epmd", epmd, "--cookie", COOKIE, "--token", "s3cret"]
    with ChildProcess(argv) as observer:
        line = observer.wait_line("observer of", timeout=30.0)
        url = line.split(" at ", 1)[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/?token=s3cret")
        base = url.split("?")[0]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "api/processes", timeout=10)
        assert refused.value.code == 401
        request = urllib.request.Request(base + "api/processes", headers={"Authorization": "Bearer s3cret"})
        with urllib.request.urlopen(request, timeout=10) as response:
            procs = json.load(response)
        assert "idler" in [p["name"] for p in procs]
        observer.send_signal(signal.SIGINT)
        assert observer.wait(15.0) == 0


def test_the_console_script_is_the_same_program() -> None:
    script = Path(sys.executable).with_name("joerl")
    if not script.exists():
        pytest.skip(f"no joerl console script next to {sys.executable} (the package is not installed)")
    r = subprocess.run([str(script), "ps", "--help"], capture_output=True, text=True, timeout=60, env=child_env())
    assert r.returncode == 0 and "--sort" in r.stdout and os.path.basename(str(script)) == "joerl"


def test_no_port_mapper_is_a_clear_error() -> None:
    from joerl.testing import free_port

    r = joerl("ps", "target", "--epmd", f"127.0.0.1:{free_port()}", "--cookie", COOKIE, "--timeout", "2")
    assert r.returncode == 1 and "joerl ps: cannot join the cluster" in r.stderr and "Traceback" not in r.stderr
