"""The daemon's decisions, without sockets: Erlang's requests (joerl.epmd._classic_service)
and joerl's extension (joerl.epmd._ext_service) answered against a name table."""

from __future__ import annotations

from joerl.epmd import protocol as p
from joerl.epmd._classic_service import ClassicService
from joerl.epmd._ext_service import ExtService
from joerl.epmd._table import Entry, NameTable


class FakeConn:
    def __init__(self, local: bool = True) -> None:
        self.fd = 3
        self.local = local
        self.entry: Entry | None = None
        self.shut = False

    def shutdown(self) -> None:
        self.shut = True

    def describe(self) -> str:
        return "peer"


def _services(relaxed: bool = False) -> tuple[NameTable, ClassicService, ExtService, list[int]]:
    table = NameTable(lambda: 0.0, lambda: 1000.0)
    kills: list[int] = []
    classic = ClassicService(table, relaxed_command_check=relaxed, kill=lambda: kills.append(1))
    ext = ExtService(table, lambda: 0.0, allow_remote_register=False, max_metadata=64)
    return table, classic, ext, kills


def test_alive2_registers_and_refuses_a_taken_name() -> None:
    table, classic, _, _ = _services()
    conn = FakeConn()
    assert classic.answer(conn, p.Alive2Req(5000, "a"), 4369) == p.Alive2Resp(0, 1001).encode()
    assert conn.entry is not None and table.get("a") is conn.entry
    assert classic.answer(FakeConn(), p.Alive2Req(5001, "a"), 4369) == p.Alive2Resp(1, 99).encode()
    v5 = p.Alive2Req(5002, "b", highest_version=5)
    assert classic.answer(FakeConn(), v5, 4369) == p.Alive2Resp(0, 1001 % 3 + 1, False).encode()
    assert classic.answer(FakeConn(local=False), p.Alive2Req(1, "c"), 4369) == b""


def test_port_please_names_kill_and_stop() -> None:
    table, classic, _, kills = _services()
    classic.answer(FakeConn(), p.Alive2Req(5000, "a"), 4369)
    node = table.get("a")
    assert node is not None
    assert classic.answer(FakeConn(local=False), p.PortPlease2Req("a"), 1) == p.Port2Resp(node.node).encode()
    assert classic.answer(FakeConn(local=False), p.NamesReq(), 1) == p.encode_names(1, [("a", 5000)])
    assert classic.answer(FakeConn(local=False), p.DumpReq(), 1) == b""
    assert classic.answer(FakeConn(), p.KillReq(), 1) == b"NO" and not kills
    assert classic.answer(FakeConn(), p.StopReq("a"), 1) == b""
    _, relaxed, _, kills = _services(relaxed=True)
    assert relaxed.answer(FakeConn(), p.StopReq("zz"), 1) == b"NOEXIST"
    assert relaxed.answer(FakeConn(), p.KillReq(), 1) == b"OK" and kills == [1]


def test_extension_register_keepalive_unregister() -> None:
    table, _, ext, _ = _services()
    conn = FakeConn()
    reply = p.ExtReplyDecoder().feed(ext.answer(conn, p.Register("j", "h", 9, {"k": 1})))[0]
    assert isinstance(reply, p.Registered) and reply.node.kind == "joerl" and "j" in table
    assert ext.answer(conn, p.KeepAlive("j")) == p.KeepAliveAck().encode()
    again = p.ExtReplyDecoder().feed(ext.answer(conn, p.Register("k", "h", 9)))[0]
    assert isinstance(again, p.ExtError) and again.code == "already_registered"
    assert ext.answer(FakeConn(), p.Unregister("j")) == p.Unregistered("j", False).encode()
    assert ext.answer(conn, p.Unregister("j")) == p.Unregistered("j", True).encode()
    assert "j" not in table and conn.entry is None


def test_extension_refusals() -> None:
    _, _, ext, _ = _services()

    def code(conn: FakeConn, req: p.Request) -> str:
        reply = p.ExtReplyDecoder().feed(ext.answer(conn, req))[0]
        assert isinstance(reply, p.ExtError)
        return reply.code

    assert code(FakeConn(local=False), p.Register("r", "h", 9)) == "not_allowed"
    assert code(FakeConn(), p.Register("r", "h", 0)) == "bad_request"
    assert code(FakeConn(), p.Register("r", "h", 9, {"big": "x" * 100})) == "too_large"
    assert code(FakeConn(), p.KeepAlive("r")) == "not_registered"
    assert code(FakeConn(), p.UnknownExt("teleport")) == "unknown_op"
    ext.answer(FakeConn(), p.Register("r", "h", 9))
    assert code(FakeConn(), p.Register("r", "h", 9)) == "name_in_use"
