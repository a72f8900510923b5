"""TLS for node links: mutual authentication with certificates, under the cookie.

:func:`tls_wrapper` builds the ``LinkConfig.wrap_socket`` hook a node uses
on every link, right after the TCP connect or accept and before the joerl
handshake: both sides present a certificate signed by the cluster's CA and
verify the other's. A node configured for TLS therefore refuses plaintext
peers (their bytes are not a TLS hello), and a plaintext node fails cleanly
against a TLS one. The cookie handshake then runs inside TLS.

Certificates identify nodes by their subject's common name; an optional
allow-list of subjects refuses every other certificate, even one the CA signed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gevent import ssl

from ..errors import CertificateRefused, HandshakeError


@dataclass(frozen=True)
class TlsConfig:
    """Where a node's TLS material lives.

    Args:
        certfile: this node's certificate chain (PEM).
        keyfile: its private key (PEM).
        cafile: the CA certificate(s) that sign every node of the cluster.
        allowed_subjects: if given, only peers whose certificate's common
            name is in it may link.
    """

    certfile: str
    keyfile: str
    cafile: str
    allowed_subjects: frozenset[str] | None = None

    def contexts(self) -> tuple[Any, Any]:
        """The (server, client) SSL contexts: TLS 1.2+, certificates required both ways."""
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        for ctx in (server, client):
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(self.certfile, self.keyfile)
            ctx.load_verify_locations(self.cafile)
            ctx.verify_mode = ssl.CERT_REQUIRED
        # Node names are not host names: the CA and the subject allow-list
        # say who may link, not DNS.
        client.check_hostname = False
        return server, client


def common_name(cert: dict[str, Any] | None) -> str | None:
    """The subject's common name of a certificate as ``getpeercert()`` gives it."""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def tls_wrapper(config: TlsConfig) -> Callable[[Any, bool], Any]:
    """The ``wrap_socket(sock, server_side)`` hook for :class:`~joerl.node.connection.LinkConfig`.

    Raises (from the hook):
        HandshakeError: the TLS handshake failed (a plaintext peer, a
            certificate the CA did not sign, ...).
        CertificateRefused: the peer's subject is not in ``allowed_subjects``.
    """
    server, client = config.contexts()
    allowed = config.allowed_subjects

    def wrap(sock: Any, server_side: bool) -> Any:
        try:
            if server_side:
                tls = server.wrap_socket(sock, server_side=True)
            else:
                tls = client.wrap_socket(sock)
        except (ssl.SSLError, OSError) as exc:
            raise HandshakeError(f"TLS handshake failed: {exc}") from None
        if allowed is not None:
            subject = common_name(tls.getpeercert())
            if subject not in allowed:
                tls.close()
                raise CertificateRefused(subject)
        return tls

    return wrap
