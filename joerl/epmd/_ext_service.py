"""ExtService: the daemon's answers to joerl's extension requests (no IO).

Wire layout: see :mod:`._ext` (``Len:16 | 'J' | msgpack map`` in,
``'J' | Len:32 | msgpack map`` out). This module owns what the daemon
*decides*: who may register (peers on the daemon's own host; others only
with the cookie's HMAC over a nonce of the connection, when the daemon is a
cluster's shared port mapper and knows the cookie, see :mod:`._auth`), the limits on a registration (name, port, host,
extra, metadata size), one registration per connection, keep-alives and
unregistration by the owner only. Every request on a registration's
connection counts as a sign of life (``last_seen``, on the injected clock).
The server sends the bytes it returns.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

import msgpack

from . import protocol as p
from ._table import Holder, NameTable

__all__ = ["EXT_TYPES", "ExtService"]

log = logging.getLogger("joerl.epmd.server")

EXT_TYPES = (p.Register, p.Unregister, p.Lookup, p.ListNodes, p.Ping, p.KeepAlive, p.Challenge, p.UnknownExt)


def _version() -> str:
    try:
        from .. import __version__

        return str(__version__)
    except Exception:  # pragma: no cover - partial installs
        return ""


_KEEPALIVE_ACK = p.KeepAliveAck().encode()
_PONG = p.Pong("joerl-epmd", _version()).encode()


class ExtService:
    """Answers extension requests against one :class:`NameTable`.

    Args:
        table: the daemon's names.
        clock: monotonic seconds, for ``last_seen``.
        cookie: the cluster's cookie: registrations from other hosts that
            carry its HMAC are accepted (a shared port mapper); None: none are.
        max_metadata: largest metadata (bytes of msgpack) in a registration.
    """

    def __init__(
        self, table: NameTable, clock: Callable[[], float], *, cookie: bytes | None, max_metadata: int
    ) -> None:
        self._table = table
        self._clock = clock
        self._cookie = cookie
        self.max_metadata = max_metadata
        #: Remote registrations refused for a missing or wrong HMAC.
        self.auth_failures = 0

    @property
    def shared(self) -> bool:
        """Whether authenticated registrations from other hosts are accepted."""
        return self._cookie is not None

    def answer(self, conn: Holder, req: p.Request) -> bytes:
        """The reply to ``req`` from ``conn`` (any request counts as a sign of life)."""
        entry = conn.entry
        if entry is not None:
            entry.last_seen = self._clock()
        if isinstance(req, p.Lookup):
            e = self._table.get(req.name)
            return p.LookupResult(None if e is None else e.node).encode()
        if isinstance(req, p.KeepAlive):
            if entry is None or (req.name and req.name != entry.node.name):
                return p.ExtError("not_registered", f"{req.name!r} is not registered on this connection").encode()
            return _KEEPALIVE_ACK
        if isinstance(req, p.ListNodes):
            return self._table.list_reply()
        if isinstance(req, p.Ping):
            return _PONG
        if isinstance(req, p.Challenge):
            conn.nonce = secrets.token_bytes(p.NONCE_BYTES)
            return p.ChallengeReply(conn.nonce).encode()
        if isinstance(req, p.Register):
            return self._register(conn, req)
        if isinstance(req, p.Unregister):
            if entry is None or entry.node.name != req.name:
                return p.Unregistered(req.name, False).encode()
            self._table.remove(entry, "unregistered by its owner")
            conn.entry = None
            return p.Unregistered(req.name, True).encode()
        assert isinstance(req, p.UnknownExt)
        return p.ExtError("unknown_op", f"unknown op {req.op!r}").encode()

    def _refuse_remote(self, conn: Holder, req: p.Register) -> bytes | None:
        """Why a registration from another host is refused (None: it is not)."""
        nonce, conn.nonce = conn.nonce, None  # good for one attempt
        if self._cookie is None:
            log.warning("refused register %s from non-local %s", req.name, conn.describe())
            return p.ExtError(
                "not_allowed",
                "this port mapper accepts registrations from its own host only; one port mapper for a "
                "whole cluster runs with --shared and the cluster's cookie (see docs/epmd.md)",
            ).encode()
        if "@" not in req.name:
            return p.ExtError(
                "not_allowed", "a registration from another host names its node in full, name@host"
            ).encode()
        if nonce is None or not req.auth:
            self.auth_failures += 1
            return p.ExtError(
                "auth_failed", "a registration from another host needs a challenge and the cookie's HMAC"
            ).encode()
        if not p.verify_register_mac(self._cookie, nonce, req.name, req.host, req.port, req.auth):
            self.auth_failures += 1
            log.warning("refused register %s from %s: wrong HMAC (another cookie)", req.name, conn.describe())
            return p.ExtError("auth_failed", "the registration's HMAC does not match this cluster's cookie").encode()
        return None

    def _register(self, conn: Holder, req: p.Register) -> bytes:
        if not conn.local:
            refusal = self._refuse_remote(conn, req)
            if refusal is not None:
                return refusal
        if conn.entry is not None:
            return p.ExtError("already_registered", f"this connection already holds {conn.entry.node.name!r}").encode()
        problem = p.name_problem(req.name, host_ok=True)
        if problem:
            return p.ExtError("invalid_name", f"node name {req.name!r} {problem}").encode()
        if not 1 <= req.port <= 0xFFFF:
            return p.ExtError("bad_request", f"port {req.port} is not 1..65535").encode()
        if len(req.host.encode("utf-8", "surrogatepass")) > p.MAX_HOST_BYTES:
            return p.ExtError("too_large", f"host is over {p.MAX_HOST_BYTES} bytes").encode()
        if len(req.extra) > p.MAX_EXTRA:
            return p.ExtError("too_large", f"extra is over {p.MAX_EXTRA} bytes").encode()
        if req.metadata and len(msgpack.packb(req.metadata, use_bin_type=True)) > self.max_metadata:
            return p.ExtError("too_large", f"metadata is over {self.max_metadata} bytes").encode()
        if req.name in self._table:
            log.warning("refused register %s: name in use", req.name)
            return p.ExtError("name_in_use", f"the name {req.name!r} is already registered").encode()
        node = p.NodeInfo(
            req.name,
            req.host,
            req.port,
            req.metadata,
            self._table.next_creation(req.name),
            req.node_type,
            req.protocol,
            req.highest_version,
            req.lowest_version,
            req.extra,
            "joerl",
        )
        self._table.add(node, conn)
        return p.Registered(node).encode()
