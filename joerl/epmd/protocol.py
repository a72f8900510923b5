"""EPMD wire protocol: a sans-IO codec for Erlang's port mapper and joerl's extension.

This module owns the bytes: the request and reply types, their encoders, and
incremental decoders that turn received bytes into those types. It opens no
socket and imports no gevent; ``server.py`` and ``client.py`` do the IO.

Wire layout (every integer big-endian)
======================================

Every request, Erlang's and joerl's, has the same framing::

    Len:16 | Body            Len bytes; Body[0] is the opcode

Erlang's requests. One request per connection: the daemon answers and closes,
except after ALIVE2, whose connection *is* the registration.

=================  ====================================================================
request            body, and the reply (replies have no length prefix)
=================  ====================================================================
ALIVE2_REQ         ``'x'(120) PortNo:16 NodeType:8 Protocol:8 Highest:16 Lowest:16
                   Nlen:16 Name Elen:16 Extra``
                   -> ``'v'(118) Result:8 Creation:32`` (ALIVE2_X_RESP) if Highest >= 6,
                   else ``'y'(121) Result:8 Creation:16`` (ALIVE2_RESP). Result 0 is ok;
                   a refusal is Result 1, Creation 99. The name lives as long as the
                   connection; any byte the node sends afterwards ends it.
PORT_PLEASE2_REQ   ``'z'(122) Name`` (to the end of the body; one trailing NUL allowed)
                   -> hit ``'w'(119) 0 PortNo:16 NodeType:8 Protocol:8 Highest:16
                   Lowest:16 Nlen:16 Name Elen:16 Extra``; miss ``'w' 1``
NAMES_REQ          ``'n'(110)`` -> ``EpmdPort:32`` then ``name <Name> at port <Port>\\n``
                   per node, newest first, then close
DUMP_REQ           ``'d'(100)`` -> ``EpmdPort:32`` then NUL-terminated lines
                   ``active name     <Name> at port P, fd = F\\n\\0`` and
                   ``old/unused name <Name>, port = P, fd = F \\n\\0``, then close
KILL_REQ           ``'k'(107)`` -> ``OK`` (the daemon exits) or ``NO`` (names live)
STOP_REQ           ``'s'(115) Name`` -> ``STOPPED`` or ``NOEXIST`` (relaxed mode only)
=================  ====================================================================

Limits taken from epmd: ``Len`` must be 1..3057 for these requests; Extra at
most 1020 bytes. joerl's names are 1..255 bytes of UTF-8 with no NUL and no
``@`` (:func:`check_name`).

joerl's extension uses opcode ``'J'`` (74), which epmd does not know: epmd
closes such a connection without a word, and that is how a client tells the
two daemons apart. Several extension requests may follow one another on one
connection (the registration's connection carries its keep-alives)::

    request: Len:16 | 'J' | msgpack map            (Len <= 65535)
    reply:   'J' | Len:32 | msgpack map            (one reply per request, in order)

Each map has an ``"op"`` string and that op's fields (unknown keys are ignored).
A query with ``close: true`` asks the daemon to close the connection after the
reply, as it does for Erlang's one-shot requests (so the TIME_WAIT state stays
with the daemon, not with a client making many queries):

=============  ================================================  =====================================
request op     fields                                            reply op and fields
=============  ================================================  =====================================
``register``   name, host, port, metadata (map), and optional    ``registered``: node
               type, proto, high, low (ints), extra (bin)
``unregister`` name                                              ``unregistered``: name, existed (bool)
``lookup``     name, close (optional bool)                       ``lookup``: node (map or nil)
``list``       close (optional bool)                             ``nodes``: nodes (array of maps)
``ping``       close (optional bool)                             ``pong``: daemon, version (str)
``keepalive``  name                                              ``keepalive_ack``
any            (refused)                                         ``error``: code, message (str)
=============  ================================================  =====================================

A *node* map has ``name, host, port, metadata, creation, type, proto, high,
low, extra`` and ``kind`` (``"joerl"`` for an extension registration,
``"erlang"`` for ALIVE2). ``host`` is ``""`` for an ALIVE2 registration: the
node runs on the daemon's host. Error codes: ``name_in_use``,
``invalid_name``, ``bad_request``, ``too_large``, ``not_allowed``,
``already_registered``, ``not_registered``, ``unknown_op``; an error leaves
the connection open. Metadata is plain data only: nil, bool, int, float,
str, bin, arrays and maps with str keys, at most 32 deep.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Any

import msgpack

from .._describe import describe
from ..address import format_address, parse_address
from ..errors import EpmdProtocolError, InvalidName, LocalProtocolError

__all__ = [
    "ALIVE2_REQ",
    "ALIVE2_RESP",
    "ALIVE2_X_RESP",
    "DEFAULT_PORT",
    "DUMP_REQ",
    "KILL_REQ",
    "MAX_EXTRA",
    "MAX_EXT_LEN",
    "MAX_METADATA",
    "MAX_NAME_BYTES",
    "MAX_REQUEST_LEN",
    "NAMES_REQ",
    "NODE_TYPE_HIDDEN",
    "NODE_TYPE_NORMAL",
    "OP_JOERL",
    "PORT2_RESP",
    "PORT_PLEASE2_REQ",
    "STOP_REQ",
    "Alive2Rejected",
    "Alive2Req",
    "Alive2Resp",
    "ClassicReplyDecoder",
    "DumpReq",
    "DumpResp",
    "EpmdProtocolError",
    "ExtError",
    "ExtReplyDecoder",
    "InvalidName",
    "KeepAlive",
    "KeepAliveAck",
    "KillReq",
    "KillResp",
    "ListNodes",
    "Lookup",
    "LookupResult",
    "NamesReq",
    "NamesResp",
    "NodeInfo",
    "NodeList",
    "Ping",
    "Pong",
    "Port2Resp",
    "PortPlease2Req",
    "Register",
    "Registered",
    "RequestDecoder",
    "StopReq",
    "StopResp",
    "UnknownExt",
    "Unregister",
    "Unregistered",
    "check_name",
    "decode_request_body",
    "encode_dump",
    "encode_names",
    "format_address",
    "parse_address",
]

# -- constants ---------------------------------------------------------------

DEFAULT_PORT = 4369
ALIVE2_REQ = 120  # 'x'
ALIVE2_X_RESP = 118  # 'v'
ALIVE2_RESP = 121  # 'y'
PORT_PLEASE2_REQ = 122  # 'z'
PORT2_RESP = 119  # 'w'
NAMES_REQ = 110  # 'n'
DUMP_REQ = 100  # 'd'
KILL_REQ = 107  # 'k'
STOP_REQ = 115  # 's'
OP_JOERL = 74  # 'J': joerl's extension

NODE_TYPE_NORMAL = 77  # 'M'
NODE_TYPE_HIDDEN = 72  # 'H'

MAX_REQUEST_LEN = 3057  # epmd: INBUF_SIZE (3060) - 3
MAX_EXT_LEN = 0xFFFF
MAX_NAME_BYTES = 255
MAX_NAME_CHARS = 255  # what epmd checks for PORT_PLEASE2
MAX_EXTRA = 1020  # epmd: MAXSYMLEN
MAX_HOST_BYTES = 255
MAX_METADATA = 16 * 1024  # bytes of msgpack
MAX_DEPTH = 32  # nesting of metadata
ALIVE2_ERROR_CREATION = 99

_U16 = 0xFFFF
_U32 = 0xFFFFFFFF

# -- errors ------------------------------------------------------------------


def _name_problem(name: object) -> str:
    """Why ``name`` cannot be registered, or ``""`` if it can."""
    if not isinstance(name, str):
        return f"must be a str, not {type(name).__name__}"
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not encodable as UTF-8"
    if not raw:
        return "is empty"
    if len(raw) > MAX_NAME_BYTES:
        return f"is {len(raw)} bytes of UTF-8, over the limit of {MAX_NAME_BYTES}"
    if "\0" in name:
        return "contains a NUL character"
    if "@" in name:
        return "contains '@': give the alive name only, the part before '@'"
    return ""


def check_name(name: object) -> str:
    """Check that ``name`` can be registered and return it.

    A name is 1..255 bytes of UTF-8, with no NUL and no ``@`` (the ``@host``
    part of a node name is not the port mapper's business).

    Raises:
        InvalidName: it cannot.
    """
    problem = _name_problem(name)
    if problem:
        raise InvalidName(name, problem)
    return name  # type: ignore[return-value]


# -- addresses ---------------------------------------------------------------


# -- value types -------------------------------------------------------------


@dataclass(frozen=True)
class NodeInfo:
    """What a port mapper knows about a registered node.

    Attributes:
        name: the alive name (no ``@host``).
        host: where the node listens; ``""`` from the daemon means the
            daemon's own host (the client fills it in).
        port: the node's distribution listen port.
        metadata: free-form plain data given at registration (joerl only).
        creation: the incarnation number the daemon assigned (0 if unknown).
        node_type: 77 normal, 72 hidden (echoed, never interpreted).
        protocol: 0 for TCP/IP.
        highest_version: highest distribution protocol version.
        lowest_version: lowest distribution protocol version.
        extra: opaque bytes given at registration.
        kind: ``"joerl"`` (extension), ``"erlang"`` (ALIVE2) or ``""`` (unknown).
    """

    name: str
    host: str
    port: int
    metadata: dict[str, Any] = field(default_factory=dict)
    creation: int = 0
    node_type: int = NODE_TYPE_NORMAL
    protocol: int = 0
    highest_version: int = 6
    lowest_version: int = 6
    extra: bytes = b""
    kind: str = ""

    @property
    def address(self) -> str:
        """``"host:port"`` of the node."""
        return format_address(self.host, self.port)

    def with_host(self, host: str) -> NodeInfo:
        """A copy whose empty host is replaced by ``host``."""
        if self.host:
            return self
        return NodeInfo(
            self.name,
            host,
            self.port,
            self.metadata,
            self.creation,
            self.node_type,
            self.protocol,
            self.highest_version,
            self.lowest_version,
            self.extra,
            self.kind,
        )

    def to_map(self) -> dict[str, Any]:
        """The node as the extension's msgpack map."""
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "metadata": self.metadata,
            "creation": self.creation,
            "type": self.node_type,
            "proto": self.protocol,
            "high": self.highest_version,
            "low": self.lowest_version,
            "extra": self.extra,
            "kind": self.kind,
        }

    @classmethod
    def from_map(cls, m: object) -> NodeInfo:
        """Parse the extension's node map.

        Raises:
            EpmdProtocolError: not a node map.
        """
        m = _map(m, "node")
        return cls(
            name=_str(m, "name"),
            host=_str(m, "host", ""),
            port=_int(m, "port", _U16),
            metadata=_metadata(m.get("metadata", {})),
            creation=_int(m, "creation", _U32, 0),
            node_type=_int(m, "type", 255, NODE_TYPE_NORMAL),
            protocol=_int(m, "proto", 255, 0),
            highest_version=_int(m, "high", _U16, 6),
            lowest_version=_int(m, "low", _U16, 6),
            extra=_bin(m, "extra", b""),
            kind=_str(m, "kind", ""),
        )


def _frame(body: bytes) -> bytes:
    return struct.pack(">H", len(body)) + body


def _wire_name(name: str, what: str) -> bytes:
    if not isinstance(name, str) or not name or "\0" in name:
        raise InvalidName(name, f"{what} needs a non-empty str without NUL")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidName(name, "is not encodable as UTF-8") from None
    return raw


# -- Erlang requests -----------------------------------------------------------


@dataclass(frozen=True)
class Alive2Req:
    """ALIVE2_REQ: register ``name`` at ``port`` for as long as the connection lives."""

    port: int
    name: str
    node_type: int = NODE_TYPE_NORMAL
    protocol: int = 0
    highest_version: int = 6
    lowest_version: int = 5
    extra: bytes = b""

    def encode(self) -> bytes:
        raw = check_name(self.name).encode("utf-8")
        if len(self.extra) > MAX_EXTRA:
            raise LocalProtocolError(f"extra is {len(self.extra)} bytes, over epmd's {MAX_EXTRA}")
        body = (
            struct.pack(
                ">BHBBHHH",
                ALIVE2_REQ,
                self.port,
                self.node_type,
                self.protocol,
                self.highest_version,
                self.lowest_version,
                len(raw),
            )
            + raw
            + struct.pack(">H", len(self.extra))
            + self.extra
        )
        return _frame(body)


@dataclass(frozen=True)
class Alive2Rejected:
    """A well-framed ALIVE2_REQ whose name or extra epmd refuses (reply 1/99, socket kept)."""

    highest_version: int
    reason: str


@dataclass(frozen=True)
class PortPlease2Req:
    """PORT_PLEASE2_REQ: where does ``name`` listen?"""

    name: str

    def encode(self) -> bytes:
        return _frame(bytes([PORT_PLEASE2_REQ]) + _wire_name(self.name, "PORT_PLEASE2"))


@dataclass(frozen=True)
class NamesReq:
    """NAMES_REQ: list the registered names."""

    def encode(self) -> bytes:
        return b"\x00\x01n"


@dataclass(frozen=True)
class DumpReq:
    """DUMP_REQ: debug listing (loopback only)."""

    def encode(self) -> bytes:
        return b"\x00\x01d"


@dataclass(frozen=True)
class KillReq:
    """KILL_REQ: stop the daemon (loopback only; refused while names live, unless relaxed)."""

    def encode(self) -> bytes:
        return b"\x00\x01k"


@dataclass(frozen=True)
class StopReq:
    """STOP_REQ: forcibly unregister ``name`` (loopback and relaxed mode only)."""

    name: str

    def encode(self) -> bytes:
        return _frame(bytes([STOP_REQ]) + _wire_name(self.name, "STOP"))


# -- Erlang replies ------------------------------------------------------------


@dataclass(frozen=True)
class Alive2Resp:
    """ALIVE2_X_RESP (``extended``, 32-bit creation) or ALIVE2_RESP (16-bit creation)."""

    result: int
    creation: int
    extended: bool = True

    @property
    def ok(self) -> bool:
        return self.result == 0

    def encode(self) -> bytes:
        if self.extended:
            return struct.pack(">BBI", ALIVE2_X_RESP, self.result, self.creation)
        return struct.pack(">BBH", ALIVE2_RESP, self.result, self.creation & _U16)


@dataclass(frozen=True)
class Port2Resp:
    """PORT2_RESP: ``node`` on a hit (its host empty: the daemon's host), None on a miss."""

    node: NodeInfo | None

    def encode(self) -> bytes:
        n = self.node
        if n is None:
            return bytes([PORT2_RESP, 1])
        raw = n.name.encode("utf-8")
        return (
            struct.pack(
                ">BBHBBHHH",
                PORT2_RESP,
                0,
                n.port,
                n.node_type,
                n.protocol,
                n.highest_version,
                n.lowest_version,
                len(raw),
            )
            + raw
            + struct.pack(">H", len(n.extra))
            + n.extra
        )


@dataclass(frozen=True)
class NamesResp:
    """NAMES reply: the daemon's port and ``(name, port)`` pairs, newest first."""

    epmd_port: int
    nodes: tuple[tuple[str, int], ...] = ()

    def encode(self) -> bytes:
        return encode_names(self.epmd_port, self.nodes)


def encode_names(epmd_port: int, nodes: Any) -> bytes:
    """The NAMES reply for ``(name, port)`` pairs, in the order given."""
    text = "".join(f"name {name} at port {port}\n" for name, port in nodes)
    return struct.pack(">I", epmd_port) + text.encode("utf-8")


@dataclass(frozen=True)
class DumpResp:
    """DUMP reply: the daemon's port and its lines (live names first, then old ones)."""

    epmd_port: int
    lines: tuple[str, ...] = ()

    def encode(self) -> bytes:
        return struct.pack(">I", self.epmd_port) + b"".join(line.encode("utf-8") + b"\0" for line in self.lines)


def encode_dump(epmd_port: int, active: Any, old: Any) -> bytes:
    """The DUMP reply, in epmd 25's formats, for ``(name, port, fd)`` triples."""
    lines = [f"active name     <{n}> at port {p}, fd = {f}\n" for n, p, f in active]
    lines += [f"old/unused name <{n}>, port = {p}, fd = {f} \n" for n, p, f in old]
    return DumpResp(epmd_port, tuple(lines)).encode()


@dataclass(frozen=True)
class KillResp:
    """KILL reply: ``OK`` (the daemon stops) or ``NO``."""

    ok: bool

    def encode(self) -> bytes:
        return b"OK" if self.ok else b"NO"


@dataclass(frozen=True)
class StopResp:
    """STOP reply text: ``STOPPED`` or ``NOEXIST``."""

    text: str

    def encode(self) -> bytes:
        return self.text.encode("ascii")


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

    def encode(self) -> bytes:
        check_name(self.name)
        return _ext_request(
            {
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
class ExtError:
    """The daemon refused an extension request; the connection stays open."""

    code: str
    message: str

    def encode(self) -> bytes:
        return _ext_reply({"op": "error", "code": self.code, "message": self.message})


Request = (
    Alive2Req
    | Alive2Rejected
    | PortPlease2Req
    | NamesReq
    | DumpReq
    | KillReq
    | StopReq
    | Register
    | Unregister
    | Lookup
    | ListNodes
    | Ping
    | KeepAlive
    | UnknownExt
)
ExtReply = Registered | Unregistered | LookupResult | NodeList | Pong | KeepAliveAck | ExtError
ClassicReply = Alive2Resp | Port2Resp | NamesResp | DumpResp | KillResp | StopResp

# -- field checks for msgpack maps -------------------------------------------------

_MISSING: Any = object()


def _map(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EpmdProtocolError(f"{what} must be a map, not {type(value).__name__}")
    return value


_describe = describe  # bounded renderings of the peer's values (joerl/_describe.py)


def _field(m: dict[str, Any], key: str, default: Any) -> Any:
    value = m.get(key, _MISSING)
    if value is _MISSING:
        if default is _MISSING:
            raise EpmdProtocolError(f"missing field {key!r}")
        return default
    return value


def _str(m: dict[str, Any], key: str, default: Any = _MISSING) -> str:
    value = _field(m, key, default)
    if not isinstance(value, str):
        raise EpmdProtocolError(f"field {key!r} must be a str, not {type(value).__name__}")
    return value


def _int(m: dict[str, Any], key: str, top: int, default: Any = _MISSING) -> int:
    value = _field(m, key, default)
    if type(value) is not int or not 0 <= value <= top:
        raise EpmdProtocolError(f"field {key!r} must be an int in 0..{top}, got {_describe(value)}")
    return value


def _bin(m: dict[str, Any], key: str, default: Any = _MISSING) -> bytes:
    value = _field(m, key, default)
    if not isinstance(value, bytes):
        raise EpmdProtocolError(f"field {key!r} must be bin, not {type(value).__name__}")
    return value


def _bool(m: dict[str, Any], key: str, default: Any = _MISSING) -> bool:
    value = _field(m, key, default)
    if not isinstance(value, bool):
        raise EpmdProtocolError(f"field {key!r} must be a bool, not {type(value).__name__}")
    return value


def _plain(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise EpmdProtocolError(f"metadata nested deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return
    if isinstance(value, list):
        for item in value:
            _plain(item, depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise EpmdProtocolError("metadata map keys must be str")
            _plain(v, depth + 1)
        return
    raise EpmdProtocolError(f"metadata holds a {type(value).__name__}: only plain data is allowed")


def _metadata(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EpmdProtocolError(f"metadata must be a map, not {type(value).__name__}")
    _plain(value, 0)
    return value


def _unpack(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True, ext_hook=_refuse_ext)
    except EpmdProtocolError:
        raise
    except Exception as exc:  # msgpack raises many kinds: all mean "not msgpack"
        raise EpmdProtocolError(f"{what} is not valid msgpack: {exc}") from None
    m = _map(value, what)
    if not isinstance(m.get("op"), str):
        raise EpmdProtocolError(f"{what} has no 'op' string")
    return m


def _refuse_ext(code: int, data: bytes) -> Any:
    raise EpmdProtocolError(f"msgpack extension type {code} is not allowed")


# -- decoding requests (daemon side) -------------------------------------------------


def _decode_ext_request(body: bytes) -> Request:
    m = _unpack(body, "extension request")
    op = m["op"]
    if op == "register":
        return Register(
            name=_str(m, "name"),
            host=_str(m, "host", ""),
            port=_int(m, "port", _U16),
            metadata=_metadata(m.get("metadata", {})),
            node_type=_int(m, "type", 255, NODE_TYPE_NORMAL),
            protocol=_int(m, "proto", 255, 0),
            highest_version=_int(m, "high", _U16, 6),
            lowest_version=_int(m, "low", _U16, 6),
            extra=_bin(m, "extra", b""),
        )
    if op == "unregister":
        return Unregister(_str(m, "name"))
    if op == "lookup":
        return Lookup(_str(m, "name"), _bool(m, "close", False))
    if op == "list":
        return ListNodes(_bool(m, "close", False))
    if op == "ping":
        return Ping(_bool(m, "close", False))
    if op == "keepalive":
        return KeepAlive(_str(m, "name", ""))
    return UnknownExt(op)


def _decode_alive2(body: bytes) -> Request:
    size = len(body)
    if size <= 13:
        raise EpmdProtocolError(f"ALIVE2_REQ of {size} bytes is too short")
    port, node_type, protocol, high, low, nlen = struct.unpack_from(">HBBHHH", body, 1)
    if nlen + 13 > size:
        raise EpmdProtocolError(f"ALIVE2_REQ name length {nlen} runs past the request")
    (elen,) = struct.unpack_from(">H", body, 11 + nlen)
    if elen + nlen + 13 > size:
        raise EpmdProtocolError(f"ALIVE2_REQ extra length {elen} runs past the request")
    raw = body[11 : 11 + nlen]
    if not raw or b"\0" in raw:
        raise EpmdProtocolError("ALIVE2_REQ name is empty or contains NUL")
    extra = body[13 + nlen : 13 + nlen + elen]
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Alive2Rejected(high, "invalid node name encoding")
    problem = _name_problem(name)
    if problem:
        return Alive2Rejected(high, f"node name {problem}")
    if elen > MAX_EXTRA:
        return Alive2Rejected(high, f"extra of {elen} bytes is over {MAX_EXTRA}")
    return Alive2Req(port, name, node_type, protocol, high, low, extra)


def _decode_name_to_end(body: bytes, what: str) -> str:
    raw = body[1:]
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    if not raw or b"\0" in raw:
        raise EpmdProtocolError(f"{what} name is empty or contains NUL")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EpmdProtocolError(f"{what} name is not UTF-8") from None
    if len(name) > MAX_NAME_CHARS:
        raise EpmdProtocolError(f"{what} name is over {MAX_NAME_CHARS} characters")
    return name


def decode_request_body(body: bytes) -> Request:
    """Decode one request body (without its ``Len:16``).

    Raises:
        EpmdProtocolError: the body is malformed or its opcode unknown.
    """
    if not body:
        raise EpmdProtocolError("empty request")
    op = body[0]
    if op == PORT_PLEASE2_REQ:
        return PortPlease2Req(_decode_name_to_end(body, "PORT_PLEASE2_REQ"))
    if op == OP_JOERL:
        return _decode_ext_request(body[1:])
    if op == ALIVE2_REQ:
        return _decode_alive2(body)
    if op == NAMES_REQ:
        return NamesReq()
    if op == DUMP_REQ:
        return DumpReq()
    if op == KILL_REQ:
        return KillReq()
    if op == STOP_REQ:
        return StopReq(_decode_name_to_end(body, "STOP_REQ"))
    raise EpmdProtocolError(f"unknown opcode {op} ({chr(op)!r})")


class RequestDecoder:
    """Daemon side: bytes from one connection -> requests.

    ``feed`` returns every request completed so far; bytes of an unfinished
    request stay buffered (``buffered`` counts them). After a protocol error
    the decoder refuses further input.

    Args:
        max_ext_len: largest extension request body accepted.
    """

    def __init__(self, max_ext_len: int = MAX_EXT_LEN) -> None:
        self._buf = bytearray()
        self._error: EpmdProtocolError | None = None
        self._max_ext = max_ext_len

    @property
    def buffered(self) -> int:
        """Bytes received that are not part of a returned request."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Request]:
        """Add received bytes; return the requests they complete.

        Raises:
            EpmdProtocolError: the bytes break the protocol.
        """
        if self._error is not None:
            raise self._error
        self._buf += data
        out: list[Request] = []
        try:
            while True:
                req = self._next()
                if req is None:
                    return out
                out.append(req)
        except EpmdProtocolError as exc:
            self._error = exc
            raise

    def _next(self) -> Request | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        n = (buf[0] << 8) | buf[1]
        if n == 0:
            raise EpmdProtocolError("request length 0")
        if len(buf) < 3:
            return None
        op = buf[2]
        if op == OP_JOERL:
            if n > self._max_ext:
                raise EpmdProtocolError(f"extension request of {n} bytes is over {self._max_ext}")
        elif n > MAX_REQUEST_LEN:
            raise EpmdProtocolError(f"request length {n} is over epmd's limit of {MAX_REQUEST_LEN}")
        if op not in _KNOWN_OPS:
            raise EpmdProtocolError(f"unknown opcode {op} ({chr(op)!r})")
        if len(buf) < n + 2:
            return None
        body = bytes(buf[2 : n + 2])
        del buf[: n + 2]
        return decode_request_body(body)


_KNOWN_OPS = frozenset({ALIVE2_REQ, PORT_PLEASE2_REQ, NAMES_REQ, DUMP_REQ, KILL_REQ, STOP_REQ, OP_JOERL})

# -- decoding replies (client side) ---------------------------------------------------


def _decode_ext_reply(body: bytes) -> ExtReply:
    m = _unpack(body, "extension reply")
    op = m["op"]
    if op == "registered":
        return Registered(NodeInfo.from_map(m.get("node")))
    if op == "unregistered":
        return Unregistered(_str(m, "name"), _bool(m, "existed"))
    if op == "lookup":
        node = m.get("node")
        return LookupResult(None if node is None else NodeInfo.from_map(node))
    if op == "nodes":
        nodes = m.get("nodes")
        if not isinstance(nodes, list):
            raise EpmdProtocolError("field 'nodes' must be an array")
        return NodeList(tuple(NodeInfo.from_map(n) for n in nodes))
    if op == "pong":
        return Pong(_str(m, "daemon", ""), _str(m, "version", ""))
    if op == "keepalive_ack":
        return KeepAliveAck()
    if op == "error":
        return ExtError(_str(m, "code"), _str(m, "message", ""))
    raise EpmdProtocolError(f"unknown extension reply op {_describe(op)}")


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


class ClassicReplyDecoder:
    """Client side: bytes after one Erlang request -> its reply.

    ALIVE2 and PORT_PLEASE2 replies end where their layout ends: ``feed``
    returns the reply once complete (bytes after it stay in ``trailing``).
    NAMES, DUMP, KILL and STOP replies end when the daemon closes: ``feed``
    returns None and ``feed_eof`` parses.

    Args:
        request: the request this reply answers.
        max_size: largest reply accepted.
    """

    def __init__(self, request: object, max_size: int = 64 * 1024 * 1024) -> None:
        self._kind = type(request)
        if self._kind not in (Alive2Req, PortPlease2Req, NamesReq, DumpReq, KillReq, StopReq):
            raise LocalProtocolError(f"{self._kind.__name__} has no Erlang reply")
        self._buf = bytearray()
        self._max = max_size
        self._done: ClassicReply | None = None
        self.trailing = b""

    def feed(self, data: bytes) -> ClassicReply | None:
        """Add received bytes; return the reply if they complete it.

        Raises:
            EpmdProtocolError: the bytes are not the expected reply.
        """
        if self._done is not None:
            self.trailing += data
            return self._done
        self._buf += data
        if len(self._buf) > self._max:
            raise EpmdProtocolError(f"reply over {self._max} bytes")
        if self._kind is Alive2Req:
            self._done = self._alive2()
        elif self._kind is PortPlease2Req:
            self._done = self._port2()
        return self._done

    def feed_eof(self) -> ClassicReply:
        """The daemon closed the connection: return the complete reply.

        Raises:
            EpmdProtocolError: the reply is missing or incomplete.
        """
        if self._done is not None:
            return self._done
        buf = bytes(self._buf)
        k = self._kind
        if k in (Alive2Req, PortPlease2Req):
            what = "ALIVE2" if k is Alive2Req else "PORT2"
            raise EpmdProtocolError(f"connection closed after {len(buf)} bytes of a {what} reply")
        if k is KillReq:
            if buf not in (b"OK", b"NO"):
                raise EpmdProtocolError(f"KILL reply {_describe(buf)} is neither OK nor NO")
            return KillResp(buf == b"OK")
        if k is StopReq:
            if not buf or not buf.isalpha() or not buf.isascii():
                raise EpmdProtocolError(f"STOP reply {_describe(buf)} is not a word")
            return StopResp(buf.decode("ascii"))
        if len(buf) < 4:
            raise EpmdProtocolError(f"reply of {len(buf)} bytes lacks the daemon's port")
        (port,) = struct.unpack_from(">I", buf)
        try:
            text = buf[4:].decode("utf-8")
        except UnicodeDecodeError:
            raise EpmdProtocolError("reply text is not UTF-8") from None
        if k is DumpReq:
            parts = text.split("\0")
            if parts[-1]:
                raise EpmdProtocolError("DUMP reply does not end with NUL")
            return DumpResp(port, tuple(parts[:-1]))
        return NamesResp(port, _parse_names(text))

    def _alive2(self) -> ClassicReply | None:
        buf = self._buf
        if not buf:
            return None
        if buf[0] == ALIVE2_X_RESP:
            size, fmt, ext = 6, ">BBI", True
        elif buf[0] == ALIVE2_RESP:
            size, fmt, ext = 4, ">BBH", False
        else:
            raise EpmdProtocolError(f"ALIVE2 reply starts with {buf[0]}")
        if len(buf) < size:
            return None
        _, result, creation = struct.unpack_from(fmt, buf)
        self.trailing = bytes(buf[size:])
        return Alive2Resp(result, creation, ext)

    def _port2(self) -> ClassicReply | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        if buf[0] != PORT2_RESP:
            raise EpmdProtocolError(f"PORT2 reply starts with {buf[0]}")
        if buf[1] != 0:
            self.trailing = bytes(buf[2:])
            return Port2Resp(None)
        if len(buf) < 12:
            return None
        port, ntype, proto, high, low, nlen = struct.unpack_from(">HBBHHH", buf, 2)
        if len(buf) < 14 + nlen:
            return None
        (elen,) = struct.unpack_from(">H", buf, 12 + nlen)
        end = 14 + nlen + elen
        if len(buf) < end:
            return None
        try:
            name = bytes(buf[12 : 12 + nlen]).decode("utf-8")
        except UnicodeDecodeError:
            raise EpmdProtocolError("PORT2 reply name is not UTF-8") from None
        self.trailing = bytes(buf[end:])
        return Port2Resp(
            NodeInfo(name, "", port, {}, 0, ntype, proto, high, low, bytes(buf[14 + nlen : end]), "erlang")
        )


_NAMES_LINE = re.compile(r"^name (.+) at port (\d+)$", re.M)


def _parse_names(text: str) -> tuple[tuple[str, int], ...]:
    if text and not text.endswith("\n"):
        raise EpmdProtocolError("NAMES reply does not end with a newline")
    found = _NAMES_LINE.findall(text)
    if len(found) != text.count("\n"):
        bad = next(line for line in text.split("\n")[:-1] if not _NAMES_LINE.fullmatch(line))
        raise EpmdProtocolError(f"NAMES line {_describe(bad, 80)} is not 'name N at port P'")
    return tuple((name, int(port)) for name, port in found)
