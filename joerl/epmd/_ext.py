"""joerl's extension to the port mapper protocol: opcode ``'J'``, msgpack maps (sans-IO).

Wire layout (every integer big-endian)::

    request: Len:16 | 'J'(74) | msgpack map         (Len <= 65535)
    reply:   'J'(74) | Len:32 | msgpack map         (one reply per request, in order)

Erlang's epmd does not know opcode ``'J'``: it closes such a connection
without a word, and that is how a client tells the two daemons apart.
Several extension requests may follow one another on one connection (the
registration's connection carries its keep-alives).

Each map has an ``"op"`` string and that op's fields (unknown keys are ignored).
A query with ``close: true`` asks the daemon to close the connection after the
reply, as it does for Erlang's one-shot requests (so the TIME_WAIT state stays
with the daemon, not with a client making many queries):

=============  ================================================  =====================================
request op     fields                                            reply op and fields
=============  ================================================  =====================================
``register``   name, host, port, metadata (map), and optional    ``registered``: node
               type, proto, high, low (ints), extra (bin),
               auth (bin: the cookie's HMAC, :mod:`._auth`)
``challenge``  (none)                                            ``challenge``: nonce (bin)
``unregister`` name                                              ``unregistered``: name, existed (bool)
``lookup``     name, close (optional bool)                       ``lookup``: node (map or nil)
``list``       close (optional bool)                             ``nodes``: nodes (array of maps)
``ping``       close (optional bool)                             ``pong``: daemon, version (str)
``keepalive``  name                                              ``keepalive_ack``
any            (refused)                                         ``error``: code, message (str)
=============  ================================================  =====================================

A *node* map is :meth:`NodeInfo.to_map <._node.NodeInfo.to_map>`: ``name,
host, port, metadata, creation, type, proto, high, low, extra`` and ``kind``
(``"joerl"`` for an extension registration, ``"erlang"`` for ALIVE2).
``host`` is ``""`` for an ALIVE2 registration: the node runs on the daemon's
host. Error codes: ``name_in_use``, ``invalid_name``, ``bad_request``,
``too_large``, ``not_allowed``, ``auth_failed``, ``already_registered``,
``not_registered``, ``unknown_op``; an error leaves the connection open. A
name may be a full ``alive@host`` (what a shared port mapper holds); a
registration from another host needs ``auth`` (see :mod:`._auth`). Metadata is plain data
only: nil, bool, int, float, str, bin, arrays and maps with str keys, at most
32 deep.

This module owns the request and reply types, their encoders,
:func:`decode_ext_body` (daemon side) and :class:`ExtReplyDecoder` (client side).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import msgpack

from ..errors import EpmdProtocolError, LocalProtocolError
from ._node import NodeInfo
from ._wire import (
    MAX_EXT_LEN,
    NODE_TYPE_NORMAL,
    U16,
    bin_field,
    bool_field,
    check_name,
    describe,
    int_field,
    metadata_field,
    str_field,
    unpack_map,
)

__all__ = [
    "OP_JOERL",
    "Challenge",
    "ChallengeReply",
    "ExtError",
    "ExtReply",
    "ExtReplyDecoder",
    "ExtRequest",
    "KeepAlive",
    "KeepAliveAck",
    "ListNodes",
    "Lookup",
    "LookupResult",
    "NodeList",
    "Ping",
    "Pong",
    "Register",
    "Registered",
    "UnknownExt",
    "Unregister",
    "Unregistered",
    "decode_ext_body",
]

OP_JOERL = 74  # 'J': joerl's extension


# -- joerl's extension: requests -----------------------------------------------


def _closing(body: dict[str, Any], close: bool) -> dict[str, Any]:
    if close:
        body["close"] = True
    return body


def _ext_request(body: dict[str, Any]) -> bytes:
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    if len(packed) + 1 > MAX_EXT_LEN:
        raise LocalProtocolError(f"request of {len(packed) + 1} bytes is over the {MAX_EXT_LEN} limit")
    return struct.pack(">HB", len(packed) + 1, OP_JOERL) + packed


@dataclass(frozen=True)
class Register:
    """Register ``name`` at ``host:port`` with ``metadata``, for as long as the
    connection lives and keep-alives arrive."""

    name: str
    host: str
    port: int
    metadata: dict[str, Any] = field(default_factory=dict)
    node_type: int = NODE_TYPE_NORMAL
    protocol: int = 0
    highest_version: int = 6
    lowest_version: int = 6
    extra: bytes = b""
    #: The cookie's HMAC (:func:`._auth.register_mac`); empty: none.
    auth: bytes = b""

    def encode(self) -> bytes:
        check_name(self.name, host_ok=True)
        auth = {"auth": self.auth} if self.auth else {}
        return _ext_request(
            {
                **auth,
                "op": "register",
                "name": self.name,
                "host": self.host,
                "port": self.port,
                "metadata": self.metadata,
                "type": self.node_type,
                "proto": self.protocol,
                "high": self.highest_version,
                "low": self.lowest_version,
                "extra": self.extra,
            }
        )


@dataclass(frozen=True)
class Unregister:
    """Unregister ``name`` (only the connection that registered it may)."""

    name: str

    def encode(self) -> bytes:
        return _ext_request({"op": "unregister", "name": self.name})


@dataclass(frozen=True)
class Lookup:
    """Full record of ``name``, host and metadata included. With ``close`` the
    daemon closes the connection after its reply (a one-shot query)."""

    name: str
    close: bool = False

    def encode(self) -> bytes:
        return _ext_request(_closing({"op": "lookup", "name": self.name}, self.close))


@dataclass(frozen=True)
class ListNodes:
    """Every registered node, joerl's and Erlang's, oldest first."""

    close: bool = False

    def encode(self) -> bytes:
        return _ext_request(_closing({"op": "list"}, self.close))


@dataclass(frozen=True)
class Ping:
    """Is this a joerl daemon? (Erlang's closes without a reply.)"""

    close: bool = False

    def encode(self) -> bytes:
        return _ext_request(_closing({"op": "ping"}, self.close))


@dataclass(frozen=True)
class KeepAlive:
    """The registration on this connection is alive."""

    name: str

    def encode(self) -> bytes:
        return _ext_request({"op": "keepalive", "name": self.name})


@dataclass(frozen=True)
class Challenge:
    """Ask for a nonce to authenticate a registration with (:mod:`._auth`)."""

    def encode(self) -> bytes:
        return _ext_request({"op": "challenge"})


@dataclass(frozen=True)
class UnknownExt:
    """A well-formed extension request with an op this daemon does not know."""

    op: str


# -- joerl's extension: replies --------------------------------------------------


def _ext_reply(body: dict[str, Any]) -> bytes:
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return struct.pack(">BI", OP_JOERL, len(packed)) + packed


@dataclass(frozen=True)
class Registered:
    node: NodeInfo

    def encode(self) -> bytes:
        return _ext_reply({"op": "registered", "node": self.node.to_map()})


@dataclass(frozen=True)
class Unregistered:
    name: str
    existed: bool

    def encode(self) -> bytes:
        return _ext_reply({"op": "unregistered", "name": self.name, "existed": self.existed})


@dataclass(frozen=True)
class LookupResult:
    node: NodeInfo | None

    def encode(self) -> bytes:
        return _ext_reply({"op": "lookup", "node": None if self.node is None else self.node.to_map()})


@dataclass(frozen=True)
class NodeList:
    nodes: tuple[NodeInfo, ...]

    def encode(self) -> bytes:
        return _ext_reply({"op": "nodes", "nodes": [n.to_map() for n in self.nodes]})


@dataclass(frozen=True)
class Pong:
    daemon: str = "joerl-epmd"
    version: str = ""

    def encode(self) -> bytes:
        return _ext_reply({"op": "pong", "daemon": self.daemon, "version": self.version})


@dataclass(frozen=True)
class KeepAliveAck:
    def encode(self) -> bytes:
        return _ext_reply({"op": "keepalive_ack"})


@dataclass(frozen=True)
class ChallengeReply:
    nonce: bytes

    def encode(self) -> bytes:
        return _ext_reply({"op": "challenge", "nonce": self.nonce})


@dataclass(frozen=True)
class ExtError:
    """The daemon refused an extension request; the connection stays open."""

    code: str
    message: str

    def encode(self) -> bytes:
        return _ext_reply({"op": "error", "code": self.code, "message": self.message})


ExtRequest = Register | Unregister | Lookup | ListNodes | Ping | KeepAlive | Challenge | UnknownExt
ExtReply = Registered | Unregistered | LookupResult | NodeList | Pong | KeepAliveAck | ChallengeReply | ExtError

# -- decoding ------------------------------------------------------------------


def decode_ext_body(body: bytes) -> ExtRequest:
    """Decode an extension request's msgpack map (the body after ``'J'``).

    Raises:
        EpmdProtocolError: not an extension request map (an unknown op is
            :class:`UnknownExt`, not an error).
    """
    m = unpack_map(body, "extension request")
    op = m["op"]
    if op == "register":
        return Register(
            name=str_field(m, "name"),
            host=str_field(m, "host", ""),
            port=int_field(m, "port", U16),
            metadata=metadata_field(m.get("metadata", {})),
            node_type=int_field(m, "type", 255, NODE_TYPE_NORMAL),
            protocol=int_field(m, "proto", 255, 0),
            highest_version=int_field(m, "high", U16, 6),
            lowest_version=int_field(m, "low", U16, 6),
            extra=bin_field(m, "extra", b""),
            auth=bin_field(m, "auth", b""),
        )
    if op == "challenge":
        return Challenge()
    if op == "unregister":
        return Unregister(str_field(m, "name"))
    if op == "lookup":
        return Lookup(str_field(m, "name"), bool_field(m, "close", False))
    if op == "list":
        return ListNodes(bool_field(m, "close", False))
    if op == "ping":
        return Ping(bool_field(m, "close", False))
    if op == "keepalive":
        return KeepAlive(str_field(m, "name", ""))
    return UnknownExt(op)


def _decode_ext_reply(body: bytes) -> ExtReply:
    m = unpack_map(body, "extension reply")
    op = m["op"]
    if op == "registered":
        return Registered(NodeInfo.from_map(m.get("node")))
    if op == "unregistered":
        return Unregistered(str_field(m, "name"), bool_field(m, "existed"))
    if op == "lookup":
        node = m.get("node")
        return LookupResult(None if node is None else NodeInfo.from_map(node))
    if op == "nodes":
        nodes = m.get("nodes")
        if not isinstance(nodes, list):
            raise EpmdProtocolError("field 'nodes' must be an array")
        return NodeList(tuple(NodeInfo.from_map(n) for n in nodes))
    if op == "pong":
        return Pong(str_field(m, "daemon", ""), str_field(m, "version", ""))
    if op == "keepalive_ack":
        return KeepAliveAck()
    if op == "challenge":
        return ChallengeReply(bin_field(m, "nonce"))
    if op == "error":
        return ExtError(str_field(m, "code"), str_field(m, "message", ""))
    raise EpmdProtocolError(f"unknown extension reply op {describe(op)}")


class ExtReplyDecoder:
    """Client side: bytes of an extension connection -> replies.

    Args:
        max_len: largest reply body accepted (a list of many nodes is big).
    """

    def __init__(self, max_len: int = 64 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self._max = max_len
        self._error: EpmdProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received that are not part of a returned reply."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[ExtReply]:
        """Add received bytes; return the replies they complete.

        Raises:
            EpmdProtocolError: the bytes are not extension replies.
        """
        if self._error is not None:
            raise self._error
        self._buf += data
        out: list[ExtReply] = []
        try:
            while len(self._buf) >= 5:
                if self._buf[0] != OP_JOERL:
                    raise EpmdProtocolError(f"extension reply starts with {self._buf[0]}, not {OP_JOERL}")
                (n,) = struct.unpack_from(">I", self._buf, 1)
                if n > self._max:
                    raise EpmdProtocolError(f"extension reply of {n} bytes is over {self._max}")
                if len(self._buf) < n + 5:
                    break
                body = bytes(self._buf[5 : n + 5])
                del self._buf[: n + 5]
                out.append(_decode_ext_reply(body))
        except EpmdProtocolError as exc:
            self._error = exc
            raise
        return out
