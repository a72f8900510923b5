"""The External Term Format codec: byte vectors (whole, truncated at every
byte, followed by extra bytes), limits, the value types, hypothesis round
trips in Python and a fuzz of the decoder (only TermDecodeError)."""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joerl.erlang.decoder import Decoder
from joerl.erlang.etf import EtfLimits, decode, encode
from joerl.erlang.terms import (
    Atom,
    BitString,
    ErlangPid,
    ErlangRef,
    FrozenList,
    FrozenMap,
    ImproperList,
    Opaque,
    TermDecodeError,
    TermEncodeError,
    charlist,
    erlang_pid,
    joerl_pid,
)
from joerl.errors import DecodeError
from joerl.pid import Pid

A = Atom
NODE = A("e1@vm")

# (bytes as OTP 25's term_to_binary writes them, the Python value): the
# bytes are from docs/erlang-protocols.md section 5, checked against erl.
ERLANG_VECTORS: list[tuple[bytes, Any]] = [
    (b"\x83d\x00\x03foo", A("foo")),  # ATOM_EXT, as term_to_binary(foo) writes it
    (b"\x83s\x03foo", A("foo")),  # SMALL_ATOM_EXT
    (b"\x83v\x00\x03foo", A("foo")),  # ATOM_UTF8_EXT
    (b"\x83d\x00\x04true", True),
    (b"\x83d\x00\x09undefined", None),
    (b"\x83a\x05", 5),
    (b"\x83b\xff\xff\xff\xfb", -5),
    (b"\x83b\x00\x00\x01\x00", 256),
    (b"\x83n\x08\x00\xd2\n\x1f\xeb\x8c\xa9T\xab", 12345678901234567890),
    (b"\x83F@\x08\x00\x00\x00\x00\x00\x00", 3.0),
    (b"\x83c" + b"1.50000000000000000000e+00".ljust(31, b"\x00"), 1.5),  # old FLOAT_EXT
    (b"\x83k\x00\x02hi", [104, 105]),  # STRING_EXT "hi"
    (b"\x83m\x00\x00\x00\x02hi", b"hi"),
    (b"\x83j", []),
    (b"\x83h\x02d\x00\x01aa\x01", (A("a"), 1)),
    (b"\x83l\x00\x00\x00\x01d\x00\x05aliasZ\x00\x03d\x00\x05e1@vm\x00\x00\x00\x07\x00\x00\x00\x01\x00\x00\x00\x02"
     b"\x00\x00\x00\x03", ImproperList((A("alias"),), ErlangRef(NODE, 7, (1, 2, 3)))),  # [alias | Ref]
    (b"\x83t\x00\x00\x00\x01d\x00\x01aa\x01", {A("a"): 1}),
    (b"\x83Xd\x00\x05e1@vm\x00\x00\x00\x59\x00\x00\x00\x00\x00\x00\x00\x07", ErlangPid(NODE, 89, 0, 7)),
    (b"\x83gd\x00\x05e1@vm\x00\x00\x00\x59\x00\x00\x00\x00\x02", ErlangPid(NODE, 89, 0, 2)),  # old PID_EXT
    (b"\x83M\x00\x00\x00\x01\x03\xe0", BitString(b"\xe0", 3)),
    (b"\x83M\x00\x00\x00\x01\x08\xe0", b"\xe0"),  # a whole last byte is a binary
    (b"\x83qd\x00\x05listsd\x00\x07reversea\x01", Opaque(113, b"d\x00\x05listsd\x00\x07reversea\x01")),
]  # fmt: skip

# (Python value, the bytes our encoder writes).
OUR_VECTORS: list[tuple[Any, bytes]] = [
    (A("foo"), b"\x83w\x03foo"),
    (A("ü" * 200), b"\x83v\x01\x90" + "ü".encode() * 200),  # over 255 bytes: ATOM_UTF8_EXT
    (True, b"\x83w\x04true"),
    (None, b"\x83w\x09undefined"),
    (0, b"\x83a\x00"),
    (255, b"\x83a\xff"),
    (-1, b"\x83b\xff\xff\xff\xff"),
    (2**31, b"\x83n\x04\x00\x00\x00\x00\x80"),
    (-(2**70), b"\x83n\x09\x01" + (2**70).to_bytes(9, "little")),
    (1 << 2048, b"\x83o\x00\x00\x01\x01\x00" + (1 << 2048).to_bytes(257, "little")),
    (1.5, b"\x83F?\xf8\x00\x00\x00\x00\x00\x00"),
    ("hé", b"\x83m\x00\x00\x00\x03h\xc3\xa9"),  # str: a UTF-8 binary
    ([104, 105], b"\x83k\x00\x02hi"),
    ([256], b"\x83l\x00\x00\x00\x01b\x00\x00\x01\x00j"),
    ([True], b"\x83l\x00\x00\x00\x01w\x04truej"),  # a bool is no byte
    ((), b"\x83h\x00"),
    (tuple(range(256)), b"\x83i\x00\x00\x01\x00" + b"".join(encode(i)[1:] for i in range(256))),
    (ErlangPid(NODE, 1, 2, 3), b"\x83Xw\x05e1@vm\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03"),
    (ErlangRef(NODE, 3, (9,)), b"\x83Z\x00\x01w\x05e1@vm\x00\x00\x00\x03\x00\x00\x00\x09"),
    (BitString(b"\xff\xff", 3), b"\x83M\x00\x00\x00\x02\x03\xff\xe0"),
]


@pytest.mark.parametrize(("data", "value"), ERLANG_VECTORS)
def test_decodes_erlang_bytes_whole_truncated_and_with_extra_bytes(data: bytes, value: Any) -> None:
    assert decode(data) == value
    assert type(decode(data)) is type(value)
    for cut in range(len(data)):  # every proper prefix is truncated
        with pytest.raises(TermDecodeError):
            decode(data[:cut])
    with pytest.raises(TermDecodeError, match="1 extra bytes"):
        decode(data + b"\x00")
    assert Decoder().decode_prefix(data + b"\x83j", 0) == (value, len(data))
    assert Decoder().decode_prefix(b"xx" + data, 2) == (value, len(data) + 2)


@pytest.mark.parametrize(("value", "data"), OUR_VECTORS)
def test_encodes_byte_vectors(value: Any, data: bytes) -> None:
    assert encode(value) == data
    assert decode(data) == (value.encode() if isinstance(value, str) else value)  # str: lossy, a binary


def test_compressed_terms_decode_and_bombs_are_refused() -> None:
    body = encode([A("x")] * 1000)[1:]
    packed = b"\x83P" + struct.pack(">I", len(body)) + zlib.compress(body)
    assert decode(packed) == [A("x")] * 1000
    with pytest.raises(TermDecodeError, match="max_bytes"):
        Decoder(EtfLimits(max_bytes=100)).decode(packed)
    lying = b"\x83P" + struct.pack(">I", 10) + zlib.compress(body)
    with pytest.raises(TermDecodeError, match="announced"):
        decode(lying)
    with pytest.raises(TermDecodeError, match="zlib"):
        decode(b"\x83P\x00\x00\x00\x05garbage")


def test_limits() -> None:
    deep: Any = []
    for _ in range(10):
        deep = [deep]
    with pytest.raises(TermDecodeError, match="max_depth"):
        Decoder(EtfLimits(max_depth=5)).decode(encode(deep))
    assert Decoder(EtfLimits(max_depth=11)).decode(encode(deep)) == deep
    with pytest.raises(TermEncodeError, match="deeper"):
        encode(deep, max_depth=5)
    with pytest.raises(TermDecodeError, match="max_atom_chars"):
        Decoder(EtfLimits(max_atom_chars=3)).decode(encode(A("four")))
    with pytest.raises(TermDecodeError, match="max_atom_chars"):
        decode(b"\x83v\x01\x00" + b"a" * 256)  # over Erlang's own 255
    with pytest.raises(TermDecodeError, match="max_container_len"):
        Decoder(EtfLimits(max_container_len=2)).decode(encode((1, 2, 3)))
    with pytest.raises(TermDecodeError, match="max_big_bytes"):
        Decoder(EtfLimits(max_big_bytes=8)).decode(encode(2**80))
    with pytest.raises(TermDecodeError, match="max_bytes"):
        Decoder(EtfLimits(max_bytes=10)).decode(encode(b"x" * 20))
    with pytest.raises(TermDecodeError, match="cannot fit"):  # a count the input cannot hold: no allocation
        decode(b"\x83l\x00\x0f\xff\xff")
    deep_bytes = b"\x83" + b"l\x00\x00\x00\x01" * 100_000 + b"j" * 100_001
    with pytest.raises(TermDecodeError, match="max_depth"):  # never a RecursionError
        decode(deep_bytes)
    with pytest.raises(ValueError):
        EtfLimits(max_depth=0)


def test_bad_input_messages() -> None:
    cases = {
        b"": "no term",
        b"\x82j": "version byte 131",
        b"\x83\x01": "unknown or unsupported term tag 1",
        b"\x83R\x00": "atom cache",
        b"\x83v\x00\x02\xff\xfe": "not valid UTF-8",
        b"\x83n\x01\x02\x01": "sign byte",
        b"\x83Z\x00\x06w\x01a\x00\x00\x00\x00" + b"\x00" * 24: "1..5 words",
        b"\x83Xa\x01" + b"\x00" * 12: "node name must be an atom",
        b"\x83M\x00\x00\x00\x01\x09\x00": "1..8",
        b"\x83M\x00\x00\x00\x00\x03": "empty bit string",
        b"\x83t\x00\x00\x00\x02a\x01a\x01a\x01a\x02": "same key twice",
        b"\x83l\x00\x00\x00\x00a\x01": "tail that is not",
        b"\x83c" + b"nan".ljust(31, b"\x00"): "not finite",
        b"\x83p\x00\x00\x00\x05\x00": "too short",
    }
    for data, message in cases.items():
        with pytest.raises(TermDecodeError, match=message):
            decode(data)
    assert issubclass(TermDecodeError, DecodeError)


def test_refuses_values_with_no_erlang_form() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(TermEncodeError, match="finite"):
            encode(bad)
    with pytest.raises(TermEncodeError, match="no Erlang term"):
        encode({1, 2})
    with pytest.raises(TermEncodeError, match="UTF-8"):
        encode("\udc80")
    with pytest.raises(ValueError):
        A("x" * 256)
    with pytest.raises(TypeError):
        A(b"x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ImproperList((1,), [2])
    with pytest.raises(ValueError):
        ImproperList((), 2)
    with pytest.raises(ValueError):
        BitString(b"\x00", 8)
    with pytest.raises(ValueError):
        ErlangPid(NODE, -1, 0, 0)
    with pytest.raises(ValueError):
        ErlangRef(NODE, 0, (1, 2, 3, 4, 5, 6))
    with pytest.raises(TypeError):
        ErlangPid("e1@vm", 1, 0, 0)  # type: ignore[arg-type]


def test_value_types_and_decoder_options() -> None:
    assert A("ok") != "ok" and "ok" != A("ok") and "ok" not in {A("ok"): 1}
    assert A("ok") == A("ok") and hash(A("ok")) == hash(A("ok")) and str(A("ok")) == "ok"
    assert BitString(b"\xff", 3).data == b"\xe0" and BitString(b"\x00\xff", 1).bit_size == 9
    assert decode(encode("héllo"), binaries="str") == "héllo"
    assert decode(encode(b"\xff"), binaries="str") == b"\xff"  # not UTF-8: stays bytes
    assert decode(b"\x83k\x00\x02hi", strings="str") == "hi"
    assert decode(encode(True), bools=False) == A("true")
    assert decode(encode(None), none_atom=None) == A("undefined")
    assert encode(None, none_atom="nil") == encode(A("nil"))
    assert decode(encode(A("nil")), none_atom="nil") is None
    assert encode(charlist("hé")) == b"\x83k\x00\x02h\xe9" and encode(charlist("ā")) == encode([257])
    with pytest.raises(ValueError):
        Decoder(strings="bytes")


def test_map_keys_that_are_lists_or_maps_decode_frozen() -> None:
    value = {FrozenList([1, 2]): A("a"), FrozenMap({A("k"): FrozenList([])}): [3], (1, FrozenList([4])): {}}
    got = decode(encode(value))
    assert got == value
    assert all(isinstance(k, (FrozenList, FrozenMap, tuple)) for k in got)
    assert FrozenList([1]) == [1] and [1] == FrozenList([1]) and FrozenMap({1: 2}) == {1: 2}
    assert hash(FrozenMap({1: 2})) == hash(FrozenMap([(1, 2)]))
    with pytest.raises(TermDecodeError, match="same key twice"):  # 1 and true are one key in Python
        decode(b"\x83t\x00\x00\x00\x02a\x01a\x01d\x00\x04truea\x02")


def test_joerl_pids_map_to_erlang_pids_losslessly() -> None:
    for ident in (0, 1, 2**32 - 1, 2**32, 2**64 - 1, 0x1234_5678_9ABC_DEF0):
        pid = Pid(5, ident, 77)
        epid = erlang_pid(pid, A("py@vm"))
        assert (epid.id, epid.serial) == (ident & 0xFFFFFFFF, ident >> 32)
        assert joerl_pid(epid, 5) == pid
        assert decode(encode(epid)) == epid


# -- hypothesis ---------------------------------------------------------------

_NAMES = st.text(max_size=20).filter(lambda s: s not in ("true", "false", "undefined"))
atoms = _NAMES.map(Atom)
nodes = st.from_regex(r"[a-z]{1,8}@[a-z0-9.]{1,12}", fullmatch=True).map(Atom)
u32 = st.integers(0, 2**32 - 1)
pids = st.builds(ErlangPid, nodes, u32, u32, u32)
refs = st.builds(ErlangRef, nodes, u32, st.lists(u32, min_size=1, max_size=5).map(tuple))
bitstrings = st.builds(BitString, st.binary(min_size=1, max_size=8), st.integers(1, 7))
floats = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.one_of(
    atoms,
    st.booleans(),
    st.none(),
    st.integers(),
    st.integers(-(2**300), 2**300),
    floats,
    st.binary(max_size=20),
    bitstrings,
    pids,
    refs,
)
keys = st.recursive(
    scalars, lambda inner: st.one_of(st.tuples(inner, inner), st.lists(inner, max_size=3).map(FrozenList)), max_leaves=6
)


def _improper(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    tails = children.filter(lambda t: not isinstance(t, (list, ImproperList)))
    return st.builds(ImproperList, st.lists(children, min_size=1, max_size=4).map(tuple), tails)


terms = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(keys, inner, max_size=4),
        _improper(inner),
        st.lists(st.integers(0, 255), max_size=10),
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(terms)
def test_round_trip_in_python(term: Any) -> None:
    assert decode(encode(term)) == term


@settings(max_examples=200, deadline=None)
@given(terms)
def test_every_truncation_is_a_decode_error(term: Any) -> None:
    data = encode(term)
    for cut in range(0, len(data), max(1, len(data) // 40)):
        with pytest.raises(TermDecodeError):
            decode(data[:cut])


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_random_bytes_give_only_decode_errors(data: bytes) -> None:
    for blob in (data, b"\x83" + data):
        try:
            decode(blob)
        except TermDecodeError:
            pass


@settings(max_examples=500, deadline=None)
@given(terms, st.data())
def test_fuzz_mutated_terms_give_only_decode_errors(term: Any, data: st.DataObject) -> None:
    blob = bytearray(encode(term))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    try:
        decode(bytes(blob))
    except TermDecodeError:
        pass
