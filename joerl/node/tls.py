"""TLS for node links: mutual authentication with certificates, under the cookie.

:func:`tls_wrapper` builds the ``LinkConfig.wrap_socket`` hook a node uses
on every link, right after the TCP connect or accept and before the joerl
handshake: both sides present a certificate signed by the cluster's CA and
verify the other's. A node configured for TLS therefore refuses plaintext
peers (their bytes are not a TLS hello), and a plaintext node fails cleanly
against a TLS one. The cookie handshake then runs inside TLS.

A certificate is bound to the node names it may claim in the handshake
(:func:`certificate_names_node`, on unless ``TlsConfig.bind_names`` is off), so
that a node holding another node's valid certificate cannot join under a name
of its choosing. The rule, for a node name ``alive`` or ``alive@host``:

1. a certificate with URI subject alternative names of the ``joerl-node``
   scheme names exactly those nodes: ``joerl-node://alive@host`` (or
   ``joerl-node://alive`` for a name without a host) must be among them;
2. otherwise, the subject's common name equal to the full node name binds it;
3. otherwise, for ``alive@host``, ``host`` among the certificate's DNS names
   (exact, case-insensitive, no wildcards) or IP addresses binds it: the
   certificate of a host vouches for every node on that host.

An optional allow-list of subjects (common names) further refuses every
other certificate, even one the CA signed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from gevent import ssl

from ..errors import CertificateNameMismatch, CertificateRefused, HandshakeError

__all__ = [
    "URI_SCHEME",
    "CertificateNameMismatch",
    "TlsConfig",
    "TlsWrapper",
    "certificate_names_node",
    "common_name",
    "tls_wrapper",
]

#: The scheme of the URI subject alternative names that name nodes.
URI_SCHEME = "joerl-node://"


@dataclass(frozen=True)
class TlsConfig:
    """Where a node's TLS material lives.

    Args:
        certfile: this node's certificate chain (PEM).
        keyfile: its private key (PEM).
        cafile: the CA certificate(s) that sign every node of the cluster.
        allowed_subjects: if given, only peers whose certificate's common
            name is in it may link.
        bind_names: a peer's certificate must name the node name it claims
            in the handshake (the module's rule); off, any certificate the
            CA signed may claim any name (the behaviour before 0.1).
    """

    certfile: str
    keyfile: str
    cafile: str
    allowed_subjects: frozenset[str] | None = None
    bind_names: bool = True

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


def certificate_names_node(cert: dict[str, Any] | None, name: str) -> bool:
    """Does ``cert`` (as ``getpeercert()`` gives it) bind node name ``name``? See the module's rule."""
    sans = (cert or {}).get("subjectAltName", ())
    uris = [str(v) for k, v in sans if k == "URI" and str(v).lower().startswith(URI_SCHEME)]
    if uris:
        return any(uri[len(URI_SCHEME) :] == name for uri in uris)
    if common_name(cert) == name:
        return True
    alive, at, host = name.partition("@")
    if not (at and alive and host):
        return False
    for kind, value in sans:
        if kind == "DNS" and str(value).lower() == host.lower():
            return True
        if kind == "IP Address" and _same_ip(str(value), host):
            return True
    return False


def _same_ip(value: str, host: str) -> bool:
    try:
        return ipaddress.ip_address(value.strip()) == ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False


def _identities(cert: dict[str, Any] | None) -> tuple[str, ...]:
    return tuple(str(v) for k, v in (cert or {}).get("subjectAltName", ()) if k in ("URI", "DNS", "IP Address"))


class TlsWrapper:
    """The ``LinkConfig.wrap_socket`` hook of a TLS node (see :func:`tls_wrapper`).

    Called as ``wrap(sock, server_side)``; ``link_setup`` also calls
    :meth:`check_peer_name` once the peer's HELLO names it.
    """

    def __init__(self, config: TlsConfig) -> None:
        self._server, self._client = config.contexts()
        self._allowed = config.allowed_subjects
        self.bind_names = config.bind_names

    def __call__(self, sock: Any, server_side: bool) -> Any:
        """TLS over ``sock``, both certificates checked.

        Raises:
            HandshakeError: the TLS handshake failed (a plaintext peer, a
                certificate the CA did not sign, ...).
            CertificateRefused: the peer's subject is not in ``allowed_subjects``.
        """
        try:
            if server_side:
                tls = self._server.wrap_socket(sock, server_side=True)
            else:
                tls = self._client.wrap_socket(sock)
        except (ssl.SSLError, OSError) as exc:
            raise HandshakeError(f"TLS handshake failed: {exc}") from None
        if self._allowed is not None:
            subject = common_name(tls.getpeercert())
            if subject not in self._allowed:
                tls.close()
                raise CertificateRefused(subject)
        return tls

    def check_peer_name(self, sock: Any, name: str) -> None:
        """Check that the peer's certificate binds the node name its HELLO claims.

        Raises:
            CertificateNameMismatch: it does not (and ``bind_names`` is on).
        """
        if not self.bind_names:
            return
        cert = sock.getpeercert()
        if not certificate_names_node(cert, name):
            raise CertificateNameMismatch(name, common_name(cert), _identities(cert))


def tls_wrapper(config: TlsConfig) -> TlsWrapper:
    """The ``wrap_socket(sock, server_side)`` hook for :class:`~joerl.node.connection.LinkConfig`.

    Raises (from the hook):
        HandshakeError: the TLS handshake failed (a plaintext peer, a
            certificate the CA did not sign, ...).
        CertificateRefused: the peer's subject is not in ``allowed_subjects``.
        CertificateNameMismatch: (from ``check_peer_name``, during the joerl
            handshake) the certificate does not name the node the peer claims to be.
    """
    return TlsWrapper(config)
