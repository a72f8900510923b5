"""The daemon's name table (joerl.epmd._table) and admission control (joerl.epmd._admission),
with injected clocks: creations, remembered names, cached replies, per-address limits."""

from __future__ import annotations

from joerl.epmd._admission import Admission
from joerl.epmd._table import Entry, NameTable
from joerl.epmd.protocol import NodeInfo, NodeList, encode_dump, encode_names


class FakeConn:
    def __init__(self, fd: int = 7, local: bool = True) -> None:
        self.fd = fd
        self.local = local
        self.entry: Entry | None = None
        self.shut = False

    def shutdown(self) -> None:
        self.shut = True

    def describe(self) -> str:
        return "127.0.0.1:1"


def _node(name: str, creation: int, kind: str = "joerl") -> NodeInfo:
    return NodeInfo(name, "", 5000, {}, creation, kind=kind)


def test_creations_start_at_wallclock_and_grow_per_name() -> None:
    t = NameTable(lambda: 0.0, lambda: 1795681269.4)
    cr = t.next_creation("a")
    assert cr == 1795681270
    conn = FakeConn()
    e = t.add(_node("a", cr), conn)
    assert conn.entry is e and "a" in t and len(t) == 1
    t.remove(e, "gone")
    assert "a" not in t and t.next_creation("a") == cr + 1
    assert NameTable(lambda: 0.0, lambda: 0.0).next_creation("x") == 4  # never below 4


def test_old_names_are_bounded_and_listed_by_dump() -> None:
    t = NameTable(lambda: 0.0, lambda: 100.0, remembered=2)
    for i, name in enumerate("abc"):
        t.remove(t.add(_node(name, 10 + i), FakeConn(fd=i)), None)
    live = t.add(_node("d", 5), FakeConn(fd=9))
    assert t.dump_reply(4369) == encode_dump(4369, [("d", 5000, 9)], [("b", 5000, 1), ("c", 5000, 2)])
    assert t.next_creation("a") == 101  # forgotten: a first creation again
    assert t.get("d") is live


def test_cached_replies_follow_changes() -> None:
    t = NameTable(lambda: 0.0, lambda: 100.0)
    assert t.names_reply(1) == encode_names(1, [])
    a = t.add(_node("a", 4), FakeConn())
    t.add(_node("b", 4), FakeConn())
    assert t.names_reply(1) == encode_names(1, [("b", 5000), ("a", 5000)])
    assert t.list_reply() == NodeList(tuple(t.nodes())).encode()
    t.remove(a, None)
    assert t.names_reply(1) == encode_names(1, [("b", 5000)])
    assert [n.name for n in t.nodes()] == ["b"]


def test_stale_and_evict() -> None:
    now = [0.0]
    t = NameTable(lambda: now[0], lambda: 100.0)
    conn = FakeConn()
    e = t.add(_node("j", 4), conn)
    t.add(_node("erl", 4, kind="erlang"), FakeConn())
    now[0] = 10.0
    assert t.stale(5.0) == [e]  # Erlang's registrations have no keep-alive
    t.evict(e, "expired")
    assert conn.shut and conn.entry is None and "j" not in t


def test_admission_counts_live_connections_per_address() -> None:
    a = Admission(max_per_address=2, rate_per_address=100.0, clock=lambda: 0.0)
    assert a.admit("1.2.3.4") and a.admit("1.2.3.4")
    assert not a.admit("1.2.3.4")
    assert a.admit("5.6.7.8") and a.live() == 3 and a.live("1.2.3.4") == 2
    a.release("1.2.3.4")
    assert a.admit("1.2.3.4")
    for ip in ("1.2.3.4", "1.2.3.4", "5.6.7.8"):
        a.release(ip)
    assert a.live() == 0


def test_admission_rate_limit_refills_on_the_clock() -> None:
    now = [0.0]
    a = Admission(max_per_address=100, rate_per_address=2.0, clock=lambda: now[0])
    assert a.admit("h") and a.admit("h")
    assert not a.admit("h")  # burst spent; a refusal spends nothing
    now[0] = 0.5
    assert a.admit("h") and not a.admit("h")
    assert a.live("h") == 3


def test_admission_rate_zero_admits_none() -> None:
    assert not Admission(max_per_address=5, rate_per_address=0.0, clock=lambda: 0.0).admit("h")
