"""The link handshake engine (sans-IO): names, ids, flags, challenges, MACs.

:class:`Handshake` for either role, the identities it exchanges
(:class:`NodeIdentity`, :class:`PeerHello`), its events and the node's
:class:`Verdict`, the simultaneous-connect rule (:func:`dial_survives`) and
the handshake errors. Opens no socket, imports no gevent. The messages, the
statuses and the MAC are specified in ``joerl/node/protocol.py``'s docstring;
import these names from :mod:`joerl.node.protocol`.
"""

from __future__ import annotations

import enum
import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, NamedTuple

import msgpack

from .._describe import describe as _describe
from ..errors import (
    AuthenticationError,
    HandshakeProtocolError,
    HandshakeRefused,
    LocalProtocolError,
    NodeIdCollision,
    SimultaneousConnect,
)
from .frames import _U32, _U64, DEFAULT_MAX_FRAME_SIZE, _is_uint

__all__ = [
    "ACCEPT",
    "DEFAULT_FLAGS",
    "DEFAULT_TICK_MS",
    "DIALING",
    "Established",
    "Handshake",
    "HandshakeProtocolError",
    "HandshakeRefused",
    "HandshakeState",
    "HelloReceived",
    "NodeIdCollision",
    "NodeIdentity",
    "PeerHello",
    "Role",
    "SimultaneousConnect",
    "Verdict",
    "dial_survives",
    "refusal_error",
]

#: 2: SEND names its pids in a route, and SEND_TERMS (1 was this release's first draft).
PROTOCOL_VERSION = 2
MIN_PROTOCOL_VERSION = 2

#: The smallest ``max_frame`` a HELLO may announce (or ``Handshake`` be given).
MIN_MAX_FRAME_SIZE = 1024
#: Erlang's net_ticktime default: 60 s.
DEFAULT_TICK_MS = 60_000
MAX_HANDSHAKE_FRAME = 4096
MAX_NAME_BYTES = 255
CHALLENGE_MIN, CHALLENGE_MAX = 16, 64
DEFAULT_CHALLENGE_SIZE = 32

# Capability flags (u64). Those in use on a link are the AND of both sides'.
FLAG_PUBLISHED = 0x01  #: a visible node (a later "hidden" node clears it)
FLAG_LINKS = 0x02  #: LINK / UNLINK / EXIT / EXIT2
FLAG_MONITORS = 0x04  #: MONITOR / DEMONITOR / DOWN, by pid or by name
FLAG_SPAWN = 0x08  #: SPAWN_REQUEST / SPAWN_REPLY
FLAG_ALIVE = 0x10  #: ALIVE_REQUEST / ALIVE_REPLY
FLAG_UNLINK_ACK = 0x20  #: UNLINK carries an id answered by UNLINK_ACK
FLAG_CALL_REPLY = 0x40  #: CALL_REPLY
FLAG_SEND_TERMS = 0x80  #: SEND_TERMS
DEFAULT_FLAGS = 0xFF

STATUS_OK = "ok"
STATUS_OK_SIMULTANEOUS = "ok_simultaneous"
STATUS_NOK = "nok"
STATUS_BUSY = "busy"
STATUS_NOT_ALLOWED = "not_allowed"
STATUS_ID_COLLISION = "id_collision"
STATUS_AUTH_FAILED = "auth_failed"  # ABORT only
_OK_STATUSES = frozenset({STATUS_OK, STATUS_OK_SIMULTANEOUS})
_REFUSALS = frozenset({STATUS_NOK, STATUS_BUSY, STATUS_NOT_ALLOWED, STATUS_ID_COLLISION})

_LABEL_INITIATOR = b"joerl-dist initiator\x00"
_LABEL_ACCEPTOR = b"joerl-dist acceptor\x00"

_LEN16 = struct.Struct(">H")


# -- errors ------------------------------------------------------------------
# All subclass the error tree of joerl.errors.


# -- identities and handshake data ---------------------------------------------


def _check_name(name: Any, what: str) -> str | None:
    """The problem with a node name, or None when it is fine."""
    if not isinstance(name, str):
        return f"{what} must be a str, not {type(name).__name__}"
    size = len(name.encode("utf-8", "surrogatepass"))
    if not 1 <= size <= MAX_NAME_BYTES:
        return f"{what} must be 1..{MAX_NAME_BYTES} bytes of UTF-8, got {size}"
    if not name.isprintable():
        return f"{what} {name!r} holds unprintable characters"
    return None


@dataclass(frozen=True)
class NodeIdentity:
    """Who a node says it is in the handshake.

    Args:
        name: the node's name, 1..255 bytes of UTF-8, printable.
        node_id: its 32-bit id, 1..2**32-1 (``joerl.node.config.node_id_of``).
        creation: its incarnation, 0..2**32-1 (from the port mapper).
        flags: the ``FLAG_*`` capabilities it offers.

    Raises:
        ValueError: a field is out of range.
    """

    name: str
    node_id: int
    creation: int = 0
    flags: int = DEFAULT_FLAGS

    def __post_init__(self) -> None:
        problem = _check_name(self.name, "node name")
        if problem:
            raise ValueError(problem)
        if not _is_uint(self.node_id, _U32) or self.node_id == 0:
            raise ValueError(f"node_id must be an int in 1..{_U32}, got {_describe(self.node_id)}")
        if not _is_uint(self.creation, _U32):
            raise ValueError(f"creation must be an int in 0..{_U32}, got {_describe(self.creation)}")
        if not _is_uint(self.flags, _U64):
            raise ValueError(f"flags must be an int in 0..{_U64}, got {_describe(self.flags)}")


@dataclass(frozen=True)
class PeerHello:
    """What the peer announced in its HELLO."""

    name: str
    node_id: int
    creation: int
    flags: int
    version: int
    tick_ms: int
    max_frame: int


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


class Verdict(NamedTuple):
    """A node's answer to :class:`HelloReceived` (used by ``link_setup.py``).

    ``status`` is ``"ok"`` (:data:`ACCEPT`), ``"dialing"`` (:data:`DIALING`:
    the acceptor is dialling that peer too, apply the tie-break) or a refusal
    status (``busy``, ``not_allowed``, ``id_collision``) with a ``reason``.
    """

    status: str
    reason: str = ""

    @classmethod
    def refuse(cls, status: str, reason: str = "") -> Verdict:
        """A refusal with its explanation."""
        return cls(status, reason)


ACCEPT = Verdict(STATUS_OK)
DIALING = Verdict("dialing")


def dial_survives(local_name: str, peer_name: str) -> bool:
    """The simultaneous-connect rule: True when ``local_name``'s dial wins.

    The node with the greater name (UTF-8 bytes compared) keeps its dial.
    """
    return local_name.encode("utf-8", "surrogatepass") > peer_name.encode("utf-8", "surrogatepass")


def refusal_error(status: str, reason: str, peer: str | None, by_peer: bool) -> HandshakeRefused:
    """The exception for a refusal: :class:`SimultaneousConnect` for ``nok``,
    :class:`NodeIdCollision` for ``id_collision``, else :class:`HandshakeRefused`."""
    cls = {STATUS_NOK: SimultaneousConnect, STATUS_ID_COLLISION: NodeIdCollision}.get(status, HandshakeRefused)
    return cls(status, reason, peer=peer, by_peer=by_peer)


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
    ) -> None:
        if not isinstance(role, Role):
            raise ValueError(f"role must be a Role, got {_describe(role)}")
        key = cookie.encode("utf-8") if isinstance(cookie, str) else bytes(cookie)
        if not key:
            raise ValueError("the cookie must not be empty")
        if not _is_uint(tick_ms, _U32):
            raise ValueError(f"tick_ms must be an int in 0..{_U32}, got {_describe(tick_ms)}")
        if not (_is_uint(max_frame_size, _U32) and max_frame_size >= MIN_MAX_FRAME_SIZE):
            raise ValueError(
                f"max_frame_size must be an int in {MIN_MAX_FRAME_SIZE}..{_U32}, got {_describe(max_frame_size)}"
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
        self._hello = self._frame(
            {
                "t": "hello",
                "v": version,
                "name": local.name,
                "id": local.node_id,
                "creation": local.creation,
                "flags": local.flags,
                "challenge": challenge,
                "tick_ms": tick_ms,
                "max_frame": max_frame_size,
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
                item = self._next_message()
                if item is None:
                    break
                event = self._handle(*item)
                if self.state is HandshakeState.DONE:
                    assert self.peer is not None and self.status is not None
                    leftover = bytes(self._in)
                    self._in.clear()
                    common = self.local.flags & self.peer.flags
                    version = min(self.version, self.peer.version)
                    events.append(Established(self.peer, version, common, self.status, leftover))
                    break
                if event is not None:
                    events.append(event)
                if self.state is HandshakeState.AWAIT_DECISION:
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
        if status not in _REFUSALS or status == STATUS_NOK:
            raise LocalProtocolError(f"cannot refuse with status {_describe(status)}")
        self._refuse(status, reason)

    # -- internals -----------------------------------------------------------

    def _pending_decision(self) -> PeerHello:
        if self.state is not HandshakeState.AWAIT_DECISION or self.peer is None:
            raise LocalProtocolError(f"no decision is pending (state {self.state.value})")
        return self.peer

    def _refuse(self, status: str, reason: str) -> None:
        if self.role is Role.ACCEPTOR and self.state in (HandshakeState.AWAIT_HELLO, HandshakeState.AWAIT_DECISION):
            self._send({"t": "status", "status": status, "reason": reason})
        else:
            self._send({"t": "abort", "status": status, "reason": reason})
        self.status = status
        self.state = HandshakeState.CLOSED

    @staticmethod
    def _frame(body: dict[str, Any]) -> bytes:
        raw = msgpack.packb(body, use_bin_type=True)
        return _LEN16.pack(len(raw)) + raw

    def _send(self, body: dict[str, Any]) -> None:
        self._out += self._frame(body)

    def _mac(self, label: bytes) -> bytes:
        if self.role is Role.INITIATOR:
            transcript = self._hello + self._peer_hello_raw
        else:
            transcript = self._peer_hello_raw + self._hello
        return hmac.new(self._key, label + transcript, sha256).digest()

    def _next_message(self) -> tuple[bytes, dict[str, Any]] | None:
        buf = self._in
        if len(buf) < 2:
            return None
        (size,) = _LEN16.unpack_from(buf, 0)
        if not 1 <= size <= MAX_HANDSHAKE_FRAME:
            raise HandshakeProtocolError(
                f"handshake message of {size} bytes (allowed 1..{MAX_HANDSHAKE_FRAME}): "
                "the peer does not speak joerl's node-link protocol"
            )
        if len(buf) < 2 + size:
            return None
        raw = bytes(buf[: 2 + size])
        del buf[: 2 + size]
        try:
            body = msgpack.unpackb(raw[2:], raw=False)
        except Exception as exc:
            raise HandshakeProtocolError(f"undecodable handshake message: {exc}") from None
        if not isinstance(body, dict) or not isinstance(body.get("t"), str):
            raise HandshakeProtocolError(
                "handshake message is not a map with a type 't': the peer does not speak joerl's node-link protocol"
            )
        return raw, body

    def _handle(self, raw: bytes, msg: dict[str, Any]) -> HandshakeEvent | None:
        kind = msg["t"]
        state = self.state
        peer_name = self.peer.name if self.peer else self.expected_peer
        if kind == "abort" and state in (HandshakeState.AWAIT_REPLY, HandshakeState.AWAIT_ACK):
            status, reason = self._status_fields(msg)
            if status == STATUS_AUTH_FAILED:
                raise AuthenticationError(
                    f"node {peer_name!r} refused the link: our cookie does not match its cookie ({reason})"
                )
            raise refusal_error(status, reason, peer_name, by_peer=True)
        if state is HandshakeState.AWAIT_HELLO and kind == "hello":
            return self._on_hello(raw, msg)
        if state is HandshakeState.AWAIT_STATUS and kind == "status":
            status, reason = self._status_fields(msg)
            if status not in _OK_STATUSES:
                if status not in _REFUSALS:
                    raise HandshakeProtocolError(f"unknown handshake status {_describe(status)}")
                raise refusal_error(status, reason, peer_name, by_peer=True)
            self.status = status
            self.state = HandshakeState.AWAIT_PEER_HELLO
            return None
        if state is HandshakeState.AWAIT_PEER_HELLO and kind == "hello":
            return self._on_hello(raw, msg)
        if state is HandshakeState.AWAIT_REPLY and kind == "reply":
            if not hmac.compare_digest(self._mac_field(msg), self._mac(_LABEL_INITIATOR)):
                self._refuse(STATUS_AUTH_FAILED, "challenge reply does not match: different cookies")
                raise AuthenticationError(
                    f"node {peer_name!r} failed the cookie challenge: its cookie differs from ours; link refused"
                )
            self._send({"t": "ack", "mac": self._mac(_LABEL_ACCEPTOR)})
            self.state = HandshakeState.DONE
            return None
        if state is HandshakeState.AWAIT_ACK and kind == "ack":
            if not hmac.compare_digest(self._mac_field(msg), self._mac(_LABEL_ACCEPTOR)):
                raise AuthenticationError(
                    f"node {peer_name!r} failed the cookie challenge: its cookie differs from ours; link refused"
                )
            self.state = HandshakeState.DONE
            return None
        raise HandshakeProtocolError(f"unexpected handshake message {_describe(kind)} in state {state.value}")

    @staticmethod
    def _status_fields(msg: dict[str, Any]) -> tuple[str, str]:
        status, reason = msg.get("status"), msg.get("reason", "")
        if not isinstance(status, str) or not isinstance(reason, str):
            raise HandshakeProtocolError("handshake status must be a str with a str reason")
        return status, reason[:1000]

    @staticmethod
    def _mac_field(msg: dict[str, Any]) -> bytes:
        mac = msg.get("mac")
        if not isinstance(mac, bytes) or len(mac) != sha256().digest_size:
            raise HandshakeProtocolError("handshake MAC must be 32 bytes")
        return mac

    def _on_hello(self, raw: bytes, msg: dict[str, Any]) -> HandshakeEvent:
        peer = _parse_hello(msg)
        self.peer = peer
        self._peer_hello_raw = raw
        local = self.local
        problem: tuple[str, str] | None = None
        version = min(self.version, peer.version)
        if version < self.min_version:
            problem = (
                STATUS_NOT_ALLOWED,
                f"protocol version {peer.version} is too old: this node speaks {self.min_version}..{self.version}",
            )
        elif peer.name == local.name:
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


def _parse_hello(msg: dict[str, Any]) -> PeerHello:
    v: Any = msg.get("v")
    name: Any = msg.get("name")
    nid: Any = msg.get("id")
    creation: Any = msg.get("creation")
    flags: Any = msg.get("flags")
    challenge: Any = msg.get("challenge")
    tick_ms: Any = msg.get("tick_ms", 0)
    max_frame: Any = msg.get("max_frame", DEFAULT_MAX_FRAME_SIZE)
    if not _is_uint(v, _U32) or v == 0:
        raise HandshakeProtocolError(f"HELLO version must be a positive int, got {_describe(v)}")
    problem = _check_name(name, "HELLO name")
    if problem:
        raise HandshakeProtocolError(problem)
    if not _is_uint(nid, _U32) or nid == 0:
        raise HandshakeProtocolError(f"HELLO node id must be an int in 1..{_U32}, got {_describe(nid)}")
    if not _is_uint(creation, _U32):
        raise HandshakeProtocolError(f"HELLO creation must be an int in 0..{_U32}, got {_describe(creation)}")
    if not _is_uint(flags, _U64):
        raise HandshakeProtocolError(f"HELLO flags must be an int in 0..{_U64}, got {_describe(flags)}")
    if not isinstance(challenge, bytes) or not CHALLENGE_MIN <= len(challenge) <= CHALLENGE_MAX:
        raise HandshakeProtocolError(f"HELLO challenge must be {CHALLENGE_MIN}..{CHALLENGE_MAX} bytes")
    if not _is_uint(tick_ms, _U32):
        raise HandshakeProtocolError(f"HELLO tick_ms must be an int in 0..{_U32}, got {_describe(tick_ms)}")
    if not _is_uint(max_frame, _U32) or max_frame < MIN_MAX_FRAME_SIZE:
        raise HandshakeProtocolError(f"HELLO max_frame must be an int in {MIN_MAX_FRAME_SIZE}..{_U32}")
    return PeerHello(name, nid, creation, flags, v, tick_ms, max_frame)
