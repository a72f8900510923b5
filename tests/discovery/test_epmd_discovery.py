"""EpmdDiscovery against real port mappers on loopback: their listings become alive@host names;
a port mapper that stops answering keeps its last listing; none answering is a source that is down."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from joerl.discovery import EpmdDiscovery
from joerl.epmd import EpmdClient, EpmdServer
from joerl.errors import EpmdError

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def mappers() -> Iterator[list[Any]]:
    servers = [EpmdServer("127.0.0.1:0"), EpmdServer("127.0.0.1:0")]
    clients: list[EpmdClient] = []
    for server in servers:
        server.start()
    try:
        yield [servers, clients]
    finally:
        for client in clients:
            client.close()
        for server in servers:
            server.stop()


def register(mappers: Any, index: int, *names: str) -> None:
    servers, clients = mappers
    client = EpmdClient(f"127.0.0.1:{servers[index].port}")
    clients.append(client)
    for i, name in enumerate(names):
        client.register(name, "127.0.0.1", 20000 + i)


def test_listings_become_node_names_of_the_host_as_written(mappers: Any) -> None:
    servers, _ = mappers
    register(mappers, 0, "a", "b")
    register(mappers, 1, "c")
    source = EpmdDiscovery([f"127.0.0.1:{servers[0].port}", f"localhost:{servers[1].port}"], timeout=1.0)
    assert sorted(source.nodes()) == ["a@127.0.0.1", "b@127.0.0.1", "c@localhost"]


def test_a_port_mapper_that_does_not_answer_keeps_its_last_listing(mappers: Any) -> None:
    servers, _ = mappers
    register(mappers, 0, "a")
    register(mappers, 1, "c")
    source = EpmdDiscovery([f"127.0.0.1:{servers[0].port}", f"127.0.0.1:{servers[1].port}"], timeout=1.0)
    assert sorted(source.nodes()) == ["a@127.0.0.1", "c@127.0.0.1"]
    servers[1].stop()
    assert sorted(source.nodes()) == ["a@127.0.0.1", "c@127.0.0.1"]  # c's host kept, not forgotten
    servers[0].stop()
    with pytest.raises(EpmdError):
        source.nodes()


def test_the_default_port_is_erl_epmd_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERL_EPMD_PORT", "4370")
    assert EpmdDiscovery(["h1", "h2:5000"]).hosts == [("h1", 4370), ("h2", 5000)]
    monkeypatch.delenv("ERL_EPMD_PORT")
    assert EpmdDiscovery(["h1"]).hosts == [("h1", 4369)]
    assert EpmdDiscovery(["h1"], port=4400).hosts == [("h1", 4400)]
