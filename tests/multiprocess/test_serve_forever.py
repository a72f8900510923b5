"""The run-until-signal idiom: ``serve_forever`` and ``joerl.run``.

A child program (a local system, or a node registered at a port mapper this
test runs) serves until it receives SIGTERM or SIGINT, then must shut down
cleanly (its actors' ``stopped`` hooks run, a node's name leaves the port
mapper) and exit with status 0. In-process tests cover the other ways out:
a process shutting the system down, the main-thread rule, and Python's
Ctrl+C handler coming back afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import threading
import urllib.request
from pathlib import Path

import pytest

import joerl
from joerl import ActorSystem, DistributedSystem
from joerl.epmd import EpmdClient
from joerl.system import StopSignals
from joerl.testing import ChildProcess, running_epmd, wait_until

COOKIE = "joerl-serve-forever-test"

LOCAL = textwrap.dedent(
    """
    import sys
    import joerl

    class Worker(joerl.Actor):
        def stopped(self, reason, ctx):
            print("STOPPED", reason, flush=True)

    def main(system):
        system.spawn(Worker())
        print("READY", flush=True)
        return lambda: print("ON_STOP closed=%s" % system.closed, flush=True)

    status = joerl.run(main)
    print("RETURNED", status, flush=True)
    sys.exit(status)
    """
)

NODE = textwrap.dedent(
    """
    import sys
    import joerl

    class Worker(joerl.Actor):
        def stopped(self, reason, ctx):
            print("STOPPED", reason, flush=True)

    def main(node):
        node.register("worker", node.spawn(Worker()))
        print("READY port=%d name=%s" % (node.listen_port, node.node_name), flush=True)

    node = joerl.DistributedSystem("served", "127.0.0.1:0", sys.argv[1], start_epmd=False)
    sys.exit(joerl.run(main, node))
    """
)


def _child(tmp_path: Path, source: str, *args: str) -> ChildProcess:
    script = tmp_path / "program.py"
    script.write_text(source)
    return ChildProcess([sys.executable, str(script), *args], cookie=COOKIE, timeout=30.0)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_local_program_stops_cleanly_on_a_signal_and_exits_0(tmp_path: Path, signum: int) -> None:
    with _child(tmp_path, LOCAL) as child:
        child.wait_ready()
        child.send_signal(signum)
        assert child.wait() == 0, child.stderr()
        assert child.lines[-3:] == ["ON_STOP closed=False", "STOPPED shutdown", "RETURNED 0"]
        assert "Traceback" not in child.stderr()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_node_stops_cleanly_on_a_signal_unregisters_and_exits_0(tmp_path: Path, signum: int) -> None:
    with running_epmd() as epmd, EpmdClient(epmd) as mapper, _child(tmp_path, NODE, epmd) as child:
        name = child.wait_ready()["name"]
        assert mapper.lookup(name) is not None
        child.send_signal(signum)
        assert child.wait() == 0, child.stderr()
        assert "STOPPED shutdown" in child.lines
        wait_until(lambda: mapper.lookup(name) is None, timeout=10.0)
        assert "Traceback" not in child.stderr()


@pytest.mark.timeout(30)
def test_serve_forever_returns_none_when_a_process_shuts_the_system_down() -> None:
    system = ActorSystem()
    system.spawn_fn(lambda ctx: ctx.system.shutdown())
    assert system.serve_forever() is None
    assert system.closed
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl+C raises again


@pytest.mark.timeout(30)
def test_a_node_serving_is_shut_down_when_its_system_is() -> None:
    with running_epmd() as epmd:
        node = DistributedSystem("served-inproc", "127.0.0.1:0", epmd, start_epmd=False, cookie=COOKIE)
        node.spawn_fn(lambda ctx: ctx.system.shutdown())
        assert node.serve_forever() is None
        assert node.closed


@pytest.mark.timeout(30)
def test_run_shuts_the_system_down_when_main_raises() -> None:
    system = ActorSystem()

    def main(served: ActorSystem) -> None:
        raise ValueError("bad configuration")

    with pytest.raises(ValueError, match="bad configuration"):
        joerl.run(main, system)
    assert system.closed


@pytest.mark.timeout(30)
def test_run_refuses_a_main_that_returns_something_else_than_a_function() -> None:
    system = ActorSystem()
    with pytest.raises(TypeError, match="return None, or a function"):
        joerl.run(lambda served: 42, system)
    assert system.closed


@pytest.mark.timeout(30)
def test_serving_outside_the_main_thread_is_refused_with_a_clear_error() -> None:
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with ActorSystem() as system:
                system.serve_forever()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve, name="worker-thread")
    thread.start()
    thread.join(20.0)
    assert len(errors) == 1
    assert "main thread" in str(errors[0]) and "worker-thread" in str(errors[0])


@pytest.mark.timeout(60)
def test_the_wsgi_example_stops_its_http_server_then_its_actors_on_sigterm() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "wsgi_server.py"
    with ChildProcess([sys.executable, str(example), "--port", "0"], timeout=30.0) as child:
        port = int(child.wait_ready()["port"])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hit/a", timeout=10) as resp:
            assert json.loads(resp.read()) == {"key": "a", "hits": 1, "total": 1}
        child.send_signal(signal.SIGTERM)
        assert child.wait() == 0, child.stderr()
        assert child.lines[-1] == "served 1 requests"
        assert "Traceback" not in child.stderr()


@pytest.mark.timeout(30)
def test_a_signal_that_arrives_before_the_wait_is_kept_for_it() -> None:
    with StopSignals([signal.SIGUSR1]) as installed:
        os.kill(os.getpid(), signal.SIGUSR1)  # before anyone waits (joerl.run's main is still running)
        assert installed.wait() == signal.SIGUSR1
        assert installed.arrived == signal.SIGUSR1
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # Python's disposition is back
    with pytest.raises(ValueError, match="at least one signal"):
        StopSignals([])
