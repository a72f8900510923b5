"""A node that discovery lists still passes the TLS handshake like any other: a node with a
certificate of another authority, or without TLS, is listed but never linked."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from joerl import DistributedSystem
from joerl.discovery import StaticDiscovery
from joerl.node.tls import TlsConfig
from joerl.testing import running_epmd, wait_until

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

HOST = "h.test"


def _name(cn: str) -> Any:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class Authority:
    """A throwaway certificate authority (certificates whose common name is the node name)."""

    def __init__(self, directory: Path, cn: str) -> None:
        self.dir = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = self._sign(cn, self.key.public_key(), ca=True, issuer=_name(cn))
        self.cafile = self._write(f"{cn}.pem", self.cert.public_bytes(serialization.Encoding.PEM))

    def _sign(self, cn: str, public_key: Any, *, ca: bool, issuer: Any) -> Any:
        now = datetime.datetime.now(datetime.timezone.utc)
        return (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def _write(self, name: str, data: bytes) -> str:
        path = self.dir / name
        path.write_bytes(data)
        return str(path)

    def node(self, cn: str) -> TlsConfig:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign(cn, key.public_key(), ca=False, issuer=self.cert.subject)
        pem = serialization.PrivateFormat.PKCS8
        return TlsConfig(
            self._write(f"{cn}.crt", cert.public_bytes(serialization.Encoding.PEM)),
            self._write(f"{cn}.key", key.private_bytes(serialization.Encoding.PEM, pem, serialization.NoEncryption())),
            self.cafile,
        )


@pytest.fixture
def make_node() -> Iterator[Any]:
    made: list[DistributedSystem] = []
    with running_epmd() as epmd:

        def make(name: str, **kw: Any) -> DistributedSystem:
            node = DistributedSystem(
                name, "127.0.0.1:0", epmd, cookie="tls-test", start_epmd=False, global_names=False, **kw
            )
            made.append(node)
            return node

        try:
            yield make
        finally:
            for node in reversed(made):
                node.shutdown()


@pytest.mark.timeout(60)
def test_listed_nodes_without_our_authoritys_certificate_are_never_linked(tmp_path: Path, make_node: Any) -> None:
    ours, theirs = Authority(tmp_path, "ours"), Authority(tmp_path, "theirs")
    names = [f"{n}@{HOST}" for n in ("a", "b", "rogue", "plain")]
    make_node(names[1], tls=ours.node(names[1]))
    make_node(names[2], tls=theirs.node(names[2]))  # another authority
    make_node(names[3])  # no TLS at all
    a = make_node(names[0], tls=ours.node(names[0]), discovery=StaticDiscovery(names, interval=0.05))
    loop = a.discovery
    assert loop is not None
    wait_until(lambda: a.nodes() == [names[1]] and loop.stats.connect_failures >= 2, what="b linked, two refused")
    assert loop.listed == names[1:]
    assert loop.stats.connects == 1
