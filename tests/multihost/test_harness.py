"""The simulated hosts themselves: names, addresses, faults, and that nothing is left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import netns
import pytest
from netns import NETNS_ETC, Network, _namespaces

pytestmark = [pytest.mark.multihost, pytest.mark.timeout(120)]

#: Asks the port mapper on host argv[1] for its names (EPMD's NAMES_REQ), prints
#: whether it answered and how long that took (plain sockets: starts fast).
PING = (
    "import socket, sys, time\n"
    "t0 = time.monotonic()\n"
    "try:\n"
    "    s = socket.create_connection((sys.argv[1], 4369), timeout=float(sys.argv[2]))\n"
    "    s.sendall(b'\\x00\\x01n')\n"
    "    ok = len(s.makefile('rb').read(4)) == 4\n"
    "except OSError:\n"
    "    ok = False\n"
    "print(ok, time.monotonic() - t0)\n"
)


def epmd_ping(host: Any, target: str, timeout: float = 1.0) -> tuple[bool, float]:
    out = host.run([sys.executable, "-S", "-c", PING, target, str(timeout)]).stdout.split()
    return out[0] == "True", float(out[1])


def test_each_host_has_its_name_address_and_port_mapper(net: Network) -> None:
    alpha, beta, gamma = net.hosts
    assert alpha.run(["hostname"]).stdout.strip() == "alpha"
    assert beta.run(["hostname"]).stdout.strip() == "beta"
    resolve = "import socket, sys; print(socket.gethostbyname(sys.argv[1]))"
    assert alpha.run([sys.executable, "-c", resolve, "gamma"]).stdout.strip() == gamma.ip
    addresses = alpha.run(["ip", "-4", "-o", "addr"]).stdout
    assert gamma.ip not in addresses and alpha.ip in addresses
    for epmd in [host.start_epmd(wait=False) for host in net.hosts]:  # each on its own port 4369
        epmd.wait_ready()
    for host in net.hosts:
        assert epmd_ping(alpha, host.hostname)[0]


def test_partition_is_silent_and_heals(net: Network) -> None:
    alpha, beta, gamma = net.hosts
    beta.start_epmd()
    net.partition(alpha, beta)
    ok, seconds = epmd_ping(alpha, "beta", timeout=1.0)
    assert not ok and seconds >= 0.9, "a partition drops packets (a timeout), it does not refuse"
    assert epmd_ping(gamma, "beta")[0], "only alpha is cut off"
    net.heal()
    assert epmd_ping(alpha, "beta")[0]


def test_delay_holds_each_direction(net: Network) -> None:
    alpha, beta, _ = net.hosts
    beta.start_epmd()
    before = epmd_ping(alpha, "beta")[1]
    net.delay(alpha, beta, 100)
    ok, after = epmd_ping(alpha, "beta", timeout=5.0)
    print(f"\nport mapper request alpha -> beta: {before * 1000:.1f} ms, with 100 ms each way: {after * 1000:.1f} ms")
    # connect, request and answer: at least two crossings each way
    assert ok and after >= 0.2
    assert int(net.relay_stats()[0]["connections"]) >= 1
    net.heal()
    assert epmd_ping(alpha, "beta")[1] < 0.2


#: Counts the UDP datagrams that reach port 9999 until none came for a second.
COUNT_UDP = (
    "import socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('0.0.0.0', 9999))\n"
    "print('READY port=9999', flush=True)\n"
    "s.settimeout(1.0)\n"
    "n = 0\n"
    "try:\n"
    "    while True:\n"
    "        s.recv(64)\n"
    "        n += 1\n"
    "except socket.timeout:\n"
    "    print(f'RECEIVED {n}', flush=True)\n"
)
SEND_UDP = "import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor _ in range(400): s.sendto(b'x', (sys.argv[1], 9999))\n"


def test_loss_drops_a_share_of_what_a_host_receives(net: Network) -> None:
    alpha, beta, _ = net.hosts
    net.loss(beta, 0.5)
    rules = beta.iptables("-S", "INPUT").stdout
    assert "--probability 0.5" in rules and "-i eth0" in rules
    counter = beta.start([sys.executable, "-c", COUNT_UDP])
    counter.wait_ready()
    alpha.run([sys.executable, "-c", SEND_UDP, beta.ip])
    received = int(counter.wait_line("RECEIVED").split()[1])
    print(f"\n{received} of 400 datagrams arrived with 50% loss")
    assert 100 < received < 300


def test_nothing_is_left_behind(make_net: Callable[..., Network]) -> None:
    net = make_net(2)
    net[0].start_epmd()
    made = [net.bridge_ns, *(h.ns for h in net.hosts)]
    assert set(made) <= set(_namespaces())
    net.close()
    assert not set(made) & set(_namespaces())
    assert not any((NETNS_ETC / ns).exists() for ns in made)


def test_without_root_or_tools_the_set_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the set skips with where namespaces cannot be made (runs anywhere: it makes none)."""
    monkeypatch.setattr(netns.sys, "platform", "linux")
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert netns.unavailable() == "network namespaces need root (CI runs as root)"
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns.shutil, "which", lambda tool: None if tool == "iptables" else f"/usr/bin/{tool}")
    assert netns.unavailable() == "'iptables' is not installed (system package iptables)"


def test_leftovers_of_a_crashed_run_are_removed(netns_ok: None) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs: the "crashed" run's
    ns = f"{netns.PREFIX}{gone.pid}-crashed-br"
    netns._sh("ip", "netns", "add", ns)
    (NETNS_ETC / ns).mkdir(parents=True, exist_ok=True)
    mine = f"{netns.PREFIX}{os.getpid()}-alive-br"  # a run still going (this one) is left alone
    netns._sh("ip", "netns", "add", mine)
    try:
        assert ns in netns.remove_leftovers()
        assert ns not in _namespaces() and not (NETNS_ETC / ns).exists()
        assert mine in _namespaces()
    finally:
        netns._remove_namespace(mine)
        netns._remove_namespace(ns)
