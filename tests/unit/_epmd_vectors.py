"""Byte vectors and helpers shared by the port mapper protocol tests (tests/unit/test_epmd_*.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from joerl.epmd.protocol import (
    EpmdProtocolError,
    NodeInfo,
    RequestDecoder,
)

# Bytes observed on the wire with Erlang/OTP 25 (docs/erlang-protocols digest).
ERL_ALIVE2 = bytes.fromhex("0011 78 9d25 4d 00 0006 0005 0004") + b"reg1" + b"\x00\x00"
ERL_PORT2_HIT = bytes.fromhex("77 00 15b3 4d 00 0006 0006 0005") + b"pyone" + b"\x00\x00"  # high 6, low 6, nlen 5
ERL_NAMES = bytes.fromhex("00003821") + b"name pyx at port 6000\nname pytwo at port 5556\n"
PING_FRAME = bytes.fromhex("000a 4a 81a26f70a470696e67")  # Len, 'J', {"op": "ping"}


NODE = NodeInfo("n", "10.0.0.1", 5000, {"role": "db", "tags": ["a"]}, 1795681270, 77, 0, 6, 6, b"", "joerl")


def requests_fed(data: bytes, how: str) -> tuple[list[Any], RequestDecoder]:
    dec = RequestDecoder()
    if how == "whole":
        return dec.feed(data), dec
    if how == "bytewise":
        out: list[Any] = []
        for i in range(len(data)):
            got = dec.feed(data[i : i + 1])
            if i < len(data) - 1:
                assert got == [], f"request completed early at byte {i}"
            out += got
        return out, dec
    raise AssertionError(how)


MODES = ["whole", "bytewise"]


def only_protocol_errors(fn: Callable[[], Any]) -> None:
    """Run ``fn``: it may raise EpmdProtocolError, and nothing else."""
    try:
        fn()
    except EpmdProtocolError:
        pass


names = st.text(
    st.characters(blacklist_characters="@\0", blacklist_categories=("Cs", "Cc", "Cf", "Co", "Cn", "Zl", "Zp", "Zs")),
    min_size=1,
    max_size=60,
)  # what may register: printable (a control character would forge NAMES lines)
plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.binary(max_size=10),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4),
    max_leaves=20,
)
