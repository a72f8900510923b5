"""A throwaway certificate authority for the TLS tests: node certificates made on the fly.

Needs ``cryptography``: import it after ``pytest.importorskip("cryptography.x509")``.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from joerl.node.names import node_name as full
from joerl.node.tls import TlsConfig


def _name(cn: str) -> Any:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def certificate(cn: str, public_key: Any, issuer: Any, signing_key: Any, *, ca: bool = False, sans: Any = ()) -> Any:
    """A certificate for ``cn`` (valid from 5 minutes ago for a day) with these subject alternative names."""
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


class CA:
    """A throwaway certificate authority that signs node certificates, its files in ``directory``."""

    def __init__(self, directory: Path, cn: str) -> None:
        self.dir = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = certificate(cn, self.key.public_key(), _name(cn), self.key, ca=True)
        self.cafile = _write(directory / f"{cn}.pem", self.cert.public_bytes(serialization.Encoding.PEM))

    def files(self, cn: str, sans: Any = (), filename: str | None = None) -> tuple[str, str]:
        """A certificate of this CA with subject ``cn`` and these subject alternative names:
        the paths of its certificate and key files (named ``filename``, default ``cn``)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = certificate(cn, key.public_key(), self.cert.subject, self.key, sans=sans)
        stem = cn if filename is None else filename
        certfile = _write(self.dir / f"{stem}.crt", cert.public_bytes(serialization.Encoding.PEM))
        keyfile = _write(
            self.dir / f"{stem}.key",
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        return certfile, keyfile

    def node(self, cn: str, allowed_subjects: set[str] | None = None) -> TlsConfig:
        """The TLS configuration of node ``cn`` (its full name is the certificate's common name)."""
        cn = full(cn)  # the common name binds the full node name, name@host
        allowed = None if allowed_subjects is None else frozenset(full(s) for s in allowed_subjects)
        certfile, keyfile = self.files(cn)
        return TlsConfig(certfile, keyfile, self.cafile, allowed)
