"""Setting a node link up: the handshake over a socket, within a deadline.

This module turns a socket into a :class:`~joerl.node.connection.Connection`:
:func:`dial` connects to a peer's listener and :func:`accept_handshake` takes
over an accepted socket; both tune the socket, apply the TLS hook
(``LinkConfig.wrap_socket``) and run the sans-IO
:class:`~joerl.node.protocol.Handshake` (``recv -> feed -> decide -> send``)
until it is established, refused or out of time (``handshake_timeout``). The
node's tables answer each peer HELLO through ``decide``. :class:`Backoff`
spaces reconnection attempts. The wire layout of the handshake is in the
docstring of ``protocol.py``; the running link is ``connection.py``.

Typical use by a node::

    conn = dial(("127.0.0.1", port), identity, cookie, expected_peer="b",
                config=cfg, decide=node.check_hello, handler=node.on_message,
                on_closed=node.on_link_closed)
    node.register(conn)          # before start(): no message arrives before it
    conn.start()

On the listening side, a ``StreamServer`` handler calls :func:`accept_handshake`,
registers and starts the connection, then blocks in ``conn.wait_closed()``
(gevent closes the socket when the handler returns).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket as _stdsocket
from collections.abc import Callable, Hashable
from time import monotonic
from typing import Any

import gevent
from gevent import socket as gsocket

from ..errors import AuthenticationError, HandshakeError, LocalProtocolError, NodeUnreachable
from ..ratelimit import KeyedBuckets
from .connection import ClosedCallback, Connection, Handler, LinkConfig
from .protocol import (
    ACCEPT,
    DIALING,
    STATUS_BUSY,
    STATUS_NOK,
    STATUS_NOT_ALLOWED,
    STATUS_OK,
    Established,
    Handshake,
    HandshakeRefused,
    NodeIdentity,
    PeerHello,
    Role,
    SimultaneousConnect,
    Verdict,
    refusal_error,
)

__all__ = [
    "DEFAULT_FAILURE_LOG",
    "FailureLog",
    "accept_handshake",
    "dial",
]

log = logging.getLogger(__name__)

_HANDSHAKE_RECV = 4096

#: ``decide(peer_hello) -> Verdict``: the node's answer to a peer's HELLO.
Decide = Callable[[PeerHello], Verdict]
#: ``check_peer_name(sock, name)``: a TLS hook's check that the peer's
#: certificate binds the name its HELLO claims (raises a HandshakeError).
NameCheck = Callable[[Any, str], None]


def _tune(sock: Any) -> None:
    try:
        sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # pragma: no cover - not TCP (a socketpair in tests)
        pass


def _connect_tcp(host: str, port: int) -> Any:
    """A TCP connection to ``(host, port)``; an IP literal skips the resolver.

    gevent resolves a name in a thread pool, even an IP literal: the first
    dial of a node then imports the resolver and starts the pool, and every
    dial waits for a thread. A node meshing with 79 others at once spent most
    of its time to full mesh there, not in the handshakes.
    """
    try:
        family = _stdsocket.AF_INET6 if ipaddress.ip_address(host).version == 6 else _stdsocket.AF_INET
    except ValueError:
        return gsocket.create_connection((host, port))
    sock = gsocket.socket(family, _stdsocket.SOCK_STREAM)
    try:
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _flush(sock: Any, hs: Handshake) -> None:
    out = hs.data_to_send()
    if out:
        sock.sendall(out)


def _flush_quietly(sock: Any, hs: Handshake) -> None:
    try:
        _flush(sock, hs)
    except OSError:
        pass


def _apply_verdict(hs: Handshake, verdict: Verdict, sock: Any) -> None:
    peer = hs.peer
    assert peer is not None
    if verdict.status == STATUS_OK:
        hs.accept()
        return
    if verdict.status == DIALING.status:
        if hs.accept(dialing=True) == STATUS_NOK:
            _flush_quietly(sock, hs)
            raise SimultaneousConnect(
                STATUS_NOK, "simultaneous connect: this node's own dial survives", peer=peer.name, by_peer=False
            )
        return
    try:
        hs.refuse(verdict.status, verdict.reason)
    except LocalProtocolError as exc:
        raise ValueError(f"decide() returned an invalid verdict {verdict!r}: {exc}") from None
    _flush_quietly(sock, hs)
    raise refusal_error(verdict.status, verdict.reason, peer.name, by_peer=False)


def _check_name(sock: Any, hs: Handshake, check: NameCheck | None, name: str) -> None:
    """The TLS hook's name binding: refuse a peer whose certificate does not name it."""
    if check is None:
        return
    try:
        check(sock, name)
    except HandshakeError as exc:
        hs.refuse(STATUS_NOT_ALLOWED, "this node's certificate does not bind the name it claims")
        _flush_quietly(sock, hs)
        raise exc from None


def _run_handshake(
    sock: Any, hs: Handshake, decide: Decide | None, who: str, check: NameCheck | None = None
) -> Established:
    """Drive ``hs`` over ``sock`` until it is established (or raise)."""
    try:
        _flush(sock, hs)
        refeed = False
        while True:
            if refeed:
                data = b""
            else:
                data = sock.recv(_HANDSHAKE_RECV)
                if not data:
                    raise HandshakeError(f"{who} closed the connection during the handshake (state {hs.state.value})")
            refeed = False
            try:
                events = hs.feed(data)
            except HandshakeError:
                _flush_quietly(sock, hs)
                raise
            for event in events:
                if event.__class__ is Established:
                    _flush(sock, hs)
                    return event
                _check_name(sock, hs, check, event.peer.name)
                verdict = decide(event.peer) if decide is not None else ACCEPT
                _apply_verdict(hs, verdict, sock)
                refeed = True
            _flush(sock, hs)
    except OSError as exc:
        raise HandshakeError(f"connection to {who} broke during the handshake: {exc}") from None


class FailureLog:
    """Rate limits the warnings of failed handshakes: one line per peer address per ``interval``.

    A client that is not a joerl node (an Erlang node, a port scanner,
    garbage) may dial again and again: each refusal is a warning, but only
    the first of each ``interval`` per address is logged; the next line says
    how many were left out meanwhile. One per node (the node's links share it).

    Args:
        interval: seconds between two lines about the same address.
        max_keys: addresses remembered at once (idle ones are forgotten first).
        clock: monotonic seconds (injected in tests).
    """

    def __init__(self, interval: float = 10.0, max_keys: int = 4096, clock: Callable[[], float] = monotonic) -> None:
        self.interval = interval
        self._buckets = KeyedBuckets(1.0 / interval, 1.0, max_keys, clock)
        self._left_out: dict[Hashable, int] = {}
        self._max_keys = max_keys

    def allow(self, key: Hashable) -> int | None:
        """May a line about ``key`` be logged now? The count left out since
        the last one (0 or more) if so, else None (counted)."""
        if self._buckets.take(key):
            return self._left_out.pop(key, 0)
        if len(self._left_out) >= self._max_keys and key not in self._left_out:
            self._left_out.clear()  # (bounded: counts of idle addresses are lost, not the lines)
        self._left_out[key] = self._left_out.get(key, 0) + 1
        return None


#: Used by :func:`dial` and :func:`accept_handshake` when given no ``failure_log``.
DEFAULT_FAILURE_LOG = FailureLog()


def _log_failure(local: NodeIdentity, who: str, exc: BaseException, host: Any, failures: FailureLog) -> None:
    if isinstance(exc, SimultaneousConnect) or (isinstance(exc, HandshakeRefused) and exc.status == STATUS_BUSY):
        log.debug("node %s: no link with %s from this connection: %s", local.name, who, exc)
        return
    left_out = failures.allow((local.name, host))
    if left_out is None:
        return
    more = f" ({left_out} more from {host} in the last {failures.interval:.0f}s were not logged)" if left_out else ""
    if isinstance(exc, AuthenticationError):  # a wrong cookie: a configuration error, shown by default
        log.error("node %s refused the link with %s: %s%s", local.name, who, exc, more)
    elif str(exc).startswith("TLS handshake failed"):
        log.error("node %s: handshake with %s failed: %s%s", local.name, who, exc, more)
    else:
        log.warning("node %s: handshake with %s failed: %s%s", local.name, who, exc, more)


def _handshake(
    sock: Any,
    hs: Handshake,
    config: LinkConfig,
    decide: Decide | None,
    who: str,
    connect: Callable[[], Any] | None,
) -> tuple[Any, Established]:
    timer = gevent.Timeout(config.handshake_timeout)
    timer.start()
    try:
        if connect is not None:
            sock = connect()
        _tune(sock)
        check: NameCheck | None = None
        if config.wrap_socket is not None:
            sock = config.wrap_socket(sock, hs.role is Role.ACCEPTOR)
            check = getattr(config.wrap_socket, "check_peer_name", None)
        established = _run_handshake(sock, hs, decide, who, check)
        sock.settimeout(None)
        return sock, established
    except gevent.Timeout as t:
        if t is not timer:
            raise
        _close_quietly(sock)
        raise HandshakeError(
            f"handshake with {who} did not complete within {config.handshake_timeout}s (state {hs.state.value})"
        ) from None
    except BaseException:
        _close_quietly(sock)
        raise
    finally:
        timer.close()


def _close_quietly(sock: Any) -> None:
    if sock is not None:
        try:
            sock.close()
        except OSError:  # pragma: no cover
            pass


def _new_handshake(
    role: Role,
    local: NodeIdentity,
    cookie: bytes | str,
    config: LinkConfig,
    expected_peer: str | None,
    random_bytes: Callable[[int], bytes],
) -> Handshake:
    return Handshake(
        role,
        local,
        cookie,
        expected_peer=expected_peer,
        tick_ms=int(config.tick_time * 1000),
        max_frame_size=config.max_frame_size,
        mandatory_flags=config.mandatory_flags,
        random_bytes=random_bytes,
        compression=config.compression,
    )


def dial(
    address: tuple[str, int],
    local: NodeIdentity,
    cookie: bytes | str,
    *,
    expected_peer: str | None = None,
    config: LinkConfig | None = None,
    decide: Decide | None = None,
    handler: Handler | None = None,
    on_closed: ClosedCallback | None = None,
    random_bytes: Callable[[int], bytes] = os.urandom,
    failure_log: FailureLog | None = None,
) -> Connection:
    """Connect to a node and run the handshake as the initiator.

    Connect and handshake together must finish within
    ``config.handshake_timeout``.

    Args:
        address: ``(host, port)`` of the peer's listener.
        local: our identity.
        cookie: the shared secret.
        expected_peer: the name we mean to reach; another name answering is refused.
        config: link settings.
        decide: ``decide(peer_hello) -> Verdict`` once the peer's HELLO has
            passed the built-in checks: ``ACCEPT``, or ``Verdict.refuse(
            "id_collision" | "not_allowed" | "busy", reason)`` (e.g. its id is
            that of another linked node). None accepts.
        handler, on_closed: passed to the :class:`Connection`.
        random_bytes: source of the challenge.
        failure_log: rate limits the warning of a failure (default:
            :data:`DEFAULT_FAILURE_LOG`).

    Returns:
        A :class:`Connection`, not started.

    Raises:
        NodeUnreachable: the TCP connect failed.
        SimultaneousConnect: the peer was dialling us too and its dial wins:
            expect its connection instead (not an error).
        HandshakeRefused: refused (``busy``: the peer has a link or handshake
            with our name already; ``not_allowed``; ``id_collision`` as
            :class:`~joerl.node.protocol.NodeIdCollision`), by it or by us.
        AuthenticationError: the cookies differ.
        HandshakeError: timeout, connection lost, or a protocol violation
            (:class:`~joerl.node.protocol.HandshakeProtocolError`).
    """
    config = config or LinkConfig()
    host, port = address[0], address[1]
    who = f"node {expected_peer!r} at {host}:{port}" if expected_peer else f"node at {host}:{port}"
    hs = _new_handshake(Role.INITIATOR, local, cookie, config, expected_peer, random_bytes)

    def connect() -> Any:
        try:
            return _connect_tcp(host, port)
        except OSError as exc:
            raise NodeUnreachable(
                expected_peer or f"{host}:{port}", f"cannot connect to {host}:{port}: {exc}"
            ) from None

    try:
        sock, established = _handshake(None, hs, config, decide, who, connect)
    except (HandshakeError, NodeUnreachable) as exc:
        _log_failure(local, who, exc, host, failure_log or DEFAULT_FAILURE_LOG)
        raise
    log.info("node %s linked to %s (%s, creation %d)", local.name, who, established.status, established.peer.creation)
    return Connection(sock, local, established, Role.INITIATOR, config, handler=handler, on_closed=on_closed)


def accept_handshake(
    sock: Any,
    local: NodeIdentity,
    cookie: bytes | str,
    *,
    config: LinkConfig | None = None,
    decide: Decide | None = None,
    handler: Handler | None = None,
    on_closed: ClosedCallback | None = None,
    random_bytes: Callable[[int], bytes] = os.urandom,
    address: Any = None,
    failure_log: FailureLog | None = None,
) -> Connection:
    """Run the handshake as the acceptor on an accepted socket (which this takes over).

    Must finish within ``config.handshake_timeout``. On failure the socket is
    closed and the refusal logged.

    Args:
        sock: the accepted socket (a StreamServer handler's first argument).
        local: our identity.
        cookie: the shared secret.
        config: link settings.
        decide: ``decide(peer_hello) -> Verdict``, the node's tables speaking:
            ``ACCEPT``; ``DIALING`` when the node is dialling that peer itself
            (the tie-break then picks the surviving connection); or
            ``Verdict.refuse(status, reason)``: ``busy`` (a link or handshake
            with that name exists), ``id_collision`` (another linked node has
            that id), ``not_allowed``. None accepts.
        handler, on_closed: passed to the :class:`Connection`.
        random_bytes: source of the challenge.
        address: the peer's address, for messages.
        failure_log: rate limits the warning of a failure, per peer address
            (default: :data:`DEFAULT_FAILURE_LOG`): a client that is not a
            joerl node and dials again and again gets one line per interval.

    Returns:
        A :class:`Connection`, not started. Its ``status`` is
        ``"ok_simultaneous"`` when the node was dialling that peer too and
        must give its own dial up (that dial will fail with ``SimultaneousConnect``).

    Raises:
        SimultaneousConnect: we were dialling the peer too and our dial wins:
            this connection is refused (not an error).
        HandshakeRefused, AuthenticationError, HandshakeError: as :func:`dial`.
    """
    config = config or LinkConfig()
    if address is None:
        try:
            address = sock.getpeername()
        except OSError:
            address = "?"
    who = f"node at {address[0]}:{address[1]}" if isinstance(address, tuple) else f"node at {address}"
    hs = _new_handshake(Role.ACCEPTOR, local, cookie, config, None, random_bytes)
    try:
        sock, established = _handshake(sock, hs, config, decide, who, None)
    except HandshakeError as exc:
        host = address[0] if isinstance(address, tuple) else address
        _log_failure(
            local, f"{hs.peer.name!r} ({who})" if hs.peer else who, exc, host, failure_log or DEFAULT_FAILURE_LOG
        )
        raise
    log.info(
        "node %s accepted a link from %r (%s, creation %d)",
        local.name, established.peer.name, established.status, established.peer.creation,
    )  # fmt: skip
    return Connection(sock, local, established, Role.ACCEPTOR, config, handler=handler, on_closed=on_closed)
