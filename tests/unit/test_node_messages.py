"""The control message types and their bounds (joerl/node/messages.py)."""

from __future__ import annotations

import pytest

from joerl.node import messages as m
from joerl.node import protocol as p
from joerl.pid import Pid, Ref

P1, P2 = Pid(1, 2, 3), Pid(4, 5, 6)
R1 = Ref(1, 99, 3)


def test_op_codes_are_the_wire_table() -> None:
    ops = {name: getattr(m, name) for name in dir(m) if name.startswith("OP_") and name != "OP_NAMES"}
    assert sorted(ops.values()) == list(range(1, 20))  # 17: FLOW (flow control), 18: ACK, 19: CALL
    assert {m.OP_NAMES[code] for code in ops.values()} == {name[3:] for name in ops}


def test_defaults_and_fields() -> None:
    assert m.Unlink(P1, P2).id == 0
    req = m.SpawnRequest(R1, P1, "echo", b"\x90")
    assert (req.link, req.monitor) == (False, False)
    assert m.SendTerms(None, P2, (1,))._fields == ("sender", "to", "msgs")
    assert m.Tick() == ()
    assert m.CallReply(R1, b"x").released is False
    assert m.Call._fields == ("sender", "to", "ref", "payload")


def test_the_facade_re_exports_every_message() -> None:
    shared = [name for name in m.__all__ if name[0].isupper() and name not in ("OP_NAMES", "U32", "U64")]
    assert "Send" in shared and "MAX_TERM_ITEMS" in shared
    for name in shared + [name for name in dir(m) if name.startswith("OP_") and name != "OP_NAMES"]:
        assert getattr(p, name) is getattr(m, name), name


@pytest.mark.parametrize(
    "msgs, plain",
    [
        (("s", b"b", 1, 1.5, True, None), True),
        ((("ping", 7), ()), True),
        ((("x",) * m.MAX_TERM_ITEMS,), True),
        ((("x",) * (m.MAX_TERM_ITEMS + 1),), False),
        (((("nested",),),), False),
        ((("a", [1]),), False),  # (a pair's items are checked unrolled)
        ((([1], "a"),), False),
        ((("a", None), (b"b", 1.5)), True),
        (([1],), False),
        (({"a": 1, b"b": None}, {}), True),
        (({f"{i}": i for i in range(m.MAX_TERM_ITEMS)},), True),
        (({f"{i}": i for i in range(m.MAX_TERM_ITEMS + 1)},), False),
        (({"a": [1]},), False),
        (({"a": (1,)},), False),
        (({1: "a"},), False),
        (({"a": [1]}, {"b": 1}), False),  # (a one-entry dict is checked without its items view)
        (({b"k": 1.5}, {"a": None, "b": True}), True),
        ((P1,), False),
    ],
)
def test_plain_terms(msgs: tuple[object, ...], plain: bool) -> None:
    assert m.plain_terms(msgs) is plain


def test_is_uint_is_exact() -> None:
    assert m.is_uint(0, m.U32) and m.is_uint(m.U32, m.U32) and m.is_uint(m.U64, m.U64)
    assert not m.is_uint(m.U32 + 1, m.U32)
    assert not m.is_uint(-1, m.U32)
    assert not m.is_uint(True, m.U32) and not m.is_uint(1.0, m.U32)
