"""name@host addressing on one machine (issue 16): one port mapper per host,
a host's own names on loopback, listen and advertised addresses, the portless
mode, and one shared port mapper with authenticated registrations.

Hosts are simulated by loopback addresses (127.0.0.2, 127.0.0.3, ...): a node
named ``b@127.0.0.3`` is on "host 127.0.0.3", whose port mapper is
``127.0.0.3:$ERL_EPMD_PORT``. The port mapper of these tests listens on every
interface on a free port, so it is every simulated host's. tests/multihost
crosses real (namespaced) hosts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from joerl.epmd import EpmdClient, EpmdServer
from joerl.errors import DistributionError, NodeUnreachable
from joerl.node.locator import Locator
from joerl.node.names import default_host, derived_port
from joerl.node.node import DistributedSystem
from joerl.testing import Probe, free_port

COOKIE = "addressing-cookie"


@pytest.fixture
def host_mapper(monkeypatch: pytest.MonkeyPatch) -> Iterator[EpmdServer]:
    """This machine's port mapper on every interface, at $ERL_EPMD_PORT (no shared one)."""
    monkeypatch.delenv("JOERL_EPMD_ADDRESS", raising=False)
    server = EpmdServer(f"0.0.0.0:{free_port()}")
    server.start()
    monkeypatch.setenv("ERL_EPMD_PORT", str(server.port))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nodes() -> Iterator[Any]:
    made: list[DistributedSystem] = []

    def make(name: str, listen: str = "0.0.0.0:0", **options: Any) -> DistributedSystem:
        options.setdefault("cookie", COOKIE)
        node = DistributedSystem(name, listen, start_epmd=False, global_names=False, **options)
        made.append(node)
        return node

    yield make
    for node in reversed(made):
        node.shutdown()


def test_nodes_register_their_alive_names_with_their_hosts_port_mapper(host_mapper: EpmdServer, nodes: Any) -> None:
    a, b = nodes("a"), nodes("b")
    host = default_host()
    assert (a.node_name, b.node_name) == (f"a@{host}", f"b@{host}")
    assert sorted(n.name for n in host_mapper.nodes()) == ["a", "b"], "as Erlang's nodes: alive names"
    assert a.epmd_address == f"127.0.0.1:{host_mapper.port}"
    assert sorted(n.name for n in a.list_nodes()) == [a.node_name, b.node_name], "listed in full"
    inbox = Probe(b, name="inbox")
    a.system.send(("inbox", "b"), "bare")
    a.system.send(("inbox", b.node_name), "full")
    assert [inbox.receive(), inbox.receive()] == ["bare", "full"]
    assert a.nodes() == [b.node_name] and b.nodes() == [a.node_name]


def test_a_node_on_another_host_is_found_at_that_hosts_port_mapper(host_mapper: EpmdServer, nodes: Any) -> None:
    here = nodes("here@127.0.0.2", "127.0.0.2:0")
    there = nodes("there@127.0.0.3", "127.0.0.3:0")
    assert host_mapper.lookup("there") is not None and host_mapper.lookup("there").host == "127.0.0.3"
    inbox = Probe(there, name="inbox")
    here.system.send(("inbox", "there@127.0.0.3"), "across")
    assert inbox.receive() == "across"
    assert here.nodes() == ["there@127.0.0.3"] and there.nodes() == ["here@127.0.0.2"]
    # A bare name is a node of this node's host: "there" is there@127.0.0.2, which does not exist.
    with pytest.raises(NodeUnreachable, match="not registered"):
        here.connect_to_node("nobody@127.0.0.3", timeout=5)


def test_without_an_advertised_address_peers_dial_the_port_mappers_address(host_mapper: EpmdServer) -> None:
    with EpmdClient(f"127.0.0.1:{host_mapper.port}") as registrar:
        registrar.register("quiet", "", 4242)  # no host: "the host of my port mapper"
        locator = Locator("me@127.0.0.2", "0.0.0.0:0", None, None, False, 5.0)
        info = locator.lookup("quiet@127.0.0.4")
        assert info is not None and (info.name, info.host, info.port) == ("quiet@127.0.0.4", "127.0.0.4", 4242)
        registrar.register("looped", "127.0.0.1", 4243)  # a loopback address is useless to another host
        info = locator.lookup("looped@127.0.0.5")
        assert info is not None and (info.host, info.port) == ("127.0.0.1", 4243), "127/8 is loopback too"


def test_the_advertised_address_is_what_peers_dial(host_mapper: EpmdServer, nodes: Any) -> None:
    behind_nat = nodes("nat@127.0.0.6", "0.0.0.0:0", advertise_host="127.0.0.7")
    assert behind_nat.advertise_host == "127.0.0.7" and host_mapper.lookup("nat").host == "127.0.0.7"
    peer = nodes("peer@127.0.0.2", "127.0.0.2:0")
    assert peer.connect_to_node("nat@127.0.0.6", timeout=5)
    link = peer._peers["nat@127.0.0.6"].link
    assert link is not None and link.sock.getpeername()[0] == "127.0.0.7", "dialled at the advertised address"


def test_a_node_listens_on_one_interface_or_on_all(host_mapper: EpmdServer, nodes: Any) -> None:
    one = nodes("one@127.0.0.2", "127.0.0.2:0")
    every = nodes("every@127.0.0.3")
    assert one._server.socket.getsockname()[0] == "127.0.0.2"
    assert every._server.socket.getsockname()[0] == "0.0.0.0" and every.advertise_host == ""
    assert one.connect_to_node("every@127.0.0.3", timeout=5) and every.connect_to_node("one@127.0.0.2", timeout=5)


def test_an_unknown_host_is_a_clear_error(host_mapper: EpmdServer, nodes: Any) -> None:
    a = nodes("a")
    with pytest.raises(NodeUnreachable, match="cannot resolve host 'no-such-host.invalid'"):
        a.connect_to_node("b@no-such-host.invalid", timeout=10)


def test_a_host_without_a_port_mapper_is_a_clear_error(nodes: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOERL_EPMD_ADDRESS", raising=False)
    monkeypatch.setenv("ERL_EPMD_PORT", str(free_port()))
    with pytest.raises(DistributionError, match="cannot register node 'a@127.0.0.2' at port mapper"):
        nodes("a@127.0.0.2", "127.0.0.2:0")
    lonely = nodes("lonely@127.0.0.2", "127.0.0.2:0", portless=True)
    with pytest.raises(NodeUnreachable):
        lonely.connect_to_node("b@127.0.0.3", timeout=5)


def test_portless_nodes_listen_on_one_port_and_dial_it_directly(nodes: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOERL_EPMD_ADDRESS", raising=False)
    monkeypatch.setenv("ERL_EPMD_PORT", str(free_port()))  # nobody answers there: no port mapper at all
    port = free_port()
    a = nodes("a@127.0.0.2", f"127.0.0.2:{port}", portless=True)
    b = nodes("b@127.0.0.3", f"127.0.0.3:{port}", portless=True)
    assert a.listen_port == b.listen_port == port and a.list_nodes() == []
    inbox = Probe(b, name="inbox")
    a.system.send(("inbox", "b@127.0.0.3"), "no port mapper")
    assert inbox.receive() == "no port mapper"


def test_portless_nodes_without_a_port_listen_on_one_derived_from_the_name(
    nodes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOERL_EPMD_ADDRESS", raising=False)
    monkeypatch.setenv("ERL_EPMD_PORT", str(free_port()))
    a = nodes("pl-a@127.0.0.2", "127.0.0.2:0", portless=True)
    b = nodes("pl-b@127.0.0.3", "127.0.0.3:0", portless=True)
    assert (a.listen_port, b.listen_port) == (derived_port("pl-a"), derived_port("pl-b"))
    assert a.connect_to_node("pl-b@127.0.0.3", timeout=5) and b.nodes() == ["pl-a@127.0.0.2"]


# -- one shared port mapper --------------------------------------------------------------


@pytest.fixture
def shared_mapper(monkeypatch: pytest.MonkeyPatch) -> Iterator[EpmdServer]:
    """A cluster's shared port mapper that takes every peer for another host's."""
    server = EpmdServer("127.0.0.1:0", cookie=COOKIE.encode())
    monkeypatch.setattr(server, "_peer_is_local", lambda sock, peer: False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_shared_port_mapper_holds_full_names_registered_with_the_cookies_hmac(
    shared_mapper: EpmdServer, nodes: Any
) -> None:
    address = f"127.0.0.1:{shared_mapper.port}"
    a1 = nodes("a@127.0.0.2", "127.0.0.2:0", epmd_address=address)
    a2 = nodes("a@127.0.0.3", "127.0.0.3:0", epmd_address=address)
    assert sorted(n.name for n in shared_mapper.nodes()) == ["a@127.0.0.2", "a@127.0.0.3"], "two nodes"
    assert shared_mapper.lookup("a@127.0.0.2").host == "127.0.0.2"
    inbox = Probe(a2, name="inbox")
    a1.system.send(("inbox", "a@127.0.0.3"), "same alive name, other host")
    assert inbox.receive() == "same alive name, other host"
    with pytest.raises(DistributionError, match="auth_failed"):
        nodes("stranger@127.0.0.4", "127.0.0.4:0", epmd_address=address, cookie="not-the-cookie")
    assert shared_mapper.lookup("stranger@127.0.0.4") is None


def test_a_host_port_mapper_refuses_registrations_from_other_hosts(
    host_mapper: EpmdServer, nodes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_mapper, "_peer_is_local", lambda sock, peer: False)
    with pytest.raises(DistributionError, match="--shared"):
        nodes("far@127.0.0.2", "127.0.0.2:0", epmd_address=f"127.0.0.1:{host_mapper.port}")


def test_a_host_certificate_binds_every_node_of_that_host_over_tls(
    host_mapper: EpmdServer, nodes: Any, tmp_path: Any
) -> None:
    """A certificate with a host's IP address binds ``any@that-host``, and no node of another host."""
    import ipaddress

    pytest.importorskip("cryptography.x509")
    from _tlskit import CA
    from cryptography import x509

    from joerl.node.tls import TlsConfig

    ca = CA(tmp_path, "hosts-ca")

    def host_tls(ip: str) -> TlsConfig:
        cert, key = ca.files(f"host {ip}", [x509.IPAddress(ipaddress.ip_address(ip))], f"host-{ip}")
        return TlsConfig(cert, key, ca.cafile)

    b = nodes("b@127.0.0.3", "127.0.0.3:0", tls=host_tls("127.0.0.3"))
    a = nodes("a@127.0.0.2", "127.0.0.2:0", tls=host_tls("127.0.0.2"))
    inbox = Probe(b, name="inbox")
    a.system.send(("inbox", "b@127.0.0.3"), "over tls, across hosts")
    assert inbox.receive(timeout=10) == "over tls, across hosts"
    impostor = nodes("c@127.0.0.4", "127.0.0.4:0", tls=host_tls("127.0.0.3"))  # another host's certificate
    with pytest.raises(NodeUnreachable):
        impostor.connect_to_node("b@127.0.0.3", timeout=10)
    assert sorted(b.nodes()) == ["a@127.0.0.2"]


def test_long_names_complete_a_bare_name_with_this_machines_fqdn(host_mapper: EpmdServer, nodes: Any) -> None:
    import socket

    a = nodes("la", long_names=True)
    b = nodes("lb", long_names=True)
    assert (a.node_name, b.node_name) == (f"la@{socket.getfqdn()}", f"lb@{socket.getfqdn()}")
    inbox = Probe(b, name="inbox")
    a.system.send(("inbox", "lb"), "a bare name gets this node's host: the FQDN")
    assert inbox.receive() == "a bare name gets this node's host: the FQDN"
    assert a.nodes() == [b.node_name]
