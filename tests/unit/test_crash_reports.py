"""Crash reports are visible by default, once per failure; exit reasons through ActorRef.wait()."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from joerl import (
    Actor,
    ActorContext,
    ActorSystem,
    ChildSpec,
    GenServer,
    Reply,
    Supervisor,
    gen_server,
    start_supervisor,
)
from joerl.testing import wait_until


class Boom(Exception):
    pass


def joerl_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("joerl") and r.levelno >= logging.ERROR]


def run_script(tmp_path: Path, body: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=timeout, check=False, cwd=tmp_path
    )


@pytest.mark.timeout(90)
def test_a_plain_script_prints_the_crash_report_on_stderr(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
        from joerl import ActorSystem

        def worker(ctx):
            raise ValueError("disk on fire")

        with ActorSystem() as system:
            ref = system.spawn_fn(worker, name="worker")
            print("reason:", repr(ref.wait(10)))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "reason: ValueError('disk on fire')" in result.stdout
    err = result.stderr
    assert "crash report: process <0.1.0> (registered as 'worker') running __main__.worker" in err
    assert "ValueError: disk on fire" in err
    assert "Traceback (most recent call last)" in err and 'raise ValueError("disk on fire")' in err
    assert err.count("crash report") == 1


@pytest.mark.timeout(90)
def test_logging_configuration_silences_or_redirects_the_report(tmp_path: Path) -> None:
    log_file = tmp_path / "crashes.log"
    result = run_script(
        tmp_path,
        f"""
        import logging
        from joerl import ActorSystem

        logging.getLogger("joerl").propagate = False
        logging.getLogger("joerl").addHandler(logging.FileHandler({str(log_file)!r}))

        def worker(ctx):
            raise ValueError("to the file")

        with ActorSystem() as system:
            system.spawn_fn(worker).wait(10)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "crash report" not in result.stderr
    assert "crash report" in log_file.read_text() and "ValueError: to the file" in log_file.read_text()
    silenced = run_script(
        tmp_path,
        """
        import logging
        from joerl import ActorSystem

        logging.getLogger("joerl").setLevel(logging.CRITICAL)

        def worker(ctx):
            raise ValueError("quiet")

        with ActorSystem() as system:
            system.spawn_fn(worker).wait(10)
        """,
    )
    assert silenced.returncode == 0 and "crash report" not in silenced.stderr, silenced.stderr


def test_the_report_names_the_actor_and_carries_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="joerl")

    class Worker(Actor):
        def handle_message(self, msg: Any, ctx: ActorContext) -> None:
            raise Boom(msg)

    with ActorSystem() as system:
        ref = system.spawn(Worker(), name="w1")
        ref.send("bad input")
        reason = ref.wait(5)
    assert isinstance(reason, Boom)
    (record,) = joerl_errors(caplog)
    text = record.getMessage()
    assert str(ref.pid) in text and "'w1'" in text and "Worker" in text and "Boom: bad input" in text
    assert record.exc_info is not None and record.exc_info[1] is reason
    assert record.joerl_pid == str(ref.pid) and record.joerl_name == "w1"  # type: ignore[attr-defined]


def test_an_abnormal_stop_is_reported_a_normal_or_shutdown_one_is_not(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="joerl")
    with ActorSystem() as system:
        quiet = [system.spawn_fn(lambda ctx, r=r: ctx.stop(r)) for r in ("normal", "shutdown", ("shutdown", "x"))]
        assert [q.wait(5) for q in quiet] == ["normal", "shutdown", ("shutdown", "x")]
        assert joerl_errors(caplog) == []
        bad = system.spawn_fn(lambda ctx: ctx.stop("bad_state"))
        assert bad.wait(5) == "bad_state"
    (record,) = joerl_errors(caplog)
    assert "exited: bad_state" in record.getMessage() and record.exc_info is None


def test_a_link_cascade_reports_only_the_process_that_failed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="joerl")
    with ActorSystem() as system:

        def child(ctx: ActorContext) -> None:
            ctx.receive()
            raise Boom("child")

        def parent(ctx: ActorContext) -> None:
            c = ctx.spawn_link(child)
            c.send("go")
            ctx.receive()

        p = system.spawn_fn(parent)
        assert isinstance(p.wait(5), Boom)  # killed by the link: the child's reason
    assert len(joerl_errors(caplog)) == 1


def test_a_gen_server_start_failure_goes_to_the_starter_not_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="joerl")

    class Bad(GenServer):
        def init(self, args: Any) -> Any:
            raise Boom("init")

    with ActorSystem() as system, pytest.raises(Exception, match="init"):
        gen_server.start(system, Bad())
    assert joerl_errors(caplog) == []


def test_a_supervised_crash_is_reported_once_and_the_give_up_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="joerl")

    class Crashy(GenServer):
        def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
            raise Boom("call")

    servers: list[Any] = []

    def start(ctx: ActorContext) -> Any:
        ref = gen_server.start_link(ctx, Crashy())
        servers.append(ref)
        return ref

    with ActorSystem() as system:
        sup = start_supervisor(system, Supervisor("one_for_one", [ChildSpec("c", start)], intensity=1, period=60))
        for n in (1, 2):
            wait_until(lambda n=n: len(servers) == n, timeout=5)
            with pytest.raises(Exception, match="call"):
                servers[-1].call("x")
        assert isinstance(sup.wait(5), str)
    messages = [r.getMessage() for r in joerl_errors(caplog)]
    assert sum("crash report" in m and "Crashy" in m for m in messages) == 2, messages
    assert sum("giving up" in m for m in messages) == 1, messages
    assert len(messages) == 3, messages


def test_wait_gives_the_reason_of_a_process_that_ended_before_it_was_asked() -> None:
    with ActorSystem() as system:
        ref = system.spawn_fn(lambda ctx: None)
        assert ref.join(5)
        assert ref.wait(0) == "normal" and ref.exit_reason == "normal"
        other = system.spawn_fn(lambda ctx: ctx.receive())
        assert other.exit_reason is None
        with pytest.raises(TimeoutError):
            other.wait(0.05)
        system.exit(other.pid, "kill")
        assert other.wait(5) == "killed"


def test_wait_through_a_handle_made_from_a_pid_uses_a_monitor() -> None:
    from joerl import ActorRef

    with ActorSystem() as system:
        live = system.spawn_fn(lambda ctx: ctx.stop(("done", 1)) if ctx.receive() else None)
        fresh = ActorRef(system, live.pid)
        live.send("go")
        assert fresh.wait(5) == ("done", 1)
        dead = ActorRef(system, live.pid)
        assert dead.wait(5) == "noproc"  # as Erlang's monitor of a dead pid


# -- the node layer: refused handshakes and unreachable nodes are shown too ------------------


def test_a_wrong_cookie_is_an_error_on_both_sides(caplog: pytest.LogCaptureFixture) -> None:
    from joerl import DistributedSystem, NodeUnreachable
    from joerl.testing import node_cluster

    caplog.set_level(logging.WARNING, logger="joerl")
    with node_cluster("cookie_b", cookie="right-cookie", global_names=False) as (b,):
        intruder = DistributedSystem("cookie_x", epmd_address=b.epmd_address, cookie="wrong-cookie", global_names=False)
        try:
            with pytest.raises(NodeUnreachable):
                intruder.connect_to_node(b.node_name, timeout=5)
            wait_until(lambda: b.stats.handshakes_failed >= 1, timeout=5)
        finally:
            intruder.shutdown()
    refused = [r for r in joerl_errors(caplog) if "refused the link" in r.getMessage()]
    assert {r.args[0] for r in refused if isinstance(r.args, tuple)} >= {intruder.node_name, b.node_name}


def test_an_unreachable_node_is_logged_once_per_episode(caplog: pytest.LogCaptureFixture) -> None:
    from joerl.testing import node_cluster

    caplog.set_level(logging.DEBUG, logger="joerl.node")
    with node_cluster("lonely", global_names=False) as (a,):

        def failures() -> int:
            a.system.send(("inbox", "ghost"), "hello?")  # dials when the back-off allows
            return a.stats.connect_failures

        wait_until(lambda: failures() >= 3, timeout=30)
        assert a.stats.dropped_unreachable >= 3
    lines = [r for r in caplog.records if "cannot reach node" in r.getMessage()]
    assert len(lines) >= 3
    assert [r.levelno for r in lines].count(logging.WARNING) == 1 and lines[0].levelno == logging.WARNING
