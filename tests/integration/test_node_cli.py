"""``python -m joerl node NAME``: a standalone node, as a test harness or an operator starts one."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator

import pytest

from joerl.node.names import node_name
from joerl.node.node import DistributedSystem
from joerl.testing import ChildProcess, running_epmd

COOKIE = "node-cli-cookie"


@pytest.fixture
def epmd() -> Iterator[str]:
    with running_epmd() as address:
        yield address


@pytest.mark.timeout(60)
def test_a_standalone_node_serves_until_sigterm(epmd: str) -> None:
    argv = [sys.executable, "-m", "joerl", "node", "solo", "--listen", "127.0.0.1:0", "--epmd", epmd, "--tick", "5"]
    with ChildProcess(argv, cookie=COOKIE, stdin=False, timeout=30) as solo:
        ready = solo.wait_ready()
        assert ready["name"] == node_name("solo") and int(ready["port"]) > 0 and int(ready["creation"]) > 0
        with DistributedSystem("peer", "127.0.0.1:0", epmd, cookie=COOKIE, start_epmd=False) as peer:
            assert peer.connect_to_node("solo", timeout=10)
            assert peer.nodes() == [node_name("solo")]
            assert peer.global_whereis("nobody") is None
            solo.send_signal(signal.SIGTERM)
            assert solo.wait() == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a@b@c"], "more than one '@'"),
        (["ok", "--listen", "nowhere:x"], "bad port"),
    ],
)
def test_a_node_that_cannot_start_says_why(epmd: str, args: list[str], message: str) -> None:
    with ChildProcess([sys.executable, "-m", "joerl", "node", *args, "--epmd", epmd], stdin=False, timeout=30) as bad:
        assert bad.wait() == 1
        assert message in bad.stderr()
