"""Sans-IO node-link protocol: the handshake, then framed control messages.

This module owns every byte two joerl nodes exchange on a link: the handshake
engine (:class:`Handshake`), the frame codec (:class:`FrameEncoder`,
:func:`encode_frame`, :class:`FrameDecoder`) and the control message types.
It opens no socket and imports no gevent; ``connection.py`` moves the bytes.
joerl's link protocol is its own (msgpack, HMAC-SHA256), not Erlang's, though
it borrows Erlang's shape: name exchange, status, challenge both ways, ticks.

Wire layout (every integer big-endian)
======================================

Handshake. Each message is ``Len:16 | Body`` with ``1 <= Len <= 4096`` and Body
a msgpack map with a ``"t"`` (type) string; unknown keys are ignored::

    initiator I (dials)                                   acceptor A (listens)
    HELLO_I  {t:"hello", v, name, id, creation, flags,
              challenge, tick_ms, max_frame}          -->
                                                      <-- STATUS {t:"status", status, reason}
                                                      <-- HELLO_A (only after ok / ok_simultaneous)
    REPLY    {t:"reply", mac: MAC_I}                  -->   (or ABORT {t:"abort", status, reason})
                                                      <-- ACK {t:"ack", mac: MAC_A}   (or ABORT)
    link frames both ways: A may send right after ACK, I once it has checked ACK.

HELLO fields: ``v`` the highest protocol version spoken (both use the smaller
of the two, which must be >= each side's minimum); ``name`` 1..255 bytes of
UTF-8, printable; ``id`` the node id, 1..2**32-1 (0 means "local" in a pid and
never names a peer); ``creation`` 0..2**32-1, the incarnation; ``flags`` a u64
of ``FLAG_*`` capabilities (those in use are the AND of both); ``challenge``
16..64 fresh random bytes; ``tick_ms`` the sender's tick time (the peer ticks
at least every quarter of the smaller one); ``max_frame`` the largest link
frame body the sender accepts (the peer refuses to send larger ones).

``status`` is one of ``ok``, ``ok_simultaneous`` (A was dialling I too and
gives its own attempt up), ``nok`` (A was dialling I too and its own attempt
wins: I must wait for it), ``busy`` (A already has a link, or a handshake, with
a node of that name), ``not_allowed`` (version, flags, same name, policy),
``id_collision`` (I's id is A's own, or that of another node A is linked to).
ABORT carries the same statuses plus ``auth_failed``.

Authentication: ``MAC_x = HMAC-SHA256(cookie, LABEL_x + HELLO_I + HELLO_A)``,
where HELLO_I and HELLO_A are the two hello messages exactly as sent (length
prefix included, so the concatenation is unambiguous), ``LABEL_I`` is
``b"joerl-dist initiator\\0"`` and ``LABEL_A`` is ``b"joerl-dist acceptor\\0"``.
Both hellos hold both challenges, both names, ids, creations and flags, so a
MAC proves knowledge of the cookie for this very exchange only: a recorded
one is stale (fresh challenges), a reflected one has the wrong label. The
cookie never travels. The initiator proves itself first, to the node it chose
to dial; the acceptor answers only after checking it, so a stranger who
connects learns nothing it could use to guess the cookie offline.

Simultaneous connect: when A receives HELLO_I while it is itself dialling I,
the dial of the node with the greater name (UTF-8 bytes compared) survives
(:func:`dial_survives`). A answers ``nok`` when its own dial wins, else
``ok_simultaneous`` and drops its dial (which I will answer ``nok``). Both
sides end with exactly the winner's connection.

Link frames, after the handshake::

    Len:32 | Body          Len == 0 is a tick (no body); 1 <= Len <= max_frame
    Body = msgpack array [op, field, ...]; trailing extra fields are ignored

A pid or ref in a control field is ``[node:u32, id:u64, creation:u32]`` with
node != 0. The two messages that carry processes' messages, SEND and
SEND_TERMS, name both pids in one ``route`` instead (the receiver looks the
pair up once per frame): a bin of ``to`` as ``node:u32 | id:u64 |
creation:u32``, followed by the sender's 16 bytes when there is a sender. ``payload``, ``reason`` and ``args`` are msgpack bin: opaque bytes
made by the serialization codec; this module only carries them.

SEND_TERMS is SEND for the commonest messages, *plain terms*: a str, bin,
int (64-bit), float, bool or nil, or a flat tuple of at most
:data:`MAX_TERM_ITEMS` of them (``("ping", 7)``). It carries 1 to
:data:`MAX_TERMS_PER_FRAME` of them, in order, from one sender to one process:
each is the value itself in msgpack (a tuple as an array), not a codec payload
in a bin, so the frame's one decode yields every message, where SEND takes
two decodes for one (the frame, then the payload). A sender batches a burst of
plain terms to one process into one frame. Only these types travel this way:
a frame with any other ``msg`` (a map, a nested array, an ext), or more than
:data:`MAX_TERMS_BYTES` of messages, is a bad frame, all of it. It is sent
only when both sides offer :data:`FLAG_SEND_TERMS`; anything else takes SEND.

====  ==============  =====================================================
op    message         fields after op
====  ==============  =====================================================
1     SEND            route: bin, payload: bin
2     REG_SEND        sender: pid|nil, to_name: str, payload: bin
3     LINK            sender: pid, to: pid
4     UNLINK          sender: pid, to: pid, id: u64 (0: no ack wanted)
5     UNLINK_ACK      sender: pid, to: pid, id: u64
6     EXIT            sender: pid, to: pid, reason: bin   (a link broke)
7     EXIT2           sender: pid|nil, to: pid, reason: bin   (exit(pid, reason))
8     MONITOR         sender: pid, to: pid|str, ref
9     DEMONITOR       sender: pid, to: pid|str, ref
10    DOWN            sender: pid|str (the monitored), to: pid, ref, reason: bin
11    SPAWN_REQUEST   ref, sender: pid, factory: str, args: bin, link: bool, monitor: bool
12    SPAWN_REPLY     ref, to: pid, result: pid (spawned) | str (error)
13    ALIVE_REQUEST   ref, pid
14    ALIVE_REPLY     ref, alive: bool
15    CALL_REPLY      ref, payload: bin
16    SEND_TERMS      route: bin, msg: plain term, msg, ... (see above)
====  ==============  =====================================================

Errors: a peer breaking the handshake raises :class:`HandshakeProtocolError`
(both a ``HandshakeError`` and a ``RemoteProtocolError``); a refusal raises
:class:`HandshakeRefused` (:class:`SimultaneousConnect`,
:class:`NodeIdCollision`); a bad MAC raises ``AuthenticationError``. After the
handshake, one undecodable frame is a :class:`FrameError` in the decoder's
output (skip it: framing is intact), while a frame over the limit raises
:class:`OversizedFrame` (the stream is broken: close the link).
"""

from __future__ import annotations

from .._describe import describe

import enum
import hmac
import os
import struct
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, Callable, NamedTuple, Union

import msgpack

from ..errors import (
    AuthenticationError,
    HandshakeError,
    LocalProtocolError,
    RemoteProtocolError,
)
from ..pid import Pid, Ref

__all__ = [
    "ACCEPT",
    "DEFAULT_FLAGS",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_TICK_MS",
    "DIALING",
    "AliveReply",
    "AliveRequest",
    "CallReply",
    "Demonitor",
    "Down",
    "Established",
    "Exit",
    "Exit2",
    "FrameDecoder",
    "FrameEncoder",
    "FrameError",
    "Handshake",
    "HandshakeProtocolError",
    "HandshakeRefused",
    "HandshakeState",
    "HelloReceived",
    "Link",
    "MAX_TERM_ITEMS",
    "MAX_TERMS_BYTES",
    "MAX_TERMS_PER_FRAME",
    "Message",
    "Monitor",
    "NodeIdCollision",
    "NodeIdentity",
    "OversizedFrame",
    "PeerHello",
    "RegSend",
    "Role",
    "Send",
    "SendTerms",
    "SimultaneousConnect",
    "SpawnReply",
    "SpawnRequest",
    "TICK_FRAME",
    "Tick",
    "Unlink",
    "UnlinkAck",
    "Verdict",
    "dial_survives",
    "encode_frame",
    "refusal_error",
]

#: 2: SEND names its pids in a route, and SEND_TERMS (1 was this release's first draft).
PROTOCOL_VERSION = 2
MIN_PROTOCOL_VERSION = 2

#: The largest link frame body accepted unless configured otherwise: 64 MiB.
#: Room for big messages (the issue asks for 1 MiB ones) while bounding what a
#: peer can make us buffer; the length prefix is checked before any body byte.
DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024
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

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF
_LEN16 = struct.Struct(">H")
_LEN32 = struct.Struct(">I")
_pack_len32 = _LEN32.pack
_unpack_len32 = _LEN32.unpack_from
_new_tuple = tuple.__new__

#: A tick: a link frame of length zero.
TICK_FRAME = b"\x00\x00\x00\x00"


# -- errors ------------------------------------------------------------------
# Local until errors.py adopts them (see the report); all subclass the tree.


class HandshakeProtocolError(HandshakeError, RemoteProtocolError):
    """The peer broke the handshake protocol (malformed or unexpected message)."""


class HandshakeRefused(HandshakeError):
    """A handshake ended with a refusal, by the peer or by us.

    Attributes:
        status: the refusal status (``nok``, ``busy``, ``not_allowed``,
            ``id_collision``).
        reason: the human explanation sent with it.
        peer: the peer's name when known.
        by_peer: True when the peer refused us, False when we refused it.
    """

    def __init__(self, status: str, reason: str = "", *, peer: str | None = None, by_peer: bool = True) -> None:
        who = f"node {peer!r}" if peer else "the peer"
        text = f"{who} refused the link" if by_peer else f"refused the link with {who}"
        super().__init__(f"{text}: {status}" + (f" ({reason})" if reason else ""))
        self.status = status
        self.reason = reason
        self.peer = peer
        self.by_peer = by_peer


class SimultaneousConnect(HandshakeRefused):
    """Both nodes dialled each other; this dial lost the tie-break (status ``nok``).

    Not a failure: the other node's dial is the one that becomes the link.
    Wait for it (up to the handshake deadline) instead of dialling again.
    """


class NodeIdCollision(HandshakeRefused):
    """Two nodes with different names have the same node id (status ``id_collision``)."""


class FrameError(RemoteProtocolError):
    """One link frame could not be decoded; it is skipped, the stream stays in sync.

    Attributes:
        size: the frame's body length.
        op: its opcode when that much could be read, else None.
    """

    def __init__(self, message: str, *, size: int, op: int | None = None) -> None:
        super().__init__(f"bad frame ({size} bytes): {message}")
        self.size = size
        self.op = op


class OversizedFrame(RemoteProtocolError):
    """The peer announced a frame larger than the limit: the link must close.

    Attributes:
        size: the announced body length.
        limit: the configured maximum.
        messages: what the same ``feed`` call decoded before this frame, in
            order: deliver them before closing.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"frame of {size} bytes exceeds the limit of {limit} bytes (max_frame_size); closing the link"
        )
        self.size = size
        self.limit = limit
        self.messages: list[Message | FrameError] = []


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


_describe = describe  # bounded renderings of the peer's values (joerl/_describe.py)


def _is_uint(value: Any, top: int) -> bool:
    return type(value) is int and 0 <= value <= top


@dataclass(frozen=True)
class NodeIdentity:
    """Who a node says it is in the handshake.

    Args:
        name: the node's name, 1..255 bytes of UTF-8, printable.
        node_id: its 32-bit id, 1..2**32-1 (``joerl.dist.config.node_id_of``).
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


HandshakeEvent = Union[HelloReceived, Established]


class Verdict(NamedTuple):
    """A node's answer to :class:`HelloReceived` (used by ``connection.py``).

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


# -- control messages ------------------------------------------------------------

OP_SEND = 1
OP_REG_SEND = 2
OP_LINK = 3
OP_UNLINK = 4
OP_UNLINK_ACK = 5
OP_EXIT = 6
OP_EXIT2 = 7
OP_MONITOR = 8
OP_DEMONITOR = 9
OP_DOWN = 10
OP_SPAWN_REQUEST = 11
OP_SPAWN_REPLY = 12
OP_ALIVE_REQUEST = 13
OP_ALIVE_REPLY = 14
OP_CALL_REPLY = 15
OP_SEND_TERMS = 16

#: The most items a plain term's tuple may hold (SEND_TERMS); longer ones take SEND.
MAX_TERM_ITEMS = 32
#: The most messages one SEND_TERMS frame carries.
MAX_TERMS_PER_FRAME = 1024
#: The most bytes of messages one SEND_TERMS frame carries (a larger plain
#: term takes SEND, and the serialization codec's limits).
MAX_TERMS_BYTES = 256 * 1024
_MAX_TERMS_FRAME = MAX_TERMS_BYTES + 40  # and its head (<= 4 bytes) and route (<= 34)
#: The types a plain term (or each item of its tuple) may have: exact types only.
TERM_SCALARS = frozenset({str, bytes, int, float, bool, type(None)})


class Send(NamedTuple):
    """SEND: a message to a pid. ``payload`` is the codec's bytes."""

    sender: Pid | None
    to: Pid
    payload: bytes


class SendTerms(NamedTuple):
    """SEND_TERMS: plain terms from one sender to one pid, in order (see the
    module docstring); ``msgs`` is a tuple of the messages themselves."""

    sender: Pid | None
    to: Pid
    msgs: tuple[Any, ...]


class RegSend(NamedTuple):
    """REG_SEND: a message to the process registered as ``to_name`` on the peer."""

    sender: Pid | None
    to_name: str
    payload: bytes


class Link(NamedTuple):
    """LINK: ``sender`` links to ``to``."""

    sender: Pid
    to: Pid


class Unlink(NamedTuple):
    """UNLINK: ``sender`` unlinks from ``to``; a nonzero ``id`` asks for UNLINK_ACK."""

    sender: Pid
    to: Pid
    id: int = 0


class UnlinkAck(NamedTuple):
    """UNLINK_ACK: ``sender`` (the unlinked) acknowledges UNLINK ``id`` from ``to``."""

    sender: Pid
    to: Pid
    id: int


class Exit(NamedTuple):
    """EXIT: ``sender`` died with ``reason`` (codec bytes) and was linked to ``to``."""

    sender: Pid
    to: Pid
    reason: bytes


class Exit2(NamedTuple):
    """EXIT2: ``exit(to, reason)`` called by ``sender`` (None: from outside any process)."""

    sender: Pid | None
    to: Pid
    reason: bytes


class Monitor(NamedTuple):
    """MONITOR: ``sender`` monitors ``to``, a pid or a registered name, under ``ref``."""

    sender: Pid
    to: Pid | str
    ref: Ref


class Demonitor(NamedTuple):
    """DEMONITOR: ``sender`` drops its monitor ``ref`` on ``to``."""

    sender: Pid
    to: Pid | str
    ref: Ref


class Down(NamedTuple):
    """DOWN: the monitored ``sender`` (pid or name) ended; tell monitor ``ref`` of ``to``."""

    sender: Pid | str
    to: Pid
    ref: Ref
    reason: bytes


class SpawnRequest(NamedTuple):
    """SPAWN_REQUEST: ``sender`` asks for a process made by the factory registered as ``factory``."""

    ref: Ref
    sender: Pid
    factory: str
    args: bytes
    link: bool = False
    monitor: bool = False


class SpawnReply(NamedTuple):
    """SPAWN_REPLY to ``to`` for request ``ref``: the new pid, or an error string."""

    ref: Ref
    to: Pid
    result: Pid | str


class AliveRequest(NamedTuple):
    """ALIVE_REQUEST: is ``pid`` (a process of the peer) alive? Answer ALIVE_REPLY ``ref``."""

    ref: Ref
    pid: Pid


class AliveReply(NamedTuple):
    """ALIVE_REPLY to request ``ref``."""

    ref: Ref
    alive: bool


class CallReply(NamedTuple):
    """CALL_REPLY: a reply for whoever waits on ``ref`` on the receiving node."""

    ref: Ref
    payload: bytes


class Tick(NamedTuple):
    """A tick: the zero-length frame an idle link sends. Never decoded as a message."""


Message = Union[
    Send, SendTerms, RegSend, Link, Unlink, UnlinkAck, Exit, Exit2, Monitor, Demonitor, Down,
    SpawnRequest, SpawnReply, AliveRequest, AliveReply, CallReply,
]  # fmt: skip


# -- encoding ----------------------------------------------------------------------


class _Bad(Exception):
    """Internal: a field could not be encoded or decoded."""


def _epid(p: Any, what: str = "pid") -> tuple[int, int, int]:
    if p.__class__ is not Pid:
        raise _Bad(f"{what} must be a Pid, not {type(p).__name__}")
    if p.node == 0:
        raise _Bad(f"{what} {p} has node 0 ('this node'): give it the local node id before it leaves")
    return (p.node, p.id, p.creation)


def _eopt_pid(p: Any, what: str) -> tuple[int, int, int] | None:
    return None if p is None else _epid(p, what)


def _eref(r: Any) -> tuple[int, int, int]:
    if r.__class__ is not Ref:
        raise _Bad(f"ref must be a Ref, not {type(r).__name__}")
    if r.node == 0:
        raise _Bad(f"ref {r} has node 0 ('this node'): give it the local node id before it leaves")
    return (r.node, r.id, r.creation)


def _ebytes(b: Any, what: str) -> bytes:
    if b.__class__ is not bytes:
        raise _Bad(f"{what} must be bytes (encoded by the serialization codec), not {type(b).__name__}")
    return b


def _ename(n: Any, what: str) -> str:
    if n.__class__ is not str or not n:
        raise _Bad(f"{what} must be a non-empty str, got {_describe(n)}")
    return n


def _etarget(t: Any, what: str) -> Any:
    return t if t.__class__ is str and t else _epid(t, what)


def _ebool(b: Any, what: str) -> bool:
    if b.__class__ is not bool:
        raise _Bad(f"{what} must be a bool, got {_describe(b)}")
    return b


def _eid(i: Any) -> int:
    if not _is_uint(i, _U64):
        raise _Bad(f"unlink id must be an int in 0..{_U64}, got {_describe(i)}")
    return i


# The fields of each message but SEND (FrameEncoder.send builds SEND by hand).
_BODY: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    RegSend: lambda m: (
        OP_REG_SEND, _eopt_pid(m.sender, "sender"), _ename(m.to_name, "to_name"), _ebytes(m.payload, "payload")
    ),
    Link: lambda m: (OP_LINK, _epid(m.sender, "sender"), _epid(m.to, "to")),
    Unlink: lambda m: (OP_UNLINK, _epid(m.sender, "sender"), _epid(m.to, "to"), _eid(m.id)),
    UnlinkAck: lambda m: (OP_UNLINK_ACK, _epid(m.sender, "sender"), _epid(m.to, "to"), _eid(m.id)),
    Exit: lambda m: (OP_EXIT, _epid(m.sender, "sender"), _epid(m.to, "to"), _ebytes(m.reason, "reason")),
    Exit2: lambda m: (OP_EXIT2, _eopt_pid(m.sender, "sender"), _epid(m.to, "to"), _ebytes(m.reason, "reason")),
    Monitor: lambda m: (OP_MONITOR, _epid(m.sender, "sender"), _etarget(m.to, "to"), _eref(m.ref)),
    Demonitor: lambda m: (OP_DEMONITOR, _epid(m.sender, "sender"), _etarget(m.to, "to"), _eref(m.ref)),
    Down: lambda m: (
        OP_DOWN, _etarget(m.sender, "sender"), _epid(m.to, "to"), _eref(m.ref), _ebytes(m.reason, "reason")
    ),
    SpawnRequest: lambda m: (
        OP_SPAWN_REQUEST, _eref(m.ref), _epid(m.sender, "sender"), _ename(m.factory, "factory"),
        _ebytes(m.args, "args"), _ebool(m.link, "link"), _ebool(m.monitor, "monitor"),
    ),
    SpawnReply: lambda m: (
        OP_SPAWN_REPLY, _eref(m.ref), _epid(m.to, "to"),
        _ename(m.result, "result") if m.result.__class__ is str else _epid(m.result, "result"),
    ),
    AliveRequest: lambda m: (OP_ALIVE_REQUEST, _eref(m.ref), _epid(m.pid, "pid")),
    AliveReply: lambda m: (OP_ALIVE_REPLY, _eref(m.ref), _ebool(m.alive, "alive")),
    CallReply: lambda m: (OP_CALL_REPLY, _eref(m.ref), _ebytes(m.payload, "payload")),
}  # fmt: skip


_BIN8 = [b"\xc4" + bytes([n]) for n in range(256)]
_IDENT = struct.Struct(">IQI")  # a pid in a route: node, id, creation
_ROUTE_TO_ONLY = b"\xc4\x10"  # bin of 16 bytes: to
_ROUTE_BOTH = b"\xc4\x20"  # bin of 32 bytes: to, sender


def _bin_header(n: int) -> bytes:
    """The msgpack bin header for ``n`` bytes."""
    if n < 256:
        return _BIN8[n]
    if n < 0x10000:
        return b"\xc5" + n.to_bytes(2, "big")
    return b"\xc6" + n.to_bytes(4, "big")


class FrameEncoder:
    """Turns control messages into link frames (``Len:32 | msgpack body``).

    One encoder per link, used from one thread (any greenlets). It keeps a
    msgpack ``Packer`` and, for the SEND hot path, the packed form of the pids
    it has seen (bounded), so :meth:`send` is a few dict lookups and a join.

    Args:
        max_frame_size: the largest body the peer accepts (its HELLO's
            ``max_frame``); larger frames raise ``LocalProtocolError``.
        pid_cache_size: packed pids kept; the cache is cleared when full.
        terms: whether the peer takes SEND_TERMS (``FLAG_SEND_TERMS`` in
            use); when False, :meth:`term` always answers None.
    """

    def __init__(
        self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, *, pid_cache_size: int = 4096, terms: bool = True
    ) -> None:
        self.max_frame_size = max_frame_size
        self.terms = terms
        self._packer = msgpack.Packer(use_bin_type=True)
        self._pack = self._packer.pack
        self._pids: dict[int, tuple[Pid, bytes]] = {}  # id(pid) -> (pid, its 16 route bytes)
        self._pid_cache_size = pid_cache_size
        self._route = b""  # the last route made, for _route_to from _route_sender
        self._route_to: Any = None
        self._route_sender: Any = None

    def encode(self, msg: Message | Tick) -> bytes:
        """The frame for ``msg``.

        Raises:
            LocalProtocolError: a field has the wrong type (a payload that is
                not bytes, a pid with node 0, ...), or the frame is too large.
        """
        cls = msg.__class__
        if cls is Tick:
            return TICK_FRAME
        if cls is Send:
            return self.send(*msg)  # type: ignore[misc]
        if cls is SendTerms:
            sender, to, msgs = msg  # type: ignore[misc]
            if not msgs or len(msgs) > MAX_TERMS_PER_FRAME:
                raise LocalProtocolError(f"SendTerms carries 1 to {MAX_TERMS_PER_FRAME} messages, not {len(msgs)}")
            bodies = [self.term(m) for m in msgs]
            if None in bodies:
                bad = msgs[bodies.index(None)]
                raise LocalProtocolError(f"cannot encode SendTerms: not a plain term (or terms are off): {_describe(bad)}")
            return self.send_terms(self.route(sender, to), bodies)  # type: ignore[arg-type]
        try:
            fields = _BODY[cls](msg)
        except KeyError:
            raise LocalProtocolError(f"not a control message: {type(msg).__name__}") from None
        except (_Bad, AttributeError) as exc:
            raise LocalProtocolError(f"cannot encode {type(msg).__name__}: {exc}") from None
        body = self._packer.pack(fields)
        size = len(body)
        if size > self.max_frame_size:
            raise self._too_large(size)
        return _pack_len32(size) + body

    def send(self, sender: Pid | None, to: Pid, payload: bytes) -> bytes:
        """The SEND frame, without building a :class:`Send` first (the hot path).

        Raises:
            LocalProtocolError: as :meth:`encode`.
        """
        if payload.__class__ is not bytes:
            raise LocalProtocolError(
                f"cannot encode Send: payload must be bytes (encoded by the serialization codec), "
                f"not {type(payload).__name__}"
            )
        route = self._route if to is self._route_to and sender is self._route_sender else self.route(sender, to)
        header = _bin_header(len(payload))
        size = 2 + len(route) + len(header) + len(payload)
        if size > self.max_frame_size:
            raise self._too_large(size)
        return b"".join((_pack_len32(size), b"\x93\x01", route, header, payload))

    def term(self, msg: Any) -> bytes | None:
        """``msg`` packed for :meth:`send_terms`, or None when it is not a plain
        term or the peer takes none (then encode it with the serialization
        codec and use :meth:`send`)."""
        cls = msg.__class__
        if cls is tuple:  # _plain_terms((msg,)), inlined: this is every send's path
            if len(msg) > MAX_TERM_ITEMS:
                return None
            for item in msg:
                if item.__class__ not in TERM_SCALARS:
                    return None
        elif cls not in TERM_SCALARS:
            return None
        if not self.terms:
            return None
        try:
            body: bytes = self._pack(msg)
        except (OverflowError, UnicodeEncodeError):  # a big int, a lone surrogate: the codec's business
            self._packer.reset()
            return None
        return body if len(body) <= MAX_TERMS_BYTES else None

    def send_terms(self, route: bytes, bodies: list[bytes]) -> bytes:
        """The SEND_TERMS frame of ``bodies`` (from :meth:`term`, 1 to
        ``MAX_TERMS_PER_FRAME``) along ``route`` (from :meth:`route`).

        Raises:
            LocalProtocolError: the frame is too large for the peer.
        """
        n = len(bodies) + 2
        head = bytes((0x90 | n, OP_SEND_TERMS)) if n < 16 else b"\xdc" + n.to_bytes(2, "big") + b"\x10"
        data = b"".join(bodies)
        size = len(head) + len(route) + len(data)
        if size > self.max_frame_size:
            raise self._too_large(size)
        return b"".join((_pack_len32(size), head, route, data))

    def route(self, sender: Pid | None, to: Pid) -> bytes:
        """The route of a SEND or SEND_TERMS frame from ``sender`` to ``to``:
        ``to``'s 16 bytes, then the sender's, in a msgpack bin. The last one
        is kept: a stream reuses it (compare with ``is``).

        Raises:
            LocalProtocolError: a pid is not a Pid, or has node 0.
        """
        if to is self._route_to and sender is self._route_sender:
            return self._route
        to_b = self._pid_bytes(to, "to")
        if sender is None:
            route = _ROUTE_TO_ONLY + to_b
        else:
            route = _ROUTE_BOTH + to_b + self._pid_bytes(sender, "sender")
        self._route, self._route_to, self._route_sender = route, to, sender
        return route

    def _pid_bytes(self, pid: Any, what: str) -> bytes:
        """A pid's 16 route bytes, cached (the same few pids recur on a link)."""
        hit = self._pids.get(id(pid))  # by identity: Pid's own hash is Python code
        if hit is not None and hit[0] is pid:
            return hit[1]
        try:
            packed = _IDENT.pack(*_epid(pid, what))
        except _Bad as exc:
            raise LocalProtocolError(f"cannot encode a route: {exc}") from None
        pids = self._pids
        if len(pids) >= self._pid_cache_size:
            pids.clear()
        pids[id(pid)] = (pid, packed)
        return packed

    def _too_large(self, size: int) -> LocalProtocolError:
        return LocalProtocolError(f"frame of {size} bytes exceeds the peer's limit of {self.max_frame_size} bytes")


def encode_frame(msg: Message | Tick, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """The link frame for ``msg`` (``Len:32 | msgpack body``; a tick is 4 zero bytes).

    Raises:
        LocalProtocolError: see :meth:`FrameEncoder.encode`.
    """
    return FrameEncoder(max_frame_size).encode(msg)


# -- decoding ----------------------------------------------------------------------


def _dref(x: Any) -> Ref:
    if type(x) is tuple and len(x) == 3:
        n, i, c = x
        if _is_uint(n, _U32) and n and _is_uint(i, _U64) and _is_uint(c, _U32):
            return Ref._unchecked(n, i, c)
    raise _Bad(f"expected a ref [node>0, id, creation], got {_describe(x)}")


def _dbytes(x: Any, what: str) -> bytes:
    if type(x) is not bytes:
        raise _Bad(f"{what} must be bin, got {type(x).__name__}")
    return x


def _dname(x: Any, what: str) -> str:
    if type(x) is not str or not x:
        raise _Bad(f"{what} must be a non-empty str, got {_describe(x)}")
    return x


def _plain_terms(msgs: tuple[Any, ...]) -> bool:
    """Whether every one of ``msgs`` is a plain term (see SEND_TERMS)."""
    for m in msgs:
        cls = m.__class__
        if cls is tuple:
            if len(m) > MAX_TERM_ITEMS:
                return False
            for item in m:
                if item.__class__ not in TERM_SCALARS:
                    return False
        elif cls not in TERM_SCALARS:
            return False
    return True


def _dterms(t: tuple[Any, ...]) -> tuple[Any, ...]:
    msgs = t[2:]
    if len(msgs) > MAX_TERMS_PER_FRAME:
        raise _Bad(f"carries {len(msgs)} messages, over the {MAX_TERMS_PER_FRAME} a frame may")
    if not _plain_terms(msgs):
        bad = next(m for m in msgs if not _plain_terms((m,)))
        raise _Bad(f"msg must be a plain term (a scalar, or a flat array of at most {MAX_TERM_ITEMS}), got {_describe(bad)}")
    return msgs


def _dbool(x: Any, what: str) -> bool:
    if type(x) is not bool:
        raise _Bad(f"{what} must be a bool, got {_describe(x)}")
    return x


_OP_NAMES = {
    OP_SEND: "SEND", OP_REG_SEND: "REG_SEND", OP_LINK: "LINK", OP_UNLINK: "UNLINK",
    OP_UNLINK_ACK: "UNLINK_ACK", OP_EXIT: "EXIT", OP_EXIT2: "EXIT2", OP_MONITOR: "MONITOR",
    OP_DEMONITOR: "DEMONITOR", OP_DOWN: "DOWN", OP_SPAWN_REQUEST: "SPAWN_REQUEST",
    OP_SPAWN_REPLY: "SPAWN_REPLY", OP_ALIVE_REQUEST: "ALIVE_REQUEST", OP_ALIVE_REPLY: "ALIVE_REPLY",
    OP_CALL_REPLY: "CALL_REPLY", OP_SEND_TERMS: "SEND_TERMS",
}  # fmt: skip
_ARITY = {
    OP_SEND: 3, OP_REG_SEND: 4, OP_LINK: 3, OP_UNLINK: 4, OP_UNLINK_ACK: 4, OP_EXIT: 4, OP_EXIT2: 4,
    OP_MONITOR: 4, OP_DEMONITOR: 4, OP_DOWN: 5, OP_SPAWN_REQUEST: 7, OP_SPAWN_REPLY: 4,
    OP_ALIVE_REQUEST: 3, OP_ALIVE_REPLY: 3, OP_CALL_REPLY: 3, OP_SEND_TERMS: 3,
}  # fmt: skip


class FrameDecoder:
    """Turns the bytes of a link (after the handshake) into control messages.

    Feeding is O(n) in the bytes fed, however they are split: complete frames
    are decoded straight from the input, and only an incomplete tail is kept.
    Bodies go through one streaming msgpack ``Unpacker`` (much cheaper per
    frame than ``unpackb``), checked to consume exactly the frame's length;
    SEND with known pids takes an inlined fast path.

    Args:
        max_frame_size: the largest frame body accepted; a larger length
            prefix raises :class:`OversizedFrame` before any body byte is read.
        pid_cache_size: decoded pids are cached per link (the same few pids
            recur on a link); the cache is cleared when it holds this many.

    Attributes:
        ticks: ticks received so far (they are counted, not returned).
        frames: frames received so far (messages and bad frames; not ticks).
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, *, pid_cache_size: int = 4096) -> None:
        self.max_frame_size = max_frame_size
        self.ticks = 0
        self.frames = 0
        self._buf = bytearray()
        self._broken: OversizedFrame | None = None
        self._pids: dict[Any, Pid] = {}
        self._routes: dict[bytes, tuple[Pid | None, Pid]] = {}  # SEND's route -> (sender, to)
        self._pid_cache_size = pid_cache_size
        self._pos = 0
        self._new_unpacker()
        self._ops: dict[int, Callable[[tuple[Any, ...]], Message]] = {
            OP_SEND: lambda t: Send(*self._route(t[1]), _dbytes(t[2], "payload")),
            OP_REG_SEND: lambda t: RegSend(
                self._opt_pid(t[1], "sender"), _dname(t[2], "to_name"), _dbytes(t[3], "payload")
            ),
            OP_LINK: lambda t: Link(self._pid(t[1], "sender"), self._pid(t[2], "to")),
            OP_UNLINK: lambda t: Unlink(self._pid(t[1], "sender"), self._pid(t[2], "to"), self._id(t[3])),
            OP_UNLINK_ACK: lambda t: UnlinkAck(self._pid(t[1], "sender"), self._pid(t[2], "to"), self._id(t[3])),
            OP_EXIT: lambda t: Exit(self._pid(t[1], "sender"), self._pid(t[2], "to"), _dbytes(t[3], "reason")),
            OP_EXIT2: lambda t: Exit2(self._opt_pid(t[1], "sender"), self._pid(t[2], "to"), _dbytes(t[3], "reason")),
            OP_MONITOR: lambda t: Monitor(self._pid(t[1], "sender"), self._target(t[2], "to"), _dref(t[3])),
            OP_DEMONITOR: lambda t: Demonitor(self._pid(t[1], "sender"), self._target(t[2], "to"), _dref(t[3])),
            OP_DOWN: lambda t: Down(
                self._target(t[1], "sender"), self._pid(t[2], "to"), _dref(t[3]), _dbytes(t[4], "reason")
            ),
            OP_SPAWN_REQUEST: lambda t: SpawnRequest(
                _dref(t[1]), self._pid(t[2], "sender"), _dname(t[3], "factory"), _dbytes(t[4], "args"),
                _dbool(t[5], "link"), _dbool(t[6], "monitor"),
            ),
            OP_SPAWN_REPLY: lambda t: SpawnReply(
                _dref(t[1]), self._pid(t[2], "to"), _dname(t[3], "result") if type(t[3]) is str
                else self._pid(t[3], "result"),
            ),
            OP_ALIVE_REQUEST: lambda t: AliveRequest(_dref(t[1]), self._pid(t[2], "pid")),
            OP_ALIVE_REPLY: lambda t: AliveReply(_dref(t[1]), _dbool(t[2], "alive")),
            OP_CALL_REPLY: lambda t: CallReply(_dref(t[1]), _dbytes(t[2], "payload")),
            OP_SEND_TERMS: lambda t: SendTerms(*self._route(t[1]), _dterms(t)),
        }  # fmt: skip

    def buffered(self) -> int:
        """How many bytes of an incomplete frame are waiting for the rest."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message | FrameError]:
        """Take bytes from the link; return the messages of every complete frame.

        A frame that cannot be decoded (not msgpack, unknown op, wrong fields)
        is returned as a :class:`FrameError` in its place: log it, count it,
        go on; the frames around it are unaffected.

        Raises:
            OversizedFrame: a length prefix exceeds ``max_frame_size``. The
                stream is broken: close the link. The messages decoded before
                it in this call are in the exception's ``messages``; every
                later call raises it again.
        """
        if self._broken is not None:
            raise self._broken
        buf = self._buf
        if buf:
            buf += data
            src: bytes | bytearray = buf
        else:
            src = data
        end_all = len(src)
        off = 0
        out: list[Message | FrameError] = []
        append = out.append
        limit = self.max_frame_size
        feed, unpack, tell = self._feed, self._unpack, self._tell
        routes = self._routes
        pos = self._pos  # bytes fed to the Unpacker (its tell() must agree)
        while end_all - off >= 4:
            (size,) = _unpack_len32(src, off)
            if size == 0:
                self.ticks += 1
                off += 4
                continue
            if size > limit:
                self._pos = pos
                err = OversizedFrame(size, limit)
                err.messages = out
                self._broken = err
                raise err
            end = off + 4 + size
            if end > end_all:
                break
            # One streaming Unpacker per link: far cheaper per frame than unpackb.
            if size <= 4096:
                feed(src[off + 4 : end])
            else:
                with memoryview(src) as mv, mv[off + 4 : end] as body:
                    feed(body)
            off = end
            pos += size
            try:
                t = unpack()
            except Exception as exc:
                append(self._reset(f"body is not msgpack ({type(exc).__name__}: {exc})", size))
                feed, unpack, tell, pos = self._feed, self._unpack, self._tell, 0
                continue
            if tell() != pos:
                append(self._reset("body is not msgpack (extra data after the message)", size))
                feed, unpack, tell, pos = self._feed, self._unpack, self._tell, 0
                continue
            # The SEND and SEND_TERMS hot path, inlined: a known route, exact
            # types; anything else (a new route, a bad field) takes the general path.
            try:
                op = t[0]
                if op.__class__ is int and (op == OP_SEND_TERMS or op == OP_SEND):
                    sender, to = routes[t[1]]
                    if op == OP_SEND_TERMS:
                        msgs = t[2:]
                        if size <= _MAX_TERMS_FRAME and msgs and len(msgs) <= MAX_TERMS_PER_FRAME and _plain_terms(msgs):
                            append(_new_tuple(SendTerms, (sender, to, msgs)))
                            continue
                    elif (payload := t[2]).__class__ is bytes:
                        append(_new_tuple(Send, (sender, to, payload)))
                        continue
            except (LookupError, TypeError):
                pass
            append(self._decode(t, size))
        self._pos = pos
        self.frames += len(out)
        if src is buf:
            del buf[:off]
        elif off < end_all:
            buf += src[off:]
        return out

    def _new_unpacker(self) -> None:
        # Limits bound what a declared length can make msgpack allocate up front.
        unpacker = msgpack.Unpacker(
            use_list=False,
            raw=False,
            max_buffer_size=max(self.max_frame_size, 1 << 20),
            max_bin_len=self.max_frame_size,
            max_str_len=self.max_frame_size,  # a str allocates nothing before its bytes arrive
            max_array_len=MAX_TERMS_PER_FRAME + 2,  # bounds what one array header makes msgpack allocate
            max_map_len=64,
            max_ext_len=64,
        )
        self._feed, self._unpack, self._tell = unpacker.feed, unpacker.unpack, unpacker.tell
        self._pos = 0

    def _reset(self, message: str, size: int) -> FrameError:
        """Drop the Unpacker's state after a bad body; framing is unaffected."""
        self._new_unpacker()
        return FrameError(message, size=size)

    def _decode(self, t: Any, size: int) -> Message | FrameError:
        if t.__class__ is not tuple or not t or t[0].__class__ is not int:
            return FrameError(f"body is not an array [op, ...]: {_describe(t)}", size=size)
        op = t[0]
        fn = self._ops.get(op)
        if fn is None:
            return FrameError(f"unknown control message type {op}", size=size, op=op)
        if len(t) < _ARITY[op]:
            return FrameError(f"{_OP_NAMES[op]} needs {_ARITY[op] - 1} fields, got {len(t) - 1}", size=size, op=op)
        if op == OP_SEND_TERMS and size > _MAX_TERMS_FRAME:
            return FrameError(f"SEND_TERMS: a frame of {size} bytes, over {_MAX_TERMS_FRAME}", size=size, op=op)
        try:
            return fn(t)
        except _Bad as exc:
            return FrameError(f"{_OP_NAMES[op]}: {exc}", size=size, op=op)
        except Exception as exc:  # e.g. an unhashable pid triple: still just a bad frame
            return FrameError(f"{_OP_NAMES[op]}: {type(exc).__name__}: {exc}", size=size, op=op)

    def _pid(self, x: Any, what: str) -> Pid:
        # Cached by triple: the same pids recur on a link. A cached triple is
        # one that was valid; a numerically equal one (1.0 for 1) maps to it.
        p = self._pids.get(x)
        if p is None:
            if type(x) is tuple and len(x) == 3:
                n, i, c = x
                if _is_uint(n, _U32) and n and _is_uint(i, _U64) and _is_uint(c, _U32):
                    p = Pid._unchecked(n, i, c)
                    if len(self._pids) >= self._pid_cache_size:
                        self._pids.clear()
                    self._pids[x] = p
                    return p
            raise _Bad(f"{what} must be a pid [node>0, id, creation], got {_describe(x)}")
        return p

    def _route(self, x: Any) -> tuple[Pid | None, Pid]:
        """A SEND / SEND_TERMS route (``to``'s 16 bytes, then the sender's, if any) -> (sender, to)."""
        r = self._routes.get(x) if x.__class__ is bytes else None
        if r is not None:
            return r
        if x.__class__ is not bytes or len(x) not in (16, 32):
            raise _Bad(f"route must be a bin of 16 or 32 bytes (to, sender), got {_describe(x)}")
        to = self._route_pid(x, 0, "to")
        r = (self._route_pid(x, 16, "sender") if len(x) == 32 else None, to)
        if len(self._routes) >= self._pid_cache_size:
            self._routes.clear()
        self._routes[x] = r
        return r

    def _route_pid(self, x: bytes, offset: int, what: str) -> Pid:
        node, id_, creation = _IDENT.unpack_from(x, offset)
        if not node:
            raise _Bad(f"{what} in a route has node 0")
        return self._pid((node, id_, creation), what)

    def _opt_pid(self, x: Any, what: str) -> Pid | None:
        return None if x is None else self._pid(x, what)

    def _target(self, x: Any, what: str) -> Pid | str:
        return x if type(x) is str and x else self._pid(x, what)

    @staticmethod
    def _id(x: Any) -> int:
        if not _is_uint(x, _U64):
            raise _Bad(f"unlink id must be an int in 0..{_U64}, got {_describe(x)}")
        return x
