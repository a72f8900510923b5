"""The link handshake engine (sans-IO): the exchange, the challenges, the MACs.

Wire layout (the messages are ``hello.py``'s, ``Len:16 | msgpack map``)::

    initiator I (dials)                              acceptor A (listens)
    HELLO_I                                     -->
                                                <--  STATUS (ok, ok_simultaneous, or a refusal)
                                                <--  HELLO_A (only after ok / ok_simultaneous)
    REPLY {mac: MAC_I}  (or ABORT)              -->
                                                <--  ACK {mac: MAC_A}  (or ABORT)

    MAC_x = HMAC-SHA256(cookie, LABEL_x + HELLO_I + HELLO_A), each hello as sent
    LABEL_I = b"joerl-dist initiator\\0", LABEL_A = b"joerl-dist acceptor\\0"

This module owns that exchange: :class:`Handshake`, one engine for either
:class:`Role`, fed bytes and returning :class:`HelloReceived` (the node
decides: ``accept`` / ``refuse``) and :class:`Established` events, with the
bytes to send in ``data_to_send()``. The fields, flags and statuses are
``hello.py``'s; the full specification is ``joerl/node/protocol.py``'s
docstring. Opens no socket, imports no gevent; import these names from
:mod:`joerl.node.protocol`.
"""

from __future__ import annotations

import enum
import hmac
import os
from collections.abc import Callable
from hashlib import sha256
from typing import Any, NamedTuple, cast

from .._describe import describe as _describe
from ..errors import AuthenticationError, HandshakeProtocolError, HandshakeRefused, LocalProtocolError, version_mismatch
from .compression import check_offer
from .frames import DEFAULT_MAX_FRAME_SIZE
from .hello import (
    CHALLENGE_MAX,
    CHALLENGE_MIN,
    DEFAULT_CHALLENGE_SIZE,
    DEFAULT_TICK_MS,
    MIN_MAX_FRAME_SIZE,
    MIN_PROTOCOL_VERSION,
    OK_STATUSES,
    PROTOCOL_VERSION,
    REFUSALS,
    STATUS_AUTH_FAILED,
    STATUS_ID_COLLISION,
    STATUS_NOK,
    STATUS_NOT_ALLOWED,
    STATUS_OK,
    STATUS_OK_SIMULTANEOUS,
    IncompatibleVersion,
    NodeIdentity,
    PeerHello,
    dial_survives,
    mac_field,
    next_message,
    pack_message,
    parse_hello,
    peer_versions,
    refusal_error,
    status_fields,
)
from .messages import U32, is_uint

__all__ = [
    "Established",
    "Handshake",
    "HandshakeEvent",
    "HandshakeState",
    "HelloReceived",
    "Role",
]

_LABEL_INITIATOR = b"joerl-dist initiator\x00"
_LABEL_ACCEPTOR = b"joerl-dist acceptor\x00"


class Role(enum.Enum):
    """Which end of the link: the one that dialled, or the one that listened."""

    INITIATOR = "initiator"
    ACCEPTOR = "acceptor"


class HandshakeState(enum.Enum):
    """Where a :class:`Handshake` is."""

    AWAIT_HELLO = "await_hello"  # acceptor: waiting for HELLO_I
    AWAIT_STATUS = "await_status"  # initiator: HELLO_I sent
    AWAIT_PEER_HELLO = "await_peer_hello"  # initiator: status ok, waiting for HELLO_A
    AWAIT_DECISION = "await_decision"  # HelloReceived returned: call accept() or refuse()
    AWAIT_REPLY = "await_reply"  # acceptor: status + HELLO_A sent
    AWAIT_ACK = "await_ack"  # initiator: REPLY sent
    DONE = "done"  # Established returned
    CLOSED = "closed"  # refused or failed; send data_to_send(), then close


class HelloReceived(NamedTuple):
    """The peer's HELLO passed the built-in checks: decide with ``accept``/``refuse``."""

    peer: PeerHello


class Established(NamedTuple):
    """The handshake succeeded.

    Attributes:
        peer: the peer's HELLO.
        version: the protocol version in use.
        flags: the capabilities in use (both sides' flags ANDed).
        status: ``ok`` or ``ok_simultaneous``.
        leftover: bytes received after the handshake: link frames, feed them
            to the :class:`FrameDecoder` first.
    """

    peer: PeerHello
    version: int
    flags: int
    status: str
    leftover: bytes


HandshakeEvent = HelloReceived | Established


class Handshake:
    """The handshake engine for one connection, for either role.

    Feed it the bytes received (:meth:`feed`), send what :meth:`data_to_send`
    returns, and answer :class:`HelloReceived` with :meth:`accept` or
    :meth:`refuse`. The initiator's HELLO is ready in ``data_to_send()`` as
    soon as it is constructed. When ``feed`` raises, or after ``refuse``, send
    ``data_to_send()`` (the refusal, if any) and close the connection.

    Built-in checks, made before :class:`HelloReceived`: the versions overlap;
    the peer's name differs from ours (and, for the initiator, equals
    ``expected_peer`` when given); its id differs from ours; it offers every
    flag in ``mandatory_flags``. A failed check refuses the link and raises
    :class:`HandshakeRefused`. Checks that need the node's tables (another
    peer with the same id, a link already up, a dial in progress) are the
    caller's, through ``accept``/``refuse``.

    Args:
        role: ``Role.INITIATOR`` (dialled) or ``Role.ACCEPTOR`` (listened).
        local: who we are.
        cookie: the shared secret (str is UTF-8 encoded); never sent.
        expected_peer: the initiator's idea of whom it dialled.
        tick_ms: our tick time, announced so the peer ticks often enough.
        max_frame_size: the largest frame body we accept, announced.
        mandatory_flags: flags the peer must offer.
        version: the highest protocol version we speak.
        min_version: the lowest we accept.
        random_bytes: source of the challenge (injected for byte-vector tests).
        challenge_size: challenge length, 16..64 bytes.
        compression: the frame codecs we accept, announced (``compress``; empty: none).

    Raises:
        ValueError: an argument is invalid (empty cookie, bad sizes).
    """

    def __init__(
        self,
        role: Role,
        local: NodeIdentity,
        cookie: bytes | str,
        *,
        expected_peer: str | None = None,
        tick_ms: int = DEFAULT_TICK_MS,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        mandatory_flags: int = 0,
        version: int = PROTOCOL_VERSION,
        min_version: int = MIN_PROTOCOL_VERSION,
        random_bytes: Callable[[int], bytes] = os.urandom,
        challenge_size: int = DEFAULT_CHALLENGE_SIZE,
        compression: tuple[str, ...] = (),
    ) -> None:
        if not isinstance(role, Role):
            raise ValueError(f"role must be a Role, got {_describe(role)}")
        key = cookie.encode("utf-8") if isinstance(cookie, str) else bytes(cookie)
        if not key:
            raise ValueError("the cookie must not be empty")
        if not is_uint(tick_ms, U32):
            raise ValueError(f"tick_ms must be an int in 0..{U32}, got {_describe(tick_ms)}")
        if not (is_uint(max_frame_size, U32) and max_frame_size >= MIN_MAX_FRAME_SIZE):
            raise ValueError(
                f"max_frame_size must be an int in {MIN_MAX_FRAME_SIZE}..{U32}, got {_describe(max_frame_size)}"
            )
        if not 1 <= min_version <= version:
            raise ValueError(f"need 1 <= min_version <= version, got {min_version}..{version}")
        if not CHALLENGE_MIN <= challenge_size <= CHALLENGE_MAX:
            raise ValueError(f"challenge_size must be {CHALLENGE_MIN}..{CHALLENGE_MAX}, got {challenge_size}")
        challenge = bytes(random_bytes(challenge_size))
        if len(challenge) != challenge_size:
            raise ValueError(f"random_bytes({challenge_size}) returned {len(challenge)} bytes")
        self.role = role
        self.local = local
        self.expected_peer = expected_peer
        self.mandatory_flags = mandatory_flags
        self.version = version
        self.min_version = min_version
        #: The peer's HELLO once received.
        self.peer: PeerHello | None = None
        #: The status sent (acceptor) or received (initiator).
        self.status: str | None = None
        self._key = key
        self._in = bytearray()
        self._out = bytearray()
        self._hello = pack_message(
            {
                "t": "hello",
                "v": version,
                "vmin": min_version,
                "name": local.name,
                "id": local.node_id,
                "creation": local.creation,
                "incarnation": local.incarnation,
                "flags": local.flags,
                "challenge": challenge,
                "tick_ms": tick_ms,
                "max_frame": max_frame_size,
                **({"compress": list(check_offer(compression))} if compression else {}),
            }
        )
        self._peer_hello_raw = b""
        if role is Role.INITIATOR:
            self._out += self._hello
            self.state = HandshakeState.AWAIT_STATUS
        else:
            self.state = HandshakeState.AWAIT_HELLO

    # -- public API ----------------------------------------------------------

    def data_to_send(self) -> bytes:
        """The bytes to write to the peer now (and forget them)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def feed(self, data: bytes) -> list[HandshakeEvent]:
        """Take bytes received from the peer; return the events they complete.

        Processing stops at :class:`HelloReceived` (answer it, then call
        ``feed(b"")`` to go on with anything buffered) and at
        :class:`Established`, whose ``leftover`` holds the bytes after the
        handshake.

        Raises:
            HandshakeProtocolError: the peer sent something malformed or unexpected.
            HandshakeRefused: the link was refused (by the peer, or by a built-in check).
            AuthenticationError: a MAC did not match (different cookies), or the
                peer said ours did not.
            LocalProtocolError: the handshake is already over.
        """
        if self.state in (HandshakeState.DONE, HandshakeState.CLOSED):
            raise LocalProtocolError(f"handshake is {self.state.value}; it takes no more bytes")
        self._in += data
        events: list[HandshakeEvent] = []
        if self.state is HandshakeState.AWAIT_DECISION:
            return events
        try:
            while True:
                item = next_message(self._in)
                if item is None:
                    break
                event = self._handle(*item)
                state = cast(HandshakeState, self.state)  # (which _handle changed)
                if state is HandshakeState.DONE:
                    assert self.peer is not None and self.status is not None
                    leftover = bytes(self._in)
                    self._in.clear()
                    common = self.local.flags & self.peer.flags
                    version = min(self.version, self.peer.version)
                    events.append(Established(self.peer, version, common, self.status, leftover))
                    break
                if event is not None:
                    events.append(event)
                if state is HandshakeState.AWAIT_DECISION:
                    break
        except BaseException:
            self.state = HandshakeState.CLOSED
            raise
        return events

    def accept(self, *, dialing: bool = False) -> str:
        """Go on after :class:`HelloReceived`; return the status that results.

        Args:
            dialing: (acceptor only) we are dialling this peer ourselves. The
                tie-break (:func:`dial_survives`) then answers ``nok`` when our
                dial wins (this handshake ends: state CLOSED; keep our dial) or
                ``ok_simultaneous`` (go on; give our own dial up).

        Raises:
            LocalProtocolError: no decision is pending, or ``dialing`` on the initiator.
        """
        peer = self._pending_decision()
        if self.role is Role.INITIATOR:
            if dialing:
                raise LocalProtocolError("dialing=True only makes sense for the acceptor")
            self._send({"t": "reply", "mac": self._mac(_LABEL_INITIATOR)})
            self.state = HandshakeState.AWAIT_ACK
            return self.status or STATUS_OK
        if dialing and dial_survives(self.local.name, peer.name):
            self.status = STATUS_NOK
            self._send({"t": "status", "status": STATUS_NOK, "reason": "simultaneous connect: my dial survives"})
            self.state = HandshakeState.CLOSED
            return STATUS_NOK
        self.status = STATUS_OK_SIMULTANEOUS if dialing else STATUS_OK
        self._send({"t": "status", "status": self.status, "reason": ""})
        self._out += self._hello
        self.state = HandshakeState.AWAIT_REPLY
        return self.status

    def refuse(self, status: str, reason: str = "") -> None:
        """Refuse the peer after :class:`HelloReceived`; the handshake is CLOSED.

        Args:
            status: ``busy``, ``not_allowed`` or ``id_collision`` (``nok`` comes
                from ``accept(dialing=True)``).
            reason: a short explanation, sent to the peer for its logs.

        Raises:
            LocalProtocolError: no decision is pending, or an unknown status.
        """
        self._pending_decision()
        if status not in REFUSALS or status == STATUS_NOK:
            raise LocalProtocolError(f"cannot refuse with status {_describe(status)}")
        self._refuse(status, reason)

    # -- internals -----------------------------------------------------------

    def _pending_decision(self) -> PeerHello:
        if self.state is not HandshakeState.AWAIT_DECISION or self.peer is None:
            raise LocalProtocolError(f"no decision is pending (state {self.state.value})")
        return self.peer

    def _refuse(self, status: str, reason: str, **extra: Any) -> None:
        if self.role is Role.ACCEPTOR and self.state in (HandshakeState.AWAIT_HELLO, HandshakeState.AWAIT_DECISION):
            self._send({"t": "status", "status": status, "reason": reason, **extra})
        else:
            self._send({"t": "abort", "status": status, "reason": reason, **extra})
        self.status = status
        self.state = HandshakeState.CLOSED

    def _send(self, body: dict[str, Any]) -> None:
        self._out += pack_message(body)

    def _refused_by_peer(self, msg: dict[str, Any], peer_name: str | None) -> HandshakeRefused:
        status, reason = status_fields(msg)
        theirs = peer_versions(msg) if status == STATUS_NOT_ALLOWED else None
        if theirs is not None:
            return IncompatibleVersion((self.min_version, self.version), theirs, peer=peer_name, by_peer=True)
        return refusal_error(status, reason, peer_name, by_peer=True)

    def _mac(self, label: bytes) -> bytes:
        if self.role is Role.INITIATOR:
            transcript = self._hello + self._peer_hello_raw
        else:
            transcript = self._peer_hello_raw + self._hello
        return hmac.new(self._key, label + transcript, sha256).digest()

    def _handle(self, raw: bytes, msg: dict[str, Any]) -> HandshakeEvent | None:
        kind = msg["t"]
        state = self.state
        peer_name = self.peer.name if self.peer else self.expected_peer
        if kind == "abort" and state in (HandshakeState.AWAIT_REPLY, HandshakeState.AWAIT_ACK):
            status, reason = status_fields(msg)
            if status == STATUS_AUTH_FAILED:
                raise AuthenticationError(
                    f"node {peer_name!r} refused the link: our cookie does not match its cookie ({reason})"
                )
            raise self._refused_by_peer(msg, peer_name)
        if state is HandshakeState.AWAIT_HELLO and kind == "hello":
            return self._on_hello(raw, msg)
        if state is HandshakeState.AWAIT_STATUS and kind == "status":
            status, reason = status_fields(msg)
            if status not in OK_STATUSES:
                if status not in REFUSALS:
                    raise HandshakeProtocolError(f"unknown handshake status {_describe(status)}")
                raise self._refused_by_peer(msg, peer_name)
            self.status = status
            self.state = HandshakeState.AWAIT_PEER_HELLO
            return None
        if state is HandshakeState.AWAIT_PEER_HELLO and kind == "hello":
            return self._on_hello(raw, msg)
        if state is HandshakeState.AWAIT_REPLY and kind == "reply":
            if not hmac.compare_digest(mac_field(msg), self._mac(_LABEL_INITIATOR)):
                self._refuse(STATUS_AUTH_FAILED, "challenge reply does not match: different cookies")
                raise AuthenticationError(
                    f"node {peer_name!r} failed the cookie challenge: its cookie differs from ours; link refused"
                )
            self._send({"t": "ack", "mac": self._mac(_LABEL_ACCEPTOR)})
            self.state = HandshakeState.DONE
            return None
        if state is HandshakeState.AWAIT_ACK and kind == "ack":
            if not hmac.compare_digest(mac_field(msg), self._mac(_LABEL_ACCEPTOR)):
                raise AuthenticationError(
                    f"node {peer_name!r} failed the cookie challenge: its cookie differs from ours; link refused"
                )
            self.state = HandshakeState.DONE
            return None
        raise HandshakeProtocolError(f"unexpected handshake message {_describe(kind)} in state {state.value}")

    def _on_hello(self, raw: bytes, msg: dict[str, Any]) -> HandshakeEvent:
        peer = parse_hello(msg)
        self.peer = peer
        self._peer_hello_raw = raw
        local = self.local
        problem: tuple[str, str] | None = None
        version = min(self.version, peer.version)
        if version < max(self.min_version, peer.min_version):
            ours, theirs = (self.min_version, self.version), (peer.min_version, peer.version)
            self._refuse(STATUS_NOT_ALLOWED, version_mismatch(theirs, ours, local.name), versions=list(ours))
            raise IncompatibleVersion(ours, theirs, peer=peer.name, by_peer=False)
        if peer.name == local.name:
            problem = (STATUS_NOT_ALLOWED, f"the peer has this node's own name {local.name!r}")
        elif self.role is Role.INITIATOR and self.expected_peer is not None and peer.name != self.expected_peer:
            problem = (STATUS_NOT_ALLOWED, f"dialled {self.expected_peer!r} but {peer.name!r} answered")
        elif peer.node_id == local.node_id:
            problem = (
                STATUS_ID_COLLISION,
                f"node id {peer.node_id:#010x} of {peer.name!r} equals that of {local.name!r}: rename one of them",
            )
        elif peer.flags & self.mandatory_flags != self.mandatory_flags:
            missing = self.mandatory_flags & ~peer.flags
            problem = (STATUS_NOT_ALLOWED, f"the peer lacks mandatory capability flags {missing:#x}")
        if problem is not None:
            self._refuse(*problem)
            raise refusal_error(problem[0], problem[1], peer.name, by_peer=False)
        self.state = HandshakeState.AWAIT_DECISION
        return HelloReceived(peer)
