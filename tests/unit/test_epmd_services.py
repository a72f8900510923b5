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
        self.nonce: bytes | None = None
        self.shut = False

    def shutdown(self) -> None:
        self.shut = True

    def describe(self) -> str:
        return "peer"


def _services(
    relaxed: bool = False, cookie: bytes | None = None
) -> tuple[NameTable, ClassicService, ExtService, list[int]]:
    table = NameTable(lambda: 0.0, lambda: 1000.0)
    kills: list[int] = []
    classic = ClassicService(table, relaxed_command_check=relaxed, kill=lambda: kills.append(1))
    ext = ExtService(table, lambda: 0.0, cookie=cookie, max_metadata=64)
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


def _reply(ext: ExtService, conn: FakeConn, req: p.Request) -> p.ExtReply:
    return p.ExtReplyDecoder().feed(ext.answer(conn, req))[0]


def test_a_host_port_mapper_takes_registrations_from_its_own_host_only() -> None:
    table, _, ext, _ = _services()
    assert not ext.shared
    reply = _reply(ext, FakeConn(local=False), p.Register("a@h2", "10.0.0.2", 9))
    assert isinstance(reply, p.ExtError) and reply.code == "not_allowed" and "--shared" in reply.message
    assert isinstance(_reply(ext, FakeConn(), p.Register("a", "", 9)), p.Registered), "its own host's node"
    assert isinstance(_reply(ext, FakeConn(), p.Register("b@h1", "", 9)), p.Registered), "full names too"


def test_a_shared_port_mapper_takes_remote_registrations_that_prove_the_cookie() -> None:
    cookie = b"cluster-cookie"
    table, _, ext, _ = _services(cookie=cookie)
    assert ext.shared
    conn = FakeConn(local=False)
    no_auth = _reply(ext, conn, p.Register("a@h2", "10.0.0.2", 9))
    assert isinstance(no_auth, p.ExtError) and no_auth.code == "auth_failed"
    challenge = _reply(ext, conn, p.Challenge())
    assert isinstance(challenge, p.ChallengeReply) and len(challenge.nonce) == p.NONCE_BYTES
    assert challenge.nonce == conn.nonce
    wrong = p.register_mac(b"another-cookie", challenge.nonce, "a@h2", "10.0.0.2", 9)
    refused = _reply(ext, conn, p.Register("a@h2", "10.0.0.2", 9, auth=wrong))
    assert isinstance(refused, p.ExtError) and refused.code == "auth_failed" and "a@h2" not in table
    right = p.register_mac(cookie, challenge.nonce, "a@h2", "10.0.0.2", 9)
    replayed = _reply(ext, conn, p.Register("a@h2", "10.0.0.2", 9, auth=right))
    assert isinstance(replayed, p.ExtError) and replayed.code == "auth_failed", "a nonce is good for one attempt"
    nonce = _reply(ext, conn, p.Challenge())
    assert isinstance(nonce, p.ChallengeReply) and nonce.nonce != challenge.nonce
    moved = p.register_mac(cookie, nonce.nonce, "a@h2", "10.6.6.6", 9)
    other_host = _reply(ext, conn, p.Register("a@h2", "10.0.0.2", 9, auth=moved))
    assert isinstance(other_host, p.ExtError) and other_host.code == "auth_failed", "the MAC covers the host"
    nonce = _reply(ext, conn, p.Challenge())
    assert isinstance(nonce, p.ChallengeReply)
    ok = p.register_mac(cookie, nonce.nonce, "a@h2", "10.0.0.2", 9)
    registered = _reply(ext, conn, p.Register("a@h2", "10.0.0.2", 9, auth=ok))
    assert isinstance(registered, p.Registered) and "a@h2" in table
    assert ext.auth_failures == 4
    # Only the connection that registered a name unregisters it.
    assert ext.answer(FakeConn(local=False), p.Unregister("a@h2")) == p.Unregistered("a@h2", False).encode()
    assert ext.answer(conn, p.Unregister("a@h2")) == p.Unregistered("a@h2", True).encode()


def test_a_remote_registration_names_its_node_in_full() -> None:
    cookie = b"c"
    _, _, ext, _ = _services(cookie=cookie)
    conn = FakeConn(local=False)
    nonce = _reply(ext, conn, p.Challenge())
    assert isinstance(nonce, p.ChallengeReply)
    bare = p.Register("a", "10.0.0.2", 9, auth=p.register_mac(cookie, nonce.nonce, "a", "10.0.0.2", 9))
    reply = _reply(ext, conn, bare)
    assert isinstance(reply, p.ExtError) and reply.code == "not_allowed" and "name@host" in reply.message
