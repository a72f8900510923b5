"""joerl.erlang.records: registered types cross as Erlang records or Elixir-struct-like maps (pure)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NamedTuple

import pytest

from joerl.erlang import Atom, Records, decode, encode
from joerl.erlang.mapping import TermMap
from joerl.erlang.records import STRUCT_KEY
from joerl.pid import Pid


@dataclass(frozen=True)
class Point:
    x: int
    y: int


class User(NamedTuple):
    name: str
    owner: Pid | None = None


def node_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") or 1


@pytest.fixture
def m() -> TermMap:
    records = Records()
    records.record(Point)
    records.struct(User, "Elixir.MyApp.User")
    return TermMap("py@host", node_id("py@host"), 7, node_id, lambda i: None, records)


def test_a_registered_dataclass_is_a_record(m: TermMap) -> None:
    assert m.to_erlang(Point(1, 2)) == (Atom("point"), 1, 2)
    assert m.to_local((Atom("point"), 1, 2)) == Point(1, 2)
    assert m.to_local((Atom("point"), 1)) == (Atom("point"), 1)  # another size: a plain tuple
    assert m.to_local([(Atom("point"), 3, 4)]) == [Point(3, 4)]


def test_a_registered_namedtuple_is_an_elixir_struct_and_pids_inside_are_mapped(m: TermMap) -> None:
    owner = Pid(0, 5, 0)
    out = m.to_erlang(User("ann", owner))
    assert out == {STRUCT_KEY: Atom("Elixir.MyApp.User"), Atom("name"): "ann", Atom("owner"): m.pid_out(owner)}
    wire = decode(encode(out))  # as it arrives: the str is a binary
    assert m.to_local(wire) == User(b"ann", owner)
    assert m.to_local({STRUCT_KEY: Atom("Elixir.MyApp.User"), Atom("name"): b"x", Atom("extra"): 1}) == User(b"x")
    assert m.to_local({STRUCT_KEY: Atom("Elixir.Other"), Atom("a"): 1}) == {
        STRUCT_KEY: Atom("Elixir.Other"),
        Atom("a"): 1,
    }


def test_unregistered_types_and_clashes_are_refused() -> None:
    records = Records()
    with pytest.raises(TypeError, match="neither a dataclass nor a NamedTuple"):
        records.record(dict)
    records.record(Point, "pt")
    with pytest.raises(ValueError, match="registered already"):
        records.record(Point)
    with pytest.raises(ValueError, match="registered already"):
        records.struct(Point, "Elixir.P")
