"""The DNS and etcd discovery examples, run as programs against the real servers of this set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from joerl.testing import child_env

pytestmark = [pytest.mark.discovery, pytest.mark.timeout(90)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*argv: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env("discovery-example"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_dns_example_lists_the_records_as_node_names(dnsmasq: Any) -> None:
    dnsmasq.set_hosts(["127.0.0.2 app.cluster.test", "127.0.0.3 app.cluster.test"])
    out = run("discovery_dns.py", "app.cluster.test", "app", "--nameserver", "127.0.0.1", "--port", str(dnsmasq.port))
    assert "app.cluster.test (A+AAAA) lists ['app@127.0.0.2', 'app@127.0.0.3']" in out


def test_the_etcd_example(etcd: Any) -> None:
    out = run("discovery_etcd.py", "--endpoint", etcd.endpoint).splitlines()
    assert out[0] == "[a@example] NodeUp(node='b@example') (its key appeared in etcd)"
    assert out[1] == "[a@example] NodeDown(node='b@example', reason='noconnection') (b revoked its lease)"
    assert out[2] == "[a@example] etcd lists ['a@example']"
    assert out[-1] == "done"
