"""Erlang's EPMD protocol: the requests and replies of OTP's ``epmd`` (sans-IO).

Wire layout (every integer big-endian). Requests are framed ``Len:16 | Body``
(:mod:`._wire`), ``Body[0]`` the opcode; replies have no length prefix. One
request per connection: the daemon answers and closes, except after ALIVE2,
whose connection *is* the registration.

=================  ====================================================================
request            body, and the reply
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

This module owns those types, their encoders and :func:`decode_classic_body`
(daemon side: one request body); :mod:`._classic_reply` decodes the replies.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ..errors import EpmdProtocolError, LocalProtocolError
from ._node import NodeInfo
from ._wire import (
    MAX_EXTRA,
    MAX_NAME_CHARS,
    NODE_TYPE_NORMAL,
    U16,
    check_name,
    frame,
    name_problem,
    wire_name,
)

__all__ = [
    "ALIVE2_ERROR_CREATION",
    "ALIVE2_REQ",
    "ALIVE2_RESP",
    "ALIVE2_X_RESP",
    "CLASSIC_OPS",
    "DUMP_REQ",
    "KILL_REQ",
    "NAMES_REQ",
    "PORT2_RESP",
    "PORT_PLEASE2_REQ",
    "STOP_REQ",
    "Alive2Rejected",
    "Alive2Req",
    "Alive2Resp",
    "ClassicReply",
    "ClassicRequest",
    "DumpReq",
    "DumpResp",
    "KillReq",
    "KillResp",
    "NamesReq",
    "NamesResp",
    "Port2Resp",
    "PortPlease2Req",
    "StopReq",
    "StopResp",
    "decode_classic_body",
    "encode_dump",
    "encode_names",
]

ALIVE2_REQ = 120  # 'x'
ALIVE2_X_RESP = 118  # 'v'
ALIVE2_RESP = 121  # 'y'
PORT_PLEASE2_REQ = 122  # 'z'
PORT2_RESP = 119  # 'w'
NAMES_REQ = 110  # 'n'
DUMP_REQ = 100  # 'd'
KILL_REQ = 107  # 'k'
STOP_REQ = 115  # 's'
CLASSIC_OPS = frozenset({ALIVE2_REQ, PORT_PLEASE2_REQ, NAMES_REQ, DUMP_REQ, KILL_REQ, STOP_REQ})
ALIVE2_ERROR_CREATION = 99

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
        return frame(body)


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
        return frame(bytes([PORT_PLEASE2_REQ]) + wire_name(self.name, "PORT_PLEASE2"))


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
        return frame(bytes([STOP_REQ]) + wire_name(self.name, "STOP"))


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
        return struct.pack(">BBH", ALIVE2_RESP, self.result, self.creation & U16)


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
    """NAMES reply: the daemon's port and ``(name, port)`` pairs, newest first.

    ``skipped`` counts the lines a client left out (not ``name N at port P``
    with a valid name: a daemon that let a name with a newline register).
    """

    epmd_port: int
    nodes: tuple[tuple[str, int], ...] = ()
    skipped: int = 0

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


ClassicRequest = Alive2Req | Alive2Rejected | PortPlease2Req | NamesReq | DumpReq | KillReq | StopReq
ClassicReply = Alive2Resp | Port2Resp | NamesResp | DumpResp | KillResp | StopResp

# -- decoding (daemon side) ----------------------------------------------------


def decode_classic_body(body: bytes) -> ClassicRequest:
    """Decode the body of one of Erlang's requests (without its ``Len:16``).

    Raises:
        EpmdProtocolError: the body is malformed or its opcode not Erlang's.
    """
    if not body:
        raise EpmdProtocolError("empty request")
    op = body[0]
    if op == PORT_PLEASE2_REQ:
        return PortPlease2Req(_decode_name_to_end(body, "PORT_PLEASE2_REQ"))
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


def _decode_alive2(body: bytes) -> Alive2Req | Alive2Rejected:
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
    problem = name_problem(name)
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
