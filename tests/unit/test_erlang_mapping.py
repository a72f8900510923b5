"""joerl.erlang.mapping: pids, refs, terms, exit reasons and calls between the runtime and Erlang (pure)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joerl._gen import CALL, From, as_call
from joerl.erlang.control import AliasSend, Send
from joerl.erlang.mapping import ALIAS, EXCEPTION, GEN_CALL, TermMap
from joerl.erlang.terms import Atom, BitString, ErlangPid, ErlangRef, FrozenList, ImproperList
from joerl.message import ExceptionReason
from joerl.pid import Pid, Ref

US = "py@host"
CREATION = 77
E = Atom("e@host")


def node_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") or 1


@pytest.fixture
def m() -> TermMap:
    return TermMap(US, node_id(US), CREATION, node_id, lambda i: {5: "other@host"}.get(i))


def test_our_pids_map_losslessly_and_carry_our_creation(m: TermMap) -> None:
    pid = Pid(0, (7 << 32) | 9, 0)
    epid = m.pid_out(pid)
    assert epid == ErlangPid(Atom(US), 9, 7, CREATION)
    assert m.pid_in(epid) == pid


def test_a_pid_of_an_earlier_incarnation_of_ours_is_not_local(m: TermMap) -> None:
    stale = m.pid_in(ErlangPid(Atom(US), 1, 0, CREATION + 1))
    assert stale == Pid(node_id(US), 1, CREATION + 1)


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_erlang_pids_round_trip(id_: int, serial: int, creation: int) -> None:
    m = TermMap(US, node_id(US), CREATION, node_id, lambda i: None)
    epid = ErlangPid(E, id_, serial, creation)
    pid = m.pid_in(epid)
    assert pid.node == node_id("e@host") and m.pid_out(pid) == epid
    assert m.erlang[pid.node] == E  # learnt


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=5), st.booleans())
def test_erlang_refs_of_1_to_5_words_round_trip(words: list[int], alias: bool) -> None:
    m = TermMap(US, node_id(US), CREATION, node_id, lambda i: None)
    eref = ErlangRef(E, 3, tuple(words))
    ref = m.ref_in(eref, alias=alias)
    assert m.ref_out(ref) == eref and TermMap.is_alias_tag(ref) is alias
    assert (ref == m.ref_in(eref, alias=not alias)) is False  # the tag form is part of the key


def test_our_refs_round_trip(m: TermMap) -> None:
    ref = Ref(0, 2**40 + 3, 0)
    eref = m.ref_out(ref)
    assert eref == ErlangRef(Atom(US), CREATION, (3, 2**8, 0)) and m.ref_in(eref) == ref


def test_a_pid_of_another_joerl_node_is_named_by_its_name(m: TermMap) -> None:
    assert m.pid_out(Pid(5, 1, 2)).node == Atom("other@host")


def test_terms_map_inside_containers_and_map_keys(m: TermMap) -> None:
    pid = Pid(0, 1, 0)
    term = (pid, [pid, {"k": pid, (1,): [2]}], ImproperList((pid,), Ref(0, 1, 0)), BitString(b"\x80", 1), None)
    out = m.to_erlang(term)
    assert out[0] == m.pid_out(pid) and out[1][1]["k"] == m.pid_out(pid)
    assert out[2] == ImproperList((m.pid_out(pid),), m.ref_out(Ref(0, 1, 0)))
    assert m.to_local(out) == term
    assert isinstance(next(iter(m.to_erlang({pid: 1}))), ErlangPid)
    assert m.to_local({FrozenList([m.pid_out(pid)]): 1}) == {FrozenList([pid]): 1}


@pytest.mark.parametrize(
    ("local", "erlang"),
    [
        ("normal", Atom("normal")),
        ("killed", Atom("killed")),
        ("noproc", Atom("noproc")),
        ("noconnection", Atom("noconnection")),
        (("shutdown", Atom("x")), (Atom("shutdown"), Atom("x"))),
        (ExceptionReason("ValueError", "bad", "tb"), (EXCEPTION, "ValueError", "bad", "tb")),
    ],
)
def test_exit_reasons_map_both_ways(m: TermMap, local: object, erlang: object) -> None:
    assert m.reason_out(local) == erlang
    wire = tuple(p.encode() if isinstance(p, str) else p for p in erlang) if isinstance(erlang, tuple) else erlang
    assert m.reason_in(wire) == local


def test_an_exception_is_an_exception_reason_on_the_wire(m: TermMap) -> None:
    out = m.reason_out(KeyError("k"))
    assert out[:3] == (EXCEPTION, "KeyError", "'k'")


def test_gen_call_with_an_alias_tag_becomes_a_joerl_call_and_the_reply_goes_to_the_alias(m: TermMap) -> None:
    caller = ErlangPid(E, 5, 0, 1)
    mref = ErlangRef(E, 1, (1, 2, 3))
    tag = ImproperList((ALIAS,), mref)
    call = as_call(m.call_in((GEN_CALL, (caller, tag), (Atom("req"), b"x"))))
    assert call[0] == CALL and isinstance(call[1], From) and call[2] == (Atom("req"), b"x")
    reply = m.reply_out(call[1], ("ok", Pid(0, 3, 0)))
    assert isinstance(reply, AliasSend) and reply.alias == mref
    assert reply.message == (tag, ("ok", m.pid_out(Pid(0, 3, 0))))


def test_gen_call_with_a_plain_ref_tag_is_answered_by_send(m: TermMap) -> None:
    caller = ErlangPid(E, 5, 0, 1)
    mref = ErlangRef(E, 1, (9, 9, 9))
    call = as_call(m.call_in((GEN_CALL, (caller, mref), 1)))
    reply = m.reply_out(call[1], 2)
    assert reply == Send(caller, (mref, 2))


def test_what_is_not_a_call_is_just_mapped(m: TermMap) -> None:
    assert m.call_in((GEN_CALL, "not a from", 1)) == (GEN_CALL, "not a from", 1)
    assert m.call_in((Atom("x"), ErlangPid(E, 1, 0, 1))) == (Atom("x"), m.pid_in(ErlangPid(E, 1, 0, 1)))


def test_our_calls_go_out_with_an_alias_tag_and_replies_come_back_to_our_ref(m: TermMap) -> None:
    ref = Ref(0, 42, 0)
    msg = m.call_out(Pid(0, 1, 0), ref, "req")
    assert msg[0] == GEN_CALL and msg[1][1] == ImproperList((ALIAS,), m.ref_out(ref))
    assert m.reply_in((msg[1][1], 5)) == (ref, 5)
    assert m.reply_in((m.ref_out(ref), 5)) == (ref, 5)
    assert m.reply_in((ErlangRef(E, 1, (1,)), 5)) is None  # not one of ours
    assert m.reply_in("other") is None


def test_casts_map_both_ways(m: TermMap) -> None:
    from joerl.erlang.mapping import CAST, GEN_CAST

    pid = Pid(0, 1, 0)
    assert m.call_in((GEN_CAST, (Atom("x"), m.pid_out(pid)))) == (CAST, (Atom("x"), pid))
    assert m.message_out((CAST, pid)) == (GEN_CAST, m.pid_out(pid))
    assert m.message_out(("other", pid)) == ("other", m.pid_out(pid))
