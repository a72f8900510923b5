"""Every strategy fulfils the discovery contract; the multicast strategy's receiving side on
loopback (unicast to 127.0.0.1: no multicast leaves this test)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from zope.interface.verify import verifyObject

from joerl.discovery import (
    Discovery,
    DnsDiscovery,
    EpmdDiscovery,
    EtcdDiscovery,
    IDiscovery,
    Member,
    MulticastDiscovery,
    StaticDiscovery,
)
from joerl.discovery.beacon import Beacon, BeaconWriter, beacon_key, encode
from joerl.testing import free_port, wait_until

COOKIE = b"cluster-cookie"


@pytest.mark.parametrize(
    "strategy",
    [
        StaticDiscovery(["a@h"]),
        EpmdDiscovery(["h1", "h2:4370"]),
        DnsDiscovery("app.example.com", "app"),
        EtcdDiscovery(),
        MulticastDiscovery(),
    ],
    ids=lambda s: type(s).__name__,
)
def test_every_strategy_provides_the_interface(strategy: Discovery) -> None:
    assert verifyObject(IDiscovery, strategy)


@pytest.mark.parametrize(
    "bad", [{"interval": 0}, {"interval": -1}, {"max_nodes": 0}, {"max_nodes": 1.5}, {"max_nodes": True}]
)
def test_loop_settings_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        StaticDiscovery([], **bad)


def test_epmd_discovery_needs_hosts() -> None:
    with pytest.raises(ValueError):
        EpmdDiscovery([])


def test_the_base_class_has_no_source() -> None:
    with pytest.raises(NotImplementedError):
        Discovery().nodes()


@pytest.fixture
def listening() -> Iterator[tuple[MulticastDiscovery, Any]]:
    port = free_port()
    strategy = MulticastDiscovery("127.0.0.1", port, beacon_interval=0.05, expire=1.0)
    strategy.start(Member("me@h", "127.0.0.1", 1, COOKIE))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        yield strategy, lambda data: sender.sendto(data, ("127.0.0.1", port))
    finally:
        sender.close()
        strategy.stop()


def test_signed_beacons_list_their_nodes_and_strangers_are_ignored(listening: Any) -> None:
    strategy, send = listening
    strategy.changed.clear()
    send(BeaconWriter("b@h", COOKIE).next())
    assert strategy.changed.wait(5)
    assert strategy.nodes() == ["b@h"]
    send(BeaconWriter("evil@h", b"another cookie").next())
    send(b"garbage")
    send(b"\x00" * 2000)
    wait_until(lambda: sum(strategy.refused.values()) == 3, what="three refusals")
    assert strategy.refused == {"signature": 1, "size": 2}
    assert strategy.nodes() == ["b@h"]  # own beacons (me@h) are not listed either


def test_a_replayed_beacon_is_refused(listening: Any) -> None:
    strategy, send = listening
    data = encode(Beacon("b@h", int(time.time() * 1000), 1, 1), beacon_key(COOKIE))
    send(data)
    send(data)
    wait_until(lambda: strategy.refused["replay"] == 1, what="the replay refused")
    assert strategy.nodes() == ["b@h"]


def test_a_silent_node_expires(listening: Any) -> None:
    strategy, send = listening
    strategy.changed.clear()
    send(BeaconWriter("b@h", COOKIE).next())
    assert strategy.changed.wait(5)
    wait_until(lambda: strategy.nodes() == [], timeout=5, interval=0.1, what="b expired after 1 s of silence")


def test_the_list_of_heard_nodes_is_bounded() -> None:
    port = free_port()
    strategy = MulticastDiscovery("127.0.0.1", port, max_nodes=3)
    strategy.start(Member("me@h", "127.0.0.1", 1, COOKIE))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(10):
            sender.sendto(BeaconWriter(f"n{i}@h", COOKIE).next(), ("127.0.0.1", port))
        wait_until(lambda: strategy.refused["full"] == 7, what="seven nodes over the bound")
        assert len(strategy.nodes()) == 3
    finally:
        sender.close()
        strategy.stop()
