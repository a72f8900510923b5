"""``python -m joerl demo --observe PORT``: the demo cluster stays up and serves the observer until interrupted."""

from __future__ import annotations

import json
import signal
import sys
import urllib.request

import pytest

from joerl.testing import ChildProcess


@pytest.mark.timeout(180)
def test_the_demo_serves_the_observer_until_interrupted() -> None:
    argv = [sys.executable, "-m", "joerl", "demo", "--messages", "2000", "--round-trips", "200", "--observe", "0"]
    with ChildProcess(argv, timeout=120.0) as demo:
        line = demo.wait_line(lambda text: "web observer at" in text, timeout=120.0)
        url = line.split(" at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/nodes", timeout=10) as response:
            nodes = json.load(response)
        assert nodes["default"].startswith("demo") and {p["name"].split("@")[0] for p in nodes["peers"]} >= {"alpha"}
        with urllib.request.urlopen(url + "api/processes", timeout=10) as response:
            assert any(p["behaviour"] == "supervisor" for p in json.load(response))
        metrics = demo.wait_line(lambda text: "Prometheus metrics at" in text, timeout=5.0)
        with urllib.request.urlopen(metrics.split(" at ", 1)[1], timeout=10) as response:
            assert b"joerl_messages_received_total" in response.read()
        demo.send_signal(signal.SIGINT)
        demo.wait_line("demo finished", timeout=60.0)
        assert demo.wait(30.0) == 0
