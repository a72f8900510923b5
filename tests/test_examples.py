"""Every ``examples/*.py`` runs as a subprocess, exits 0 and prints its key line.

The table ``EXAMPLES`` lists every example with what to pass it and what to
expect; a test fails when an example file is missing from it, so a new
example cannot go untested by accident. Examples that run servers or need
peers are marked ``tested_elsewhere`` with the test that covers them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "examples"


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
    """

    args: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()
    anywhere: tuple[str, ...] = ()
    allow_tracebacks: bool = False
    tested_elsewhere: str | None = None
    max_seconds: float = 15.0
    env: dict[str, str] = field(default_factory=dict)


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
    "wsgi_server.py": Example(tested_elsewhere="runs an HTTP server until stopped; covered by its own integration test"),
    "epmd_server.py": Example(tested_elsewhere="runs an EPMD daemon until stopped; covered by the EPMD integration tests"),
}


def test_every_example_is_in_the_table() -> None:
    files = sorted(p.name for p in EXAMPLES_DIR.glob("*.py"))
    missing = [name for name in files if name not in EXAMPLES]
    assert not missing, (
        f"examples not listed in tests/test_examples.py EXAMPLES: {missing}; "
        "add an entry (args, expected lines), or tested_elsewhere with the reason"
    )


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs(name: str) -> None:
    spec = EXAMPLES[name]
    if spec.tested_elsewhere:
        pytest.skip(f"{name}: tested elsewhere: {spec.tested_elsewhere}")
    path = EXAMPLES_DIR / name
    if not path.exists():
        pytest.skip(f"{name} is not written yet")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.update(spec.env)
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(path), *spec.args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=spec.max_seconds * 2,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - t0
    report = f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{report}"
    assert proc.stdout.strip(), f"{name} printed nothing: an example says what it does\n{report}"
    if not spec.allow_tracebacks:
        assert "Traceback" not in proc.stderr, f"{name} logged a traceback\n{report}"
    lines = proc.stdout.splitlines()
    pos = 0
    for wanted in spec.expect:
        for i in range(pos, len(lines)):
            if wanted in lines[i]:
                pos = i + 1
                break
        else:
            pytest.fail(f"{name}: no line containing {wanted!r} (in order)\n{report}")
    for wanted in spec.anywhere:
        assert any(wanted in line for line in lines), f"{name}: no line containing {wanted!r}\n{report}"
    assert elapsed < spec.max_seconds, f"{name} took {elapsed:.1f}s"
