"""Authenticated registrations at a shared port mapper: the cookie's HMAC (sans-IO).

One port mapper may serve a whole cluster (``joerl-epmd --shared``): nodes on
other hosts register with it. Such a remote registration must prove that its
sender knows the cluster's cookie, so that a stranger who reaches the port
can neither claim a name nor point one elsewhere. Wire layout, on the
registration's connection (joerl's extension, :mod:`._ext`)::

    -> {op: challenge}                      <- {op: challenge, nonce: bin(16)}
    -> {op: register, ..., auth: bin(32)}   <- {op: registered, node} | {op: error, code: auth_failed}

``auth`` is HMAC-SHA256 keyed with the cookie over :func:`register_message`:
the nonce, the name, the host and the port. The nonce is the daemon's, fresh
for the connection and good for one attempt, so a recorded registration cannot
be replayed. What follows on that connection (keep-alives, unregistration) is
the registration's own: only the connection that registered a name may
unregister it. Loopback peers (the daemon's own host) need no HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

__all__ = ["MAC_BYTES", "NONCE_BYTES", "register_mac", "register_message", "verify_register_mac"]

NONCE_BYTES = 16
MAC_BYTES = 32
_DOMAIN = b"joerl-epmd register v1\x00"


def register_message(nonce: bytes, name: str, host: str, port: int) -> bytes:
    """The bytes a registration's HMAC covers: a fixed tag, the nonce, name, host and port."""
    name_b, host_b = name.encode("utf-8"), host.encode("utf-8", "surrogatepass")
    return (
        _DOMAIN
        + struct.pack(">H", len(nonce))
        + nonce
        + struct.pack(">H", len(name_b))
        + name_b
        + struct.pack(">H", len(host_b))
        + host_b
        + struct.pack(">H", port & 0xFFFF)
    )


def register_mac(cookie: bytes, nonce: bytes, name: str, host: str, port: int) -> bytes:
    """The ``auth`` field of a registration: HMAC-SHA256(cookie, :func:`register_message`)."""
    return hmac.new(cookie, register_message(nonce, name, host, port), hashlib.sha256).digest()


def verify_register_mac(cookie: bytes, nonce: bytes, name: str, host: str, port: int, mac: bytes) -> bool:
    """Whether ``mac`` is the registration's HMAC (compared in constant time)."""
    return hmac.compare_digest(register_mac(cookie, nonce, name, host, port), mac)
