"""The handshake's messages: HELLO, its fields and flags, statuses, framing (sans-IO).

Wire layout: each handshake message is ``Len:16 | Body`` with
``1 <= Len <= 4096`` and Body a msgpack map with a ``"t"`` (type) string;
unknown keys are ignored::

    HELLO   {t:"hello", v, vmin, name, id, creation, incarnation, flags, challenge, tick_ms, max_frame[, compress]}
    STATUS  {t:"status", status, reason[, versions]}
    REPLY   {t:"reply", mac}       ACK {t:"ack", mac}
    ABORT   {t:"abort", status, reason[, versions]}

``v``/``vmin``: the highest and lowest protocol versions the sender speaks
(``vmin`` absent: ``v`` only). ``incarnation``: a random 64-bit id, new at
every start of a node (absent or 0 before version 3: unknown). ``versions``:
``[vmin, v]`` of the sender of a ``not_allowed`` refusal for versions that
do not overlap, so that the refused side can say so
(:class:`IncompatibleVersion`). ``max_frame``: the largest frame body the
sender accepts, its one message-size limit (its decoding limits match it).
``compress`` (protocol 3, optional): the frame compression codecs the
sender accepts, most preferred first (``compression.py``); absent: none.

This module owns what those messages hold: the protocol versions, the
``FLAG_*`` capabilities, the ``STATUS_*`` answers, the identities exchanged
(:class:`NodeIdentity`, :class:`PeerHello` and :func:`parse_hello`), the
node's :class:`Verdict` on a HELLO, the simultaneous-connect rule
(:func:`dial_survives`), the refusal errors (:func:`refusal_error`) and the
``Len:16`` framing (:func:`pack_message`, :func:`next_message`). The order of
the messages, the challenges and the MACs are the engine's, ``handshake.py``;
the full specification is ``joerl/node/protocol.py``'s docstring. Opens no
socket, imports no gevent; import these names from :mod:`joerl.node.protocol`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, NamedTuple

import msgpack

from .._describe import describe as _describe
from ..errors import (
    HandshakeProtocolError,
    HandshakeRefused,
    IncompatibleVersion,
    NodeIdCollision,
    SimultaneousConnect,
)
from .compression import parse_offer
from .config import new_incarnation
from .frames import DEFAULT_MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE
from .messages import U32, U64, is_uint

__all__ = [
    "ACCEPT",
    "DEFAULT_FLAGS",
    "DEFAULT_TICK_MS",
    "FLAG_ACK",
    "FLAG_CALL",
    "FLAG_TERM_MAPS",
    "HIDDEN_FLAGS",
    "DIALING",
    "IncompatibleVersion",
    "MIN_MAX_FRAME_SIZE",
    "NodeIdentity",
    "PeerHello",
    "Verdict",
    "check_name",
    "dial_survives",
    "mac_field",
    "next_message",
    "pack_message",
    "parse_hello",
    "refusal_error",
    "status_fields",
]

#: 3: HELLO carries the incarnation id and the lowest version spoken (vmin),
#: refusals for versions carry both sides' ranges. 2: SEND names its pids in
#: a route, and SEND_TERMS (1 was this release's first draft). The promise
#: between joerl versions is docs/distribution.md's "Compatibility".
PROTOCOL_VERSION = 3
MIN_PROTOCOL_VERSION = 3

#: Erlang's net_ticktime default: 60 s.
DEFAULT_TICK_MS = 60_000
MAX_HANDSHAKE_FRAME = 4096
MAX_NAME_BYTES = 255
CHALLENGE_MIN, CHALLENGE_MAX = 16, 64
DEFAULT_CHALLENGE_SIZE = 32

# Capability flags (u64). Those in use on a link are the AND of both sides'.
#: A visible node. A hidden node (``DistributedSystem(hidden=True)``, as the
#: CLI and the observer join) clears it in its HELLO, so the AND of both
#: sides lacks it: both see the link as hidden (left out of ``nodes()``,
#: connect-all and global-name sync). A peer older than hidden nodes ignores it.
FLAG_PUBLISHED = 0x01
FLAG_LINKS = 0x02  #: LINK / UNLINK / EXIT / EXIT2
FLAG_MONITORS = 0x04  #: MONITOR / DEMONITOR / DOWN, by pid or by name
FLAG_SPAWN = 0x08  #: SPAWN_REQUEST / SPAWN_REPLY
FLAG_ALIVE = 0x10  #: ALIVE_REQUEST / ALIVE_REPLY
FLAG_UNLINK_ACK = 0x20  #: UNLINK carries an id answered by UNLINK_ACK
FLAG_CALL_REPLY = 0x40  #: CALL_REPLY
FLAG_SEND_TERMS = 0x80  #: SEND_TERMS
#: ACK: the receiver acknowledges the messages it took off the link, so that
#: the sender reports those unconfirmed when the link goes down (a peer older
#: than it ignores it: no ACK, nothing reported on that link).
FLAG_ACK = 0x100
#: CALL: a remote call's MONITOR and SEND in one frame, its monitor dropped
#: by the server's node as the reply goes out (CALL_REPLY ``released``).
FLAG_CALL = 0x200
DEFAULT_FLAGS = 0x3FF
#: SEND_TERMS may carry flat dicts (str or bin keys, scalar values) as plain
#: terms; a peer older than it gets them in SEND frames, through the codec.
FLAG_TERM_MAPS = 0x400
DEFAULT_FLAGS |= FLAG_TERM_MAPS
HIDDEN_FLAGS = DEFAULT_FLAGS & ~FLAG_PUBLISHED  #: what a hidden node offers

STATUS_OK = "ok"
STATUS_OK_SIMULTANEOUS = "ok_simultaneous"
STATUS_NOK = "nok"
STATUS_BUSY = "busy"
STATUS_NOT_ALLOWED = "not_allowed"
STATUS_ID_COLLISION = "id_collision"
STATUS_AUTH_FAILED = "auth_failed"  # ABORT only
OK_STATUSES = frozenset({STATUS_OK, STATUS_OK_SIMULTANEOUS})
REFUSALS = frozenset({STATUS_NOK, STATUS_BUSY, STATUS_NOT_ALLOWED, STATUS_ID_COLLISION})


def check_name(name: Any, what: str) -> str | None:
    """The problem with a node name (1..255 bytes of UTF-8, printable), or None when it is fine."""
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
        creation: its incarnation number, 0..2**32-1, which its pids carry
            (``joerl.node.config.choose_creation``).
        flags: the ``FLAG_*`` capabilities it offers.
        incarnation: a 64-bit id of this start of the node, 1..2**64-1;
            random by default (``joerl.node.config.new_incarnation``). A peer
            that sees another incarnation id under the same name knows the
            node restarted, even if the creation happens to be the same.

    Raises:
        ValueError: a field is out of range.
    """

    name: str
    node_id: int
    creation: int = 0
    flags: int = DEFAULT_FLAGS
    incarnation: int = field(default_factory=new_incarnation)

    def __post_init__(self) -> None:
        problem = check_name(self.name, "node name")
        if problem:
            raise ValueError(problem)
        if not is_uint(self.node_id, U32) or self.node_id == 0:
            raise ValueError(f"node_id must be an int in 1..{U32}, got {_describe(self.node_id)}")
        if not is_uint(self.creation, U32):
            raise ValueError(f"creation must be an int in 0..{U32}, got {_describe(self.creation)}")
        if not is_uint(self.flags, U64):
            raise ValueError(f"flags must be an int in 0..{U64}, got {_describe(self.flags)}")
        if not is_uint(self.incarnation, U64) or self.incarnation == 0:
            raise ValueError(f"incarnation must be an int in 1..{U64}, got {_describe(self.incarnation)}")


@dataclass(frozen=True)
class PeerHello:
    """What the peer announced in its HELLO.

    ``version`` and ``min_version`` are the range of protocol versions it
    speaks; ``incarnation`` its 64-bit incarnation id (0: not sent);
    ``compression`` the frame codecs it accepts, most preferred first (the
    names this node knows of its ``compress`` offer; see ``compression.py``).
    """

    name: str
    node_id: int
    creation: int
    flags: int
    version: int
    tick_ms: int
    max_frame: int
    incarnation: int = 0
    min_version: int = 0
    compression: tuple[str, ...] = ()


def peer_versions(msg: dict[str, Any]) -> tuple[int, int] | None:
    """The ``versions`` ``[low, high]`` a refusal carries, or None (absent or malformed)."""
    versions = msg.get("versions")
    if (
        isinstance(versions, list)
        and len(versions) == 2
        and all(is_uint(v, U32) for v in versions)
        and 1 <= versions[0] <= versions[1]
    ):
        return versions[0], versions[1]
    return None


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


_LEN16 = struct.Struct(">H")
_MAC_SIZE = sha256().digest_size


def pack_message(body: dict[str, Any]) -> bytes:
    """A handshake message: ``Len:16 | msgpack(body)``."""
    raw: bytes = msgpack.packb(body, use_bin_type=True)
    return _LEN16.pack(len(raw)) + raw


def next_message(buf: bytearray) -> tuple[bytes, dict[str, Any]] | None:
    """Take the first whole message off ``buf``: (its bytes as received, its body),
    or None while it is incomplete.

    Raises:
        HandshakeProtocolError: a bad length, an undecodable body, or one
            that is not a map with a type ``t``.
    """
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


def status_fields(msg: dict[str, Any]) -> tuple[str, str]:
    """STATUS's or ABORT's (status, reason), the reason cut to 1000 characters.

    Raises:
        HandshakeProtocolError: either is not a str.
    """
    status, reason = msg.get("status"), msg.get("reason", "")
    if not isinstance(status, str) or not isinstance(reason, str):
        raise HandshakeProtocolError("handshake status must be a str with a str reason")
    return status, reason[:1000]


def mac_field(msg: dict[str, Any]) -> bytes:
    """REPLY's or ACK's MAC.

    Raises:
        HandshakeProtocolError: it is not 32 bytes.
    """
    mac = msg.get("mac")
    if not isinstance(mac, bytes) or len(mac) != _MAC_SIZE:
        raise HandshakeProtocolError("handshake MAC must be 32 bytes")
    return mac


def parse_hello(msg: dict[str, Any]) -> PeerHello:
    """The fields of a HELLO message, checked.

    Raises:
        HandshakeProtocolError: a field is missing or out of range.
    """
    v: Any = msg.get("v")
    name: Any = msg.get("name")
    nid: Any = msg.get("id")
    creation: Any = msg.get("creation")
    flags: Any = msg.get("flags")
    challenge: Any = msg.get("challenge")
    tick_ms: Any = msg.get("tick_ms", 0)
    max_frame: Any = msg.get("max_frame", DEFAULT_MAX_FRAME_SIZE)
    incarnation: Any = msg.get("incarnation", 0)
    if not is_uint(v, U32) or v == 0:
        raise HandshakeProtocolError(f"HELLO version must be a positive int, got {_describe(v)}")
    vmin: Any = msg.get("vmin", v)
    if not is_uint(vmin, U32) or not 1 <= vmin <= v:
        raise HandshakeProtocolError(f"HELLO vmin must be an int in 1..{v} (its v), got {_describe(vmin)}")
    problem = check_name(name, "HELLO name")
    if problem:
        raise HandshakeProtocolError(problem)
    if not is_uint(nid, U32) or nid == 0:
        raise HandshakeProtocolError(f"HELLO node id must be an int in 1..{U32}, got {_describe(nid)}")
    if not is_uint(creation, U32):
        raise HandshakeProtocolError(f"HELLO creation must be an int in 0..{U32}, got {_describe(creation)}")
    if not is_uint(flags, U64):
        raise HandshakeProtocolError(f"HELLO flags must be an int in 0..{U64}, got {_describe(flags)}")
    if not isinstance(challenge, bytes) or not CHALLENGE_MIN <= len(challenge) <= CHALLENGE_MAX:
        raise HandshakeProtocolError(f"HELLO challenge must be {CHALLENGE_MIN}..{CHALLENGE_MAX} bytes")
    if not is_uint(tick_ms, U32):
        raise HandshakeProtocolError(f"HELLO tick_ms must be an int in 0..{U32}, got {_describe(tick_ms)}")
    if not is_uint(max_frame, U32) or max_frame < MIN_MAX_FRAME_SIZE:
        raise HandshakeProtocolError(f"HELLO max_frame must be an int in {MIN_MAX_FRAME_SIZE}..{U32}")
    if not is_uint(incarnation, U64):
        raise HandshakeProtocolError(f"HELLO incarnation must be an int in 0..{U64}, got {_describe(incarnation)}")
    try:
        compression = parse_offer(msg.get("compress"))
    except ValueError as exc:
        raise HandshakeProtocolError(f"HELLO {exc}") from None
    return PeerHello(name, nid, creation, flags, v, tick_ms, max_frame, incarnation, vmin, compression)
