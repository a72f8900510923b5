"""The port mapper under a file-descriptor limit lower than its connection limit.

It must log one line per interval (not a traceback per failed accept), keep
serving the connections it has, and serve name listings again as soon as
descriptors are free.
"""

from __future__ import annotations

import socket
import sys

import pytest

from joerl.epmd import EpmdClient
from joerl.testing import ChildProcess, fields, wait_until

LIMIT = 48  # the daemon's RLIMIT_NOFILE: far below its 4096 connections

_SCRIPT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit}))
from joerl.epmd.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.timeout(60)
def test_a_daemon_out_of_file_descriptors_logs_a_line_per_interval_and_keeps_serving() -> None:
    daemon = ChildProcess(
        [sys.executable, "-c", _SCRIPT.format(limit=LIMIT), "127.0.0.1:0", "--log-level", "info"], stdin=False
    )
    held: list[socket.socket] = []
    try:
        port = int(fields(daemon.wait_line("READY"))["port"])
        client = EpmdClient(f"127.0.0.1:{port}", timeout=5.0)
        assert client.names() == []
        # Twice as many idle connections as the daemon has descriptors: the
        # kernel queues the rest in the backlog, the daemon's accepts fail.
        for _ in range(LIMIT * 2):
            s = socket.create_connection(("127.0.0.1", port), timeout=5.0)
            held.append(s)

        def refused_logged() -> bool:
            return "cannot accept connections" in daemon.stderr()

        wait_until(refused_logged, timeout=20.0, what="the shortage reported")
        # Free the descriptors: the daemon serves listings again.
        for s in held:
            s.close()
        held.clear()
        wait_until(lambda: _names_or_none(client) == [], timeout=20.0, what="names() answered again")
        err = daemon.stderr()
        assert "Traceback" not in err, err
        # One report per interval (10 s); the test lasts well under two intervals.
        assert err.count("cannot accept connections") <= 2, err
    finally:
        for s in held:
            s.close()
        daemon.terminate()


def _names_or_none(client: EpmdClient) -> list[tuple[str, int]] | None:
    try:
        return client.names()
    except Exception:  # noqa: BLE001 - still out of descriptors: try again
        return None
