"""Node-level security: mutual TLS, the allow-list, the handshake cap and the
connection-rate limit. Certificates are made on the fly with ``cryptography``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
from gevent import socket  # cooperative: the nodes run while the test waits

from joerl import DistributedSystem, NodeUnreachable
from joerl.node.names import node_name as full
from joerl.node.tls import TlsConfig
from joerl.testing import Probe, running_epmd, wait_until

x509 = pytest.importorskip("cryptography.x509")
from _tlskit import CA  # noqa: E402 - needs cryptography

COOKIE = "security-test-cookie"


@pytest.fixture
def epmd() -> Iterator[str]:
    with running_epmd() as address:
        yield address


@pytest.fixture
def nodes(epmd: str) -> Iterator[Any]:
    made: list[DistributedSystem] = []

    def make(name: str, **options: Any) -> DistributedSystem:
        options.setdefault("cookie", COOKIE)
        node = DistributedSystem(name, "127.0.0.1:0", epmd, start_epmd=False, global_names=False, **options)
        made.append(node)
        return node

    yield make
    for node in reversed(made):
        node.shutdown()


def test_tls_nodes_link_and_talk(tmp_path: Path, nodes: Any) -> None:
    ca = CA(tmp_path, "cluster-ca")
    a = nodes("a", tls=ca.node("a"))
    b = nodes("b", tls=ca.node("b"))
    inbox = Probe(b, name="inbox")
    a.system.send(("inbox", "b"), "over tls")
    assert inbox.receive(timeout=10) == "over tls"
    assert inbox.pending() == []
    link = b._peers["a"].link
    assert link is not None and "SSL" in type(link.sock).__name__


def test_a_tls_node_refuses_a_plaintext_peer_and_the_reverse_fails_cleanly(
    tmp_path: Path, nodes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ca = CA(tmp_path, "cluster-ca")
    secure = nodes("secure", tls=ca.node("secure"))
    plain = nodes("plain")
    inbox = Probe(secure, name="inbox")
    with caplog.at_level(logging.WARNING, logger="joerl"):
        with pytest.raises(NodeUnreachable):
            plain.connect_to_node("secure", timeout=10)
        with pytest.raises(NodeUnreachable):
            secure.connect_to_node("plain", timeout=10)
    assert secure.nodes() == [] and plain.nodes() == [] and inbox.pending() == []
    assert "TLS handshake failed" in caplog.text


def test_a_certificate_from_another_ca_is_refused(tmp_path: Path, nodes: Any) -> None:
    ours, theirs = CA(tmp_path, "cluster-ca"), CA(tmp_path, "rogue-ca")
    a = nodes("a", tls=ours.node("a"))
    rogue_cfg = theirs.node("rogue")
    # The rogue trusts our CA, so only our side can refuse it.
    rogue = nodes("rogue", tls=TlsConfig(rogue_cfg.certfile, rogue_cfg.keyfile, ours.cafile))
    with pytest.raises(NodeUnreachable):
        rogue.connect_to_node("a", timeout=10)
    assert a.nodes() == []


def test_the_subject_allow_list_refuses_other_certificates(tmp_path: Path, nodes: Any) -> None:
    ca = CA(tmp_path, "cluster-ca")
    a = nodes("a", tls=ca.node("a", allowed_subjects={"a", "b"}))
    b = nodes("b", tls=ca.node("b"))
    c = nodes("c", tls=ca.node("c"))
    assert b.connect_to_node("a", timeout=10)
    with pytest.raises(NodeUnreachable):
        c.connect_to_node("a", timeout=10)
    assert a.nodes() == [full("b")]


def test_the_node_allow_list_refuses_other_names_after_authentication(
    nodes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    a = nodes("a", allowed_nodes={"b"})
    b = nodes("b")
    c = nodes("c")
    inbox = Probe(a, name="inbox")
    assert b.connect_to_node("a", timeout=10)
    with caplog.at_level(logging.WARNING, logger="joerl"):
        c.system.send(("inbox", "a"), "let me in")
        with pytest.raises(NodeUnreachable):
            c.connect_to_node("a", timeout=10)
    wait_until(lambda: f"refused a link with node {full('c')!r}: not in allowed_nodes" in caplog.text, timeout=5)
    assert a.nodes() == [full("b")] and inbox.pending() == []


def test_past_the_handshake_bound_the_oldest_silent_handshake_is_evicted(nodes: Any) -> None:
    a = nodes("a", max_handshakes=2, first_bytes_timeout=30.0)
    b = nodes("b")
    stalled = [socket.create_connection(("127.0.0.1", a.listen_port)) for _ in range(2)]
    stalled[1].sendall(b"\x01")  # not silent: the first one is the oldest silent handshake
    try:
        wait_until(lambda: a._links.handshakes == 2, timeout=5)
        extra = socket.create_connection(("127.0.0.1", a.listen_port))
        stalled[0].settimeout(5)
        assert stalled[0].recv(1) == b""  # evicted, without a byte
        wait_until(lambda: a.stats.refused_connections == 1, timeout=5)
        assert a._links.handshakes == 2  # the newcomer holds the slot
        extra.close()
    finally:
        for sock in stalled:
            sock.close()
    wait_until(lambda: a._links.handshakes == 0, timeout=5)
    assert b.connect_to_node("a", timeout=10)  # a well-behaved peer gets in


def test_a_full_handshake_bound_never_locks_a_legitimate_peer_out(nodes: Any) -> None:
    a = nodes("a", max_handshakes=2, first_bytes_timeout=30.0)
    b = nodes("b")
    stalled = [socket.create_connection(("127.0.0.1", a.listen_port)) for _ in range(2)]
    try:
        wait_until(lambda: a._links.handshakes == 2, timeout=5)
        assert b.connect_to_node("a", timeout=10)  # evicts a silent stranger, links at once
        assert a.nodes() == [full("b")]
    finally:
        for sock in stalled:
            sock.close()


def test_the_connection_rate_limit_of_an_address_closes_a_burst(nodes: Any) -> None:
    a = nodes("a", max_connections_per_second=5, max_handshakes_per_address=5)
    socks = []
    try:
        for _ in range(20):
            socks.append(socket.create_connection(("127.0.0.1", a.listen_port)))
        wait_until(lambda: a.stats.refused_connections >= 10, timeout=5)
    finally:
        for sock in socks:
            sock.close()
    gevent.sleep(0)


# -- a certificate is bound to its node name (issue 15) ----------------------------


def test_a_node_holding_another_nodes_certificate_cannot_join_under_its_own_name(
    tmp_path: Path, nodes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Mallory holds b's valid certificate (signed by the cluster's CA) and
    dials a as "mallory", and a dials mallory: both are refused, on both sides,
    and nothing crosses; b, with the same certificate, links."""
    from joerl.errors import HandshakeError
    from joerl.node.tls import CertificateNameMismatch

    ca = CA(tmp_path, "cluster-ca")
    a = nodes("a", tls=ca.node("a"))
    b_tls = ca.node("b")
    mallory = nodes("mallory", tls=b_tls)
    inbox = Probe(a, name="inbox")
    with caplog.at_level(logging.WARNING, logger="joerl"):
        mallory.system.send(("inbox", "a"), "let me in")
        with pytest.raises(NodeUnreachable):
            mallory.connect_to_node("a", timeout=10)
        with pytest.raises(NodeUnreachable):
            a.connect_to_node("mallory", timeout=10)
    assert a.nodes() == [] and mallory.nodes() == [] and inbox.pending() == []
    assert f"the peer claims node name {full('mallory')!r} but its certificate (subject {full('b')!r}" in caplog.text
    assert "certificate does not bind the name it claims" in caplog.text  # what mallory is told
    assert issubclass(CertificateNameMismatch, HandshakeError)
    b = nodes("b", tls=b_tls)
    assert b.connect_to_node("a", timeout=10)
    assert sorted(a.nodes()) == [full("b")]


def test_uri_san_binds_exactly_the_names_it_lists(tmp_path: Path, nodes: Any) -> None:
    """A certificate with ``joerl-node://`` URIs names exactly those nodes,
    whatever its common name."""
    ca = CA(tmp_path, "cluster-ca")
    a = nodes("a", tls=ca.node("a"))
    certfile, keyfile = ca.files(
        "some-service", [x509.UniformResourceIdentifier(f"joerl-node://{full('worker1')}")], "worker"
    )
    shared = TlsConfig(certfile, keyfile, ca.cafile)
    worker1 = nodes("worker1", tls=shared)
    assert worker1.connect_to_node("a", timeout=10)
    worker2 = nodes("worker2", tls=shared)
    with pytest.raises(NodeUnreachable):
        worker2.connect_to_node("a", timeout=10)
    impostor = nodes("some-service", tls=shared)  # the CN no longer counts once URIs are given
    with pytest.raises(NodeUnreachable):
        impostor.connect_to_node("a", timeout=10)
    assert a.nodes() == [full("worker1")]


def test_the_name_rule_for_name_at_host_names() -> None:
    """``alive@host``: the exact URI, else the common name, else the host among
    the DNS names or IP addresses (the certificate of a host vouches for its nodes)."""
    from joerl.node.tls import certificate_names_node

    uri = {"subject": ((("commonName", "x"),),), "subjectAltName": (("URI", "joerl-node://app@db1.example"),)}
    assert certificate_names_node(uri, "app@db1.example")
    assert not certificate_names_node(uri, "other@db1.example") and not certificate_names_node(uri, "x")
    host = {
        "subject": ((("commonName", "db1"),),),
        "subjectAltName": (("DNS", "DB1.example"), ("IP Address", "10.0.0.7")),
    }
    assert certificate_names_node(host, "app@db1.example") and certificate_names_node(host, "any@10.0.0.7")
    assert not certificate_names_node(host, "app@db2.example") and not certificate_names_node(host, "app")
    assert not certificate_names_node(host, "@db1.example") and certificate_names_node(host, "db1")
    assert not certificate_names_node(None, "a")


def test_bind_names_off_keeps_the_old_behaviour(tmp_path: Path, nodes: Any) -> None:
    import dataclasses

    ca = CA(tmp_path, "cluster-ca")
    a = nodes("a", tls=ca.node("a"))
    b_tls = ca.node("b")
    loose = TlsConfig(b_tls.certfile, b_tls.keyfile, b_tls.cafile, bind_names=False)
    lax_a = nodes("lax-a", tls=dataclasses.replace(ca.node("lax-a"), bind_names=False))
    other = nodes("other", tls=loose)
    assert other.connect_to_node("lax-a", timeout=10)  # lax-a does not check; other's cert says "b"
    with pytest.raises(NodeUnreachable):
        other.connect_to_node("a", timeout=10)  # a does
    assert lax_a.nodes() == [full("other")] and a.nodes() == []
