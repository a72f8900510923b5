"""The ETF codec against a real ``erl``: hypothesis-generated terms must
satisfy ``binary_to_term(encode(T)) =:= T`` in Erlang (T written as Erlang
source, independently of the codec) and ``decode(term_to_binary(T)) == T``
in Python, plain and compressed. One erl process serves the whole session."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from joerl.erlang.etf import decode, encode
from joerl.erlang.terms import Atom, ErlangPid, ErlangRef, ImproperList, Opaque

sys.path.insert(0, str(Path(__file__).parent))
from erl_oracle import ErlOracle  # noqa: E402  (tests/interop/erl_oracle.py)

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))
from test_erlang_etf import ERLANG_VECTORS, OUR_VECTORS, terms  # noqa: E402

pytestmark = pytest.mark.interop


@pytest.fixture(scope="session")
def oracle() -> Iterator[ErlOracle]:
    if shutil.which("erl") is None:
        pytest.skip("Erlang (erl) is not installed; CI installs erlang-nox")
    o = ErlOracle()
    yield o
    o.close()


def _agree(oracle: ErlOracle, term: Any) -> None:
    same, plain, packed = oracle.check(encode(term), term)
    assert same, f"binary_to_term(encode(T)) =/= T in Erlang for {term!r}"
    assert decode(plain) == term
    assert decode(packed) == term


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(terms)
def test_hypothesis_terms_agree_with_erlang(oracle: ErlOracle, term: Any) -> None:
    _agree(oracle, term)


@pytest.mark.parametrize("case", range(len(OUR_VECTORS)))
def test_our_byte_vectors_agree_with_erlang(oracle: ErlOracle, case: int) -> None:
    value, data = OUR_VECTORS[case]
    same, plain, _ = oracle.check(data, value)
    assert same and decode(plain) == (value.encode() if isinstance(value, str) else value)


def test_erlang_byte_vectors_are_what_erlang_reads(oracle: ErlOracle) -> None:
    for data, value in ERLANG_VECTORS:
        assert decode(oracle.reencode(data)) == value


def test_opaque_funs_ports_and_exports_round_trip_unchanged(oracle: ErlOracle) -> None:
    data = oracle.evaluate("{fun lists:reverse/1, fun(X) -> {X, self()} end, hd(erlang:ports()), self(), make_ref()}")
    export, fun, port, pid, ref = decode(data)
    assert [export.tag, fun.tag, port.tag] == [113, 112, 89] and all(isinstance(x, Opaque) for x in (export, fun, port))
    assert isinstance(pid, ErlangPid) and pid.node == Atom("nonode@nohost")
    assert isinstance(ref, ErlangRef) and len(ref.ids) == 3
    assert oracle.reencode(encode((export, fun, port, pid, ref))) == data


def test_gen_call_tags_and_unicode(oracle: ErlOracle) -> None:
    tag = ImproperList((Atom("alias"),), ErlangRef(Atom("e1@vm"), 7, (1, 2, 3)))
    _agree(oracle, (Atom("$gen_call"), (ErlangPid(Atom("e1@vm"), 80, 0, 7), tag), Atom("ping")))
    _agree(oracle, (Atom("héllo wörld ✓"), Atom("ü" * 255), "✓".encode(), [0x2713, 0x1F600]))
    assert decode(oracle.evaluate('<<"✓"/utf8>>'), binaries="str") == "✓"
    assert decode(oracle.evaluate('"✓"')) == [0x2713]
    assert decode(oracle.evaluate('"abc"'), strings="str") == "abc"
