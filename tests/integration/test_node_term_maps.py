"""Flat dicts as plain terms (FLAG_TERM_MAPS): a burst of ``{"ping": i}`` shares
SEND_TERMS frames, skipping the codec, and arrives equal, of the same types, in
order; a peer that does not offer the flag (a joerl before it) gets them
through the codec (SEND), the same messages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from joerl.actor import ActorContext
from joerl.node import protocol as p
from joerl.node.node import DistributedSystem
from joerl.pid import Pid
from joerl.testing import running_epmd, wait_until

pytestmark = pytest.mark.timeout(60)

MSGS: list[Any] = [
    {"ping": 1},
    {},
    {"s": "x", b"b": b"y", "i": -(2**63), "u": 2**64 - 1, "f": 1.5, "t": True, "n": None},
    {"l": [1, 2]},  # not flat: the codec (a list stays a list)
    {"t": (1, 2)},  # not flat: the codec (a tuple stays a tuple)
    {1: "int key"},  # not str or bytes keys: the codec
    {"big": 2**70},  # past msgpack's ints: the codec
    ("ping", 2),
    [1, 2],
    {f"k{i}": i for i in range(p.MAX_TERM_ITEMS + 1)},  # over MAX_TERM_ITEMS: the codec
] + [{"ping": i} for i in range(500)]


@pytest.fixture
def epmd() -> Iterator[str]:
    with running_epmd() as address:
        yield address


def _send_all(a: DistributedSystem, b: DistributedSystem) -> tuple[list[tuple[Any, Any]], Pid]:
    got: list[tuple[Any, Any]] = []

    def sink(ctx: ActorContext) -> None:
        while True:
            msg = ctx.receive()
            got.append((msg, ctx.sender))

    local = b.system.spawn_fn(sink).pid
    to = Pid(b.node_id, local.id, b.creation)
    a.connect_to_node(b.node_name)

    def source(ctx: ActorContext) -> None:
        for m in MSGS:
            ctx.send(to, m)

    src = a.system.spawn_fn(source).pid
    wait_until(lambda: len(got) >= len(MSGS), what="every message to arrive")
    return got, Pid(a.node_id, src.id, a.creation)


def _check(got: list[tuple[Any, Any]], src: Pid) -> None:
    assert [m for m, _ in got] == MSGS
    assert [type(m) for m, _ in got] == [type(m) for m in MSGS]
    for (m, _), sent in zip(got, MSGS, strict=True):
        if isinstance(sent, dict):
            assert list(m.items()) == list(sent.items())  # keys in order
            assert [(type(k), type(v)) for k, v in m.items()] == [(type(k), type(v)) for k, v in sent.items()]
    assert {s for _, s in got} == {src}


def test_dicts_cross_as_plain_terms_equal_and_in_order(epmd: str) -> None:
    opts: dict[str, Any] = {"cookie": "maps", "start_epmd": False, "global_names": False}
    with (
        DistributedSystem("a", "127.0.0.1:0", epmd, **opts) as a,
        DistributedSystem("b", "127.0.0.1:0", epmd, **opts) as b,
    ):
        got, src = _send_all(a, b)
        _check(got, src)
        conn = a._peers[b.node_name].link
        assert conn is not None and conn.flags & p.FLAG_TERM_MAPS and conn.encoder.maps
        assert conn.stats.frames_out < 100  # the burst of dicts shared frames
        assert b.stats.bad_payloads == 0


def test_a_peer_without_flag_term_maps_gets_dicts_through_the_codec(epmd: str, monkeypatch: pytest.MonkeyPatch) -> None:
    opts: dict[str, Any] = {"cookie": "maps-old", "start_epmd": False, "global_names": False}
    with DistributedSystem("a", "127.0.0.1:0", epmd, **opts) as a:
        monkeypatch.setattr(p, "DEFAULT_FLAGS", p.DEFAULT_FLAGS & ~p.FLAG_TERM_MAPS)
        with DistributedSystem("b", "127.0.0.1:0", epmd, **opts) as b:
            monkeypatch.undo()
            got, src = _send_all(a, b)
            _check(got, src)
            conn = a._peers[b.node_name].link
            assert conn is not None and not conn.flags & p.FLAG_TERM_MAPS and not conn.encoder.maps
            assert conn.encoder.term({"ping": 1}) is None
