"""Erlang's distribution handshake, version 6 (OTP 23+), as a sans-IO engine.

Wire layout: every handshake message is ``Len:16 | Payload``; after the
handshake, frames are ``Len:32 | Payload`` (``control.py``)::

    initiator A (dials)                                   acceptor B (listens)
    'N' Flags:64 Creation:32 Nlen:16 Name            -->
                                                     <--  's' Status  (ok, ok_simultaneous,
                                                          nok, not_allowed, alive)
    ('s' "true" | "false", only after "alive")       -->
                                                     <--  'N' Flags:64 Challenge:32 Creation:32
                                                          Nlen:16 Name
    'r' ChallengeA:32 Digest:16                      -->
                                                     <--  'a' Digest:16

    Digest = md5(Cookie ++ integer_to_list(PeerChallenge)): the challenge as
    an unsigned decimal string. (Weaker than joerl's HMAC-SHA256 over the
    whole exchange: docs/erlang.md, "Security".)

This module owns :class:`ErlangHandshake` (either role: feed bytes, get
events, send ``data_to_send()``), its events :class:`NameReceived` and
:class:`Connected`, :func:`digest`, and :func:`detect_protocol`, which tells
an Erlang dialler from a joerl one by its first three bytes so that one
listening port serves both. Opens no socket, imports no gevent.
"""

from __future__ import annotations

import enum
import hmac
import secrets
import struct
from collections.abc import Callable
from hashlib import md5
from typing import Any, NamedTuple

from ..errors import (
    AuthenticationError,
    HandshakeError,
    HandshakeProtocolError,
    HandshakeRefused,
    LocalProtocolError,
    SimultaneousConnect,
)
from .dflags import DEFAULT_FLAGS, REQUIRED_FLAGS, effective, flag_names, missing_flags

__all__ = [
    "ERLANG",
    "JOERL",
    "UNKNOWN",
    "Connected",
    "ErlangHandshake",
    "HandshakeEvent",
    "NameReceived",
    "Role",
    "detect_protocol",
    "digest",
]

#: Largest handshake message accepted (a name is at most 255 characters).
MAX_MESSAGE = 2048
_name_msg = struct.Struct(">cQIH")  # 'N', Flags, Creation, Nlen
_challenge_msg = struct.Struct(">cQIIH")  # 'N', Flags, Challenge, Creation, Nlen
_reply_msg = struct.Struct(">cI16s")  # 'r', Challenge, Digest

ERLANG = "erlang"
JOERL = "joerl"
UNKNOWN = "unknown"


def detect_protocol(first: bytes) -> str | None:
    """Which handshake a dialler speaks, from the first bytes it sent.

    The rule: both handshakes open with ``Len:16``. Erlang's payload then
    starts with ``'N'`` (0x4E; ``'n'``, 0x6E, for the old version 5); joerl's
    is a msgpack map, whose first byte is 0x80..0x8F (fixmap) or 0xDE/0xDF
    (map 16/32). No byte is both.

    Args:
        first: the bytes received so far on a new connection.

    Returns:
        :data:`ERLANG`, :data:`JOERL`, :data:`UNKNOWN` (neither: close), or
        None while fewer than three bytes have arrived.
    """
    if len(first) < 3:
        return None
    b = first[2]
    if b in (0x4E, 0x6E):
        return ERLANG
    if 0x80 <= b <= 0x8F or b in (0xDE, 0xDF):
        return JOERL
    return UNKNOWN


def digest(cookie: bytes, challenge: int) -> bytes:
    """Erlang's challenge digest: ``md5(cookie + str(challenge))`` (16 bytes)."""
    return md5(cookie + str(challenge).encode("ascii")).digest()


class Role(enum.Enum):
    """Which end of the connection: the one that dialled, or the one that listened."""

    INITIATOR = "initiator"
    ACCEPTOR = "acceptor"


class _State(enum.Enum):
    AWAIT_NAME = "await_name"  # acceptor: waiting for 'N'
    AWAIT_DECISION = "await_decision"  # acceptor: NameReceived returned
    AWAIT_ALIVE_ANSWER = "await_alive_answer"  # acceptor: sent "alive"
    AWAIT_REPLY = "await_reply"  # acceptor: challenge sent
    AWAIT_STATUS = "await_status"  # initiator: name sent
    AWAIT_CHALLENGE = "await_challenge"  # initiator: status ok
    AWAIT_ACK = "await_ack"  # initiator: reply sent
    DONE = "done"
    CLOSED = "closed"


class NameReceived(NamedTuple):
    """(acceptor) A peer sent its name and passed the built-in checks:
    answer with :meth:`ErlangHandshake.accept` or :meth:`~ErlangHandshake.refuse`."""

    name: str
    flags: int
    creation: int


class Connected(NamedTuple):
    """The handshake succeeded.

    Attributes:
        peer: the peer's full node name (``"e1@host"``).
        peer_flags: the flags it offered.
        peer_creation: its creation (stamped on its pids and references).
        flags: the flags in use: ours AND the peer's.
        leftover: bytes received after the handshake: ``Len:32`` frames, feed
            them to the frame decoder first.
    """

    peer: str
    peer_flags: int
    peer_creation: int
    flags: int
    leftover: bytes


HandshakeEvent = NameReceived | Connected


class ErlangHandshake:
    """The version 6 handshake for one connection, for either role.

    Feed it what the peer sends (:meth:`feed`) and write what
    :meth:`data_to_send` returns. The initiator's name message is ready in
    ``data_to_send()`` at once. The acceptor stops at :class:`NameReceived`:
    the node answers with :meth:`accept` (telling whether it is dialling that
    peer itself, or already connected to it) or :meth:`refuse`. When
    ``feed`` raises, send ``data_to_send()`` and close; when the peer closes
    first, :meth:`closed_error` says what that means.

    Built-in checks: the peer offers every flag of ``required_flags``
    (else ``not_allowed``), its name has the form ``name@host``, the
    acceptor's name is the ``expected_peer`` the initiator dialled, and the
    cookie digests match (a wrong cookie is refused on both sides).

    Args:
        role: ``Role.INITIATOR`` or ``Role.ACCEPTOR``.
        name: our full node name, ``"py@host"`` (short or long form, as the
            peer will dial it).
        cookie: the shared secret (a str is UTF-8 encoded).
        creation: our 32-bit creation (from the port mapper).
        flags: the flags we offer.
        required_flags: the flags a peer must offer.
        expected_peer: (initiator) the full name we dialled.
        random_u32: the source of our challenge (injected for byte vectors).

    Raises:
        ValueError: an invalid argument.
    """

    def __init__(
        self,
        role: Role,
        name: str,
        cookie: bytes | str,
        creation: int,
        *,
        flags: int = DEFAULT_FLAGS,
        required_flags: int = REQUIRED_FLAGS,
        expected_peer: str | None = None,
        random_u32: Callable[[], int] = lambda: secrets.randbits(32),
    ) -> None:
        if not isinstance(role, Role):
            raise ValueError(f"role must be a Role, got {role!r}")
        problem = _name_problem(name)
        if problem:
            raise ValueError(f"our node name {name!r} {problem}")
        self._cookie = cookie.encode("utf-8") if isinstance(cookie, str) else bytes(cookie)
        if not self._cookie:
            raise ValueError("the cookie must not be empty")
        if not 0 <= creation <= 0xFFFFFFFF or not 0 <= flags < 1 << 64:
            raise ValueError("creation must be a u32 and flags a u64")
        if role is Role.INITIATOR and not expected_peer:
            raise ValueError("the initiator needs expected_peer, the full name it dials")
        self.role = role
        self.name = name
        self.creation = creation
        self.flags = flags
        self.required_flags = required_flags
        self.expected_peer = expected_peer
        #: The peer's name message (acceptor) or challenge (initiator) once received.
        self.peer: NameReceived | None = None
        #: The status sent (acceptor) or received (initiator).
        self.status: str | None = None
        self._challenge = random_u32() & 0xFFFFFFFF
        self._peer_challenge: int | None = None
        self._in = bytearray()
        self._out = bytearray()
        if role is Role.INITIATOR:
            raw = name.encode("utf-8")
            self._send(_name_msg.pack(b"N", flags, creation, len(raw)) + raw)
            self.state = _State.AWAIT_STATUS
        else:
            self.state = _State.AWAIT_NAME

    # -- public API ------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """The bytes to write to the peer now (and forget them)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def done(self) -> bool:
        """True once :class:`Connected` was returned."""
        return self.state is _State.DONE

    def feed(self, data: bytes) -> list[HandshakeEvent]:
        """Take bytes from the peer; return the events they complete.

        Processing stops at :class:`NameReceived` (answer it, then call
        ``feed(b"")``) and at :class:`Connected`.

        Raises:
            HandshakeProtocolError: malformed or unexpected bytes.
            HandshakeRefused: refused by the peer or by a built-in check
                (:class:`~joerl.errors.SimultaneousConnect` for ``nok``).
            AuthenticationError: the cookie digests differ.
            LocalProtocolError: the handshake is already over.
        """
        if self.state in (_State.DONE, _State.CLOSED):
            raise LocalProtocolError(f"the handshake is {self.state.value}; it takes no more bytes")
        self._in += data
        events: list[HandshakeEvent] = []
        try:
            while not self._paused():
                msg = self._next_message()
                if msg is None:
                    break
                event = self._handle(msg)
                if event is not None:
                    events.append(event)
                if self._paused():
                    break
        except BaseException:
            self.state = _State.CLOSED
            raise
        return events

    def accept(self, *, dialing: bool = False, connected: bool = False) -> str:
        """(acceptor) Go on after :class:`NameReceived`; return the status sent.

        Args:
            dialing: we are dialling this peer ourselves (simultaneous
                connect). As Erlang decides: if our name is greater, we answer
                ``nok`` (this handshake ends, state closed; keep our dial),
                else ``ok_simultaneous`` (go on; give our own dial up).
            connected: we already have a connection to a node of this name:
                we answer ``alive``, and the peer says whether to go on (the
                node then drops the old connection) or give up.

        Raises:
            LocalProtocolError: no decision is pending.
        """
        peer = self._pending()
        if connected:
            status = "alive"
        elif dialing and self.name > peer.name:
            status = "nok"
        else:
            status = "ok_simultaneous" if dialing else "ok"
        self.status = status
        self._send(b"s" + status.encode("ascii"))
        if status == "alive":
            self.state = _State.AWAIT_ALIVE_ANSWER
        elif status == "nok":
            self.state = _State.CLOSED
        else:
            self._send_challenge()
        return status

    def refuse(self) -> None:
        """(acceptor) Refuse the peer after :class:`NameReceived` (``not_allowed``).

        Raises:
            LocalProtocolError: no decision is pending.
        """
        self._pending()
        self._send(b"snot_allowed")
        self.status = "not_allowed"
        self.state = _State.CLOSED

    def closed_error(self) -> HandshakeError:
        """The error that the peer closing the connection now means."""
        peer = self.peer.name if self.peer else self.expected_peer
        if self.state is _State.AWAIT_ACK:
            return AuthenticationError(
                f"node {peer!r} closed the connection after our challenge reply: our cookie is not its cookie"
            )
        return HandshakeProtocolError(f"node {peer!r} closed the connection during the handshake ({self.state.value})")

    # -- internals -------------------------------------------------------------------

    def _send(self, payload: bytes) -> None:
        self._out += _frame(payload)

    def _send_challenge(self) -> None:
        raw = self.name.encode("utf-8")
        self._send(_challenge_msg.pack(b"N", self.flags, self._challenge, self.creation, len(raw)) + raw)
        self.state = _State.AWAIT_REPLY

    def _paused(self) -> bool:
        return self.state in (_State.DONE, _State.AWAIT_DECISION)

    def _pending(self) -> NameReceived:
        if self.state is not _State.AWAIT_DECISION or self.peer is None:
            raise LocalProtocolError(f"no decision is pending (state {self.state.value})")
        return self.peer

    def _next_message(self) -> bytes | None:
        buf = self._in
        if len(buf) < 2:
            return None
        size = int.from_bytes(buf[:2], "big")
        if not 1 <= size <= MAX_MESSAGE:
            raise HandshakeProtocolError(f"handshake message of {size} bytes (1..{MAX_MESSAGE} allowed)")
        if len(buf) < 2 + size:
            return None
        msg = bytes(buf[2 : 2 + size])
        del buf[: 2 + size]
        return msg

    def _handle(self, msg: bytes) -> HandshakeEvent | None:
        kind, state = msg[:1], self.state
        if state is _State.AWAIT_NAME and kind == b"N":
            return self._on_name(msg)
        if state is _State.AWAIT_NAME and kind == b"n":
            raise HandshakeProtocolError("the peer speaks the handshake version 5 ('n'); only version 6 is supported")
        if state is _State.AWAIT_ALIVE_ANSWER and kind == b"s":
            if msg[1:] == b"true":
                self._send_challenge()
                return None
            if msg[1:] == b"false":
                raise HandshakeRefused("alive", "the peer kept its other connection", peer=self._peer_name())
        if state is _State.AWAIT_REPLY and kind == b"r":
            return self._on_reply(msg)
        if state is _State.AWAIT_STATUS and kind == b"s":
            self._on_status(msg[1:].decode("latin-1"))
            return None
        if state is _State.AWAIT_CHALLENGE and kind == b"N":
            self._on_challenge(msg)
            return None
        if state is _State.AWAIT_ACK and kind == b"a":
            if len(msg) != 17:
                raise HandshakeProtocolError(f"challenge_ack of {len(msg)} bytes, not 17")
            if not hmac.compare_digest(msg[1:], digest(self._cookie, self._challenge)):
                raise AuthenticationError(
                    f"node {self._peer_name()!r} failed the cookie challenge: its cookie is not ours; connection refused"
                )
            return self._connected()
        raise HandshakeProtocolError(f"unexpected handshake message {kind!r} ({len(msg)} bytes) in state {state.value}")

    def _peer_name(self) -> str | None:
        return self.peer.name if self.peer else self.expected_peer

    def _parse_name(self, msg: bytes, head: struct.Struct) -> tuple[tuple[int, ...], str]:
        if len(msg) < head.size:
            raise HandshakeProtocolError(f"handshake message 'N' of {len(msg)} bytes is too short")
        fields = head.unpack_from(msg)
        nlen = fields[-1]
        raw = msg[head.size : head.size + nlen]  # trailing bytes are ignored, as Erlang does
        if len(raw) != nlen:
            raise HandshakeProtocolError(f"the node name is cut short: {len(raw)} of {nlen} bytes")
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise HandshakeProtocolError("the node name is not valid UTF-8") from None
        problem = _name_problem(name)
        if problem:
            raise HandshakeProtocolError(f"the peer's node name {name!r} {problem}")
        return fields[1:-1], name

    def _check_flags(self, name: str, flags: int) -> None:
        missing = missing_flags(flags, self.required_flags)
        if missing:
            if self.role is Role.ACCEPTOR:
                self._send(b"snot_allowed")
            raise HandshakeRefused(
                "not_allowed",
                f"it cannot handle {flag_names(missing)} (offers {effective(flags):#x})",
                peer=name,
                by_peer=False,
            )

    def _on_name(self, msg: bytes) -> NameReceived:
        (flags, creation), name = self._parse_name(msg, _name_msg)
        self.peer = NameReceived(name, flags, creation)
        self._check_flags(name, flags)
        self.state = _State.AWAIT_DECISION
        return self.peer

    def _on_status(self, status: str) -> None:
        self.status = status
        peer = self.expected_peer
        if status in ("ok", "ok_simultaneous"):
            self.state = _State.AWAIT_CHALLENGE
            return
        if status == "alive":  # we are dialling it: its connection is a stale one
            self._send(b"strue")
            self.state = _State.AWAIT_CHALLENGE
            return
        if status == "nok":
            raise SimultaneousConnect("nok", "simultaneous connect: the peer's own dial survives", peer=peer)
        if status == "not_allowed":
            raise HandshakeRefused(
                "not_allowed", "it lacks a flag we offer, or does not allow our name", peer=peer, by_peer=True
            )
        raise HandshakeProtocolError(f"unexpected handshake status {status!r} from {peer!r}")

    def _on_challenge(self, msg: bytes) -> None:
        (flags, challenge, creation), name = self._parse_name(msg, _challenge_msg)
        if name != self.expected_peer:
            raise HandshakeRefused("not_allowed", f"dialled {self.expected_peer!r} but {name!r} answered", peer=name)
        self.peer = NameReceived(name, flags, creation)
        self._check_flags(name, flags)
        self._send(_reply_msg.pack(b"r", self._challenge, digest(self._cookie, challenge)))
        self.state = _State.AWAIT_ACK

    def _on_reply(self, msg: bytes) -> Connected:
        if len(msg) != _reply_msg.size:
            raise HandshakeProtocolError(f"challenge_reply of {len(msg)} bytes, not {_reply_msg.size}")
        _, their_challenge, their_digest = _reply_msg.unpack(msg)
        if not hmac.compare_digest(their_digest, digest(self._cookie, self._challenge)):
            raise AuthenticationError(
                f"node {self._peer_name()!r} failed the cookie challenge: its cookie is not ours; connection refused"
            )
        self._send(b"a" + digest(self._cookie, their_challenge))
        return self._connected()

    def _connected(self) -> Connected:
        assert self.peer is not None
        self.state = _State.DONE
        leftover = bytes(self._in)
        self._in.clear()
        peer = self.peer
        return Connected(peer.name, peer.flags, peer.creation, self.flags & effective(peer.flags), leftover)


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(2, "big") + payload


def _name_problem(name: Any) -> str | None:
    if not isinstance(name, str):
        return "is not a str"
    alive, at, host = name.partition("@")
    if not at or not alive or not host or "@" in host:
        return "must have the form name@host"
    if len(name) > 255:
        return "is longer than 255 characters"
    return None
