"""Shared pieces of the fuzz tests: hypothesis settings, byte mutators, random
chunking, msgpack value strategies, and the valid messages mutations start from.

The fuzz tests check one invariant everywhere: whatever bytes arrive, only our
protocol errors come out (never IndexError, KeyError, UnicodeDecodeError,
RecursionError, MemoryError, struct.error, ...), and a server that received
them still serves a well-behaved client afterwards.

Runs are bounded and reproducible: ``derandomize=True`` and no example
database, so CI sees the same examples every time. ``JOERL_FUZZ_SCALE=10``
multiplies every example count (a longer local run); the long coverage-guided
run is the atheris harnesses in ``fuzz/`` (see ``fuzz/README.md``).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import msgpack
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from joerl.epmd import protocol as ep
from joerl.node import protocol as dp
from joerl.pid import Pid, Ref
from joerl.testing import fixed_random as fixed_random  # re-exported for the fuzz tests
from joerl.testing import handshake_engines, run_handshake

#: Multiplies every example count (``JOERL_FUZZ_SCALE=10 pytest tests/fuzz``).
SCALE = max(0.01, float(os.environ.get("JOERL_FUZZ_SCALE", "1")))


def fuzz_settings(max_examples: int) -> settings:
    """Bounded, derandomized settings with no example database (reproducible in CI)."""
    return settings(
        max_examples=max(1, int(max_examples * SCALE)),
        deadline=None,
        database=None,
        derandomize=True,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )


# -- byte mutation ----------------------------------------------------------------------

#: Byte values that sit on boundaries of msgpack headers and length fields.
INTERESTING_BYTES = [0x00, 0x01, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC4, 0xC7,
                     0xD4, 0xD8, 0xDC, 0xDE, 0xDF, 0xE0, 0xFE, 0xFF]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, seeds: st.SearchStrategy[bytes], max_mutations: int = 4) -> bytes:
    """A seed with up to ``max_mutations`` edits: bit flips, byte sets, inserts,
    deletions, truncation, duplication, splices of random bytes."""
    data = bytearray(draw(seeds))
    for _ in range(draw(st.integers(0, max_mutations))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup", "splice"]))
        n = len(data)
        if kind == "flip" and n:
            i = draw(st.integers(0, n - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and n:
            i = draw(st.integers(0, n - 1))
            data[i] = draw(st.sampled_from(INTERESTING_BYTES) | st.integers(0, 255))
        elif kind == "insert":
            i = draw(st.integers(0, n))
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and n:
            i = draw(st.integers(0, n - 1))
            del data[i : i + draw(st.integers(1, 8))]
        elif kind == "truncate" and n:
            del data[draw(st.integers(0, n - 1)) :]
        elif kind == "dup" and n:
            i = draw(st.integers(0, n - 1))
            j = draw(st.integers(i, n))
            data[j:j] = data[i:j]
        elif kind == "splice":
            i = draw(st.integers(0, n))
            j = draw(st.integers(i, n))
            data[i:j] = draw(st.binary(max_size=16))
    return bytes(data)


@st.composite
def cut_points(draw: st.DrawFn, size: int) -> list[int]:
    """Sorted positions at which to split ``size`` bytes (an empty list: whole)."""
    return sorted(draw(st.lists(st.integers(0, size), max_size=12)))


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``data`` cut at ``cuts`` (pieces may be empty, as a zero-byte feed is legal)."""
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def chunked(data: bytes, step: int) -> Iterable[bytes]:
    """``data`` in pieces of ``step`` bytes."""
    return (data[i : i + step] for i in range(0, len(data), step)) if data else [b""]


# -- msgpack values -------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([0, 1, -1, 2**32 - 1, 2**32, 2**64 - 1, 0xFFFF, 0x10000, 255, 256]),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.binary(max_size=24),
    st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=20)),
)

#: Any msgpack value, nested a few levels (deep nesting has its own tests).
msgpack_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6) | st.integers(-5, 5), inner, max_size=5)
    ),
    max_leaves=20,
)


def packb(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


# -- EPMD ------------------------------------------------------------------------------

NODE = ep.NodeInfo("node", "127.0.0.1", 4000, {"k": [1, 2.5, None, True, b"x", {"n": "v"}]}, 7, kind="joerl")
EPMD_REQUESTS: list[bytes] = [
    ep.NamesReq().encode(),
    ep.DumpReq().encode(),
    ep.KillReq().encode(),
    ep.StopReq("node").encode(),
    ep.PortPlease2Req("node").encode(),
    ep.PortPlease2Req("n\u00e9").encode() + b"",
    ep.Alive2Req(4000, "node").encode(),
    ep.Alive2Req(4000, "node", highest_version=5, extra=b"xyz").encode(),
    ep.Lookup("node").encode(),
    ep.Lookup("node", close=True).encode(),
    ep.ListNodes().encode(),
    ep.ListNodes(close=True).encode(),
    ep.Ping().encode(),
    ep.Register("node", "127.0.0.1", 4000, {"k": [1, 2.5, None, True, b"x", {"n": "v"}]}).encode(),
    ep.KeepAlive("node").encode(),
    ep.Unregister("node").encode(),
]
EPMD_EXT_REPLIES: list[bytes] = [
    ep.Registered(NODE).encode(),
    ep.Unregistered("node", True).encode(),
    ep.LookupResult(None).encode(),
    ep.LookupResult(NODE).encode(),
    ep.NodeList((NODE, NODE)).encode(),
    ep.Pong("joerl-epmd", "1.0").encode(),
    ep.KeepAliveAck().encode(),
    ep.ExtError("name_in_use", "taken").encode(),
]
#: Erlang replies, by the request type they answer.
EPMD_CLASSIC_REPLIES: dict[type, list[bytes]] = {
    ep.Alive2Req: [ep.Alive2Resp(0, 5).encode(), ep.Alive2Resp(1, 99, False).encode()],
    ep.PortPlease2Req: [ep.Port2Resp(None).encode(), ep.Port2Resp(NODE).encode()],
    ep.NamesReq: [ep.NamesResp(4369, (("a", 1), ("b", 65535))).encode(), ep.NamesResp(4369).encode()],
    ep.DumpReq: [ep.encode_dump(4369, [("a", 1, 5)], [("b", 2, 6)])],
    ep.KillReq: [b"OK", b"NO"],
    ep.StopReq: [b"STOPPED", b"NOEXIST"],
}
CLASSIC_REQUEST_OBJECTS: dict[type, Any] = {
    ep.Alive2Req: ep.Alive2Req(4000, "node"),
    ep.PortPlease2Req: ep.PortPlease2Req("node"),
    ep.NamesReq: ep.NamesReq(),
    ep.DumpReq: ep.DumpReq(),
    ep.KillReq: ep.KillReq(),
    ep.StopReq: ep.StopReq("node"),
}

_EXT_FIELDS = ["op", "name", "host", "port", "metadata", "type", "proto", "high", "low", "extra", "close",
               "node", "nodes", "code", "message", "existed", "daemon", "version", "kind", "creation"]  # fmt: skip
_EXT_OPS = ["register", "unregister", "lookup", "list", "ping", "keepalive", "registered", "unregistered",
            "nodes", "pong", "keepalive_ack", "error", "bogus"]  # fmt: skip


@st.composite
def ext_maps(draw: st.DrawFn) -> dict[Any, Any]:
    """An extension map: a real op, then real and made-up fields with any values."""
    m: dict[Any, Any] = draw(
        st.dictionaries(st.sampled_from(_EXT_FIELDS) | st.text(max_size=4), msgpack_values, max_size=8)
    )
    if draw(st.booleans()):
        m["op"] = draw(st.sampled_from(_EXT_OPS))
    return m


def ext_request_bytes(m: Any) -> bytes:
    body = bytes([ep.OP_JOERL]) + packb(m)
    return struct.pack(">H", len(body) & 0xFFFF) + body


def ext_reply_bytes(m: Any) -> bytes:
    body = packb(m)
    return struct.pack(">BI", ep.OP_JOERL, len(body)) + body


_OPCODES = [ep.ALIVE2_REQ, ep.PORT_PLEASE2_REQ, ep.NAMES_REQ, ep.DUMP_REQ, ep.KILL_REQ, ep.STOP_REQ, ep.OP_JOERL]

#: One connection's worth of bytes for a port mapper: random, mutated valid
#: requests (several back to back), framed random bodies, random extension maps.
epmd_request_streams = st.one_of(
    st.binary(max_size=200),
    mutated(st.sampled_from(EPMD_REQUESTS)),
    st.lists(mutated(st.sampled_from(EPMD_REQUESTS), max_mutations=1), min_size=1, max_size=4).map(b"".join),
    st.tuples(st.sampled_from(_OPCODES), st.binary(max_size=80)).map(
        lambda t: struct.pack(">HB", len(t[1]) + 1, t[0]) + t[1]
    ),
    ext_maps().map(ext_request_bytes),
    mutated(ext_maps().map(ext_request_bytes), max_mutations=2),
)

epmd_ext_reply_streams = st.one_of(
    st.binary(max_size=200),
    mutated(st.sampled_from(EPMD_EXT_REPLIES)),
    st.lists(mutated(st.sampled_from(EPMD_EXT_REPLIES), max_mutations=1), min_size=1, max_size=3).map(b"".join),
    ext_maps().map(ext_reply_bytes),
    st.dictionaries(st.sampled_from(_EXT_FIELDS), msgpack_values, max_size=6)
    .map(lambda m: {**m, "op": "nodes", "nodes": [m, {"name": "x", "port": 1}]})
    .map(ext_reply_bytes),
)


# -- node link: handshake --------------------------------------------------------------

COOKIE = b"fuzz-cookie"
WRONG_COOKIE = b"not-the-cookie"
INI = dp.NodeIdentity("fuzz-ini", 0x1111, creation=3)
ACC = dp.NodeIdentity("fuzz-acc", 0x2222, creation=4)


def engines(cookie_i: bytes = COOKIE, cookie_a: bytes = COOKIE) -> tuple[dp.Handshake, dp.Handshake]:
    """The fuzz identities' initiator and acceptor engines (reproducible challenges)."""
    return handshake_engines(INI, ACC, cookie_i, acceptor_cookie=cookie_a, expected_peer=ACC.name)


def transcript() -> tuple[bytes, bytes, bytes, bytes]:
    """A whole valid handshake: (HELLO_I, STATUS + HELLO_A, REPLY, ACK)."""
    return run_handshake(*engines())[:4]


HELLO_I, STATUS_HELLO_A, REPLY, ACK = transcript()


def hs_frame(body: Any) -> bytes:
    raw = packb(body)
    return struct.pack(">H", len(raw) & 0xFFFF) + raw


_HS_FIELDS = ["t", "v", "name", "id", "creation", "flags", "challenge", "tick_ms", "max_frame", "status",
              "reason", "mac"]  # fmt: skip
_HS_TYPES = ["hello", "status", "reply", "ack", "abort", "bogus"]
_HS_VALUES = st.one_of(
    msgpack_values,
    st.sampled_from(["ok", "ok_simultaneous", "nok", "busy", "not_allowed", "id_collision", "auth_failed"]),
    st.binary(min_size=16, max_size=64),
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**32 - 1),
)


@st.composite
def hs_maps(draw: st.DrawFn) -> dict[Any, Any]:
    """A handshake message map: a real type, real and made-up fields, any values;
    often a valid HELLO with one field replaced."""
    if draw(st.booleans()):
        m = msgpack.unpackb(HELLO_I[2:], raw=False)
        m[draw(st.sampled_from(_HS_FIELDS))] = draw(_HS_VALUES)
        return m
    m = draw(st.dictionaries(st.sampled_from(_HS_FIELDS) | st.text(max_size=3), _HS_VALUES, max_size=10))
    if draw(st.booleans()):
        m["t"] = draw(st.sampled_from(_HS_TYPES))
    return m


def _side_inputs(first: bytes, second: bytes) -> st.SearchStrategy[bytes]:
    """Bytes for one side of a handshake whose valid input is ``first`` then ``second``:
    random, the valid input mutated, ``first`` then garbage, ``first`` then ``second``
    mutated, crafted handshake maps, ``first`` then a crafted map."""
    return st.one_of(
        st.binary(max_size=200),
        mutated(st.just(first + second)),
        st.tuples(st.just(first), st.binary(max_size=80)).map(b"".join),
        st.tuples(st.just(first), mutated(st.just(second))).map(b"".join),
        st.lists(hs_maps().map(hs_frame), min_size=1, max_size=3).map(b"".join),
        st.tuples(st.just(first), hs_maps().map(hs_frame)).map(b"".join),
    )


#: Bytes sent to an acceptor: random, a mutated valid initiator side, HELLO
#: then garbage, crafted handshake maps.
to_acceptor = _side_inputs(HELLO_I, REPLY)
#: Bytes sent to an initiator: the same for the acceptor's side.
to_initiator = _side_inputs(STATUS_HELLO_A, ACK)


# -- node link: frames -----------------------------------------------------------------

pids = st.builds(Pid, st.integers(1, 2**32 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1))
refs = st.builds(Ref, st.integers(1, 2**32 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1))
_names = st.text(min_size=1, max_size=8)
_blobs = st.binary(max_size=30)
_scalars = st.one_of(
    st.text(max_size=8),
    st.binary(max_size=8),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
plain_terms = _scalars | st.lists(_scalars, max_size=dp.MAX_TERM_ITEMS).map(tuple)
control_messages = st.one_of(
    st.builds(dp.Send, st.none() | pids, pids, _blobs),
    st.builds(dp.SendTerms, st.none() | pids, pids, st.lists(plain_terms, min_size=1, max_size=5).map(tuple)),
    st.builds(dp.RegSend, st.none() | pids, _names, _blobs),
    st.builds(dp.Link, pids, pids),
    st.builds(dp.Unlink, pids, pids, st.integers(0, 2**64 - 1)),
    st.builds(dp.UnlinkAck, pids, pids, st.integers(0, 2**64 - 1)),
    st.builds(dp.Exit, pids, pids, _blobs),
    st.builds(dp.Exit2, st.none() | pids, pids, _blobs),
    st.builds(dp.Monitor, pids, pids | _names, refs),
    st.builds(dp.Demonitor, pids, pids | _names, refs),
    st.builds(dp.Down, pids | _names, pids, refs, _blobs),
    st.builds(dp.SpawnRequest, refs, pids, _names, _blobs, st.booleans(), st.booleans()),
    st.builds(dp.SpawnReply, refs, pids, pids | _names),
    st.builds(dp.AliveRequest, refs, pids),
    st.builds(dp.AliveReply, refs, st.booleans()),
    st.builds(dp.CallReply, refs, _blobs),
)


def frame(body: bytes) -> bytes:
    """``Len:32 | body`` (an empty body is a tick)."""
    return struct.pack(">I", len(body)) + body


def body_of(msg: Any) -> bytes:
    return dp.encode_frame(msg)[4:]


#: The tuple a pid or ref is on the wire, with one field possibly out of range.
_wire_ident = st.tuples(st.integers(-1, 2**32), st.integers(-1, 2**64 - 1), st.integers(-1, 2**32)).map(list)
_field_values = st.one_of(msgpack_values, _wire_ident, st.binary(max_size=20), st.text(min_size=1, max_size=5))

#: One link frame body: random bytes, mutated valid bodies, arrays with a real
#: opcode and random fields, any msgpack value.
frame_bodies = st.one_of(
    st.binary(min_size=1, max_size=120),
    mutated(control_messages.map(body_of), max_mutations=3),
    st.tuples(st.integers(0, 17), st.lists(_field_values, max_size=7)).map(lambda t: packb([t[0], *t[1]])),
    msgpack_values.map(packb),
)
#: A stream of frames with a mutated length prefix now and then.
frame_streams = st.one_of(
    st.lists(frame_bodies.map(frame), max_size=8).map(b"".join),
    mutated(st.lists(control_messages.map(dp.encode_frame), min_size=1, max_size=5).map(b"".join), max_mutations=3),
    st.binary(max_size=300),
)


def outcome(item: Any) -> Any:
    """A comparable form of a decoder's output item (errors compare by text)."""
    if isinstance(item, BaseException):
        return (type(item).__name__, str(item))
    return item


def nested(depth: int, leaf: bytes = b"\xc0", opener: bytes = b"\x91") -> bytes:
    """msgpack for ``depth`` nested one-element arrays (or maps, with ``opener=b"\\x81\\xa1k"``)."""
    return opener * depth + leaf
