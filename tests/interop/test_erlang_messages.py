"""Messages between a joerl node and a real erl node, both ways: to registered names and to pids,
``ctx.sender`` from Erlang's SEND_SENDER and REG_SEND, and terms (pids and refs of both nodes
included) that come back exactly as they went."""

from __future__ import annotations

from typing import Any

import pytest
from erl_shell import ErlShell

from joerl.erlang import Atom, ErlangPid
from joerl.node.config import node_id_of
from joerl.testing import Probe

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

PY = "'py@127.0.0.1'"
RECEIVE = "receive M -> M after 10000 -> timeout end"


def test_erl_sends_to_a_registered_joerl_process_and_gets_an_answer(py_node: Any, e1: ErlShell) -> None:
    with Probe(py_node, name="box", timeout=10) as box:
        e1.eval(f'{{box, {PY}}} ! {{hello, self(), <<"text">>, [1, 2, 3], 3.25, #{{a => 1}}, "abc"}}')
        msg, sender = box.receive_with_sender()
        assert msg[0] == Atom("hello") and msg[2:] == (b"text", [1, 2, 3], 3.25, {Atom("a"): 1}, [97, 98, 99])
        assert sender == msg[1] and sender.node == node_id_of("e1@127.0.0.1")  # ctx.sender: the Erlang sender
        box.ctx.send(sender, ("pong", box.pid))  # to the Erlang pid it was given
        got = e1.eval(RECEIVE)
        assert got[0] == b"pong" and isinstance(got[1], ErlangPid) and got[1].node == Atom("py@127.0.0.1")


def test_erl_sends_to_a_joerl_pid_with_send_sender(py_node: Any, e1: ErlShell) -> None:
    e1.eval("catch register(shell, self())")
    with Probe(py_node, timeout=10) as box:
        box.ctx.send(("shell", "e1@127.0.0.1"), ("mypid", box.pid))  # REG_SEND to a name on e1
        e1.eval('receive {<<"mypid">>, P} -> P ! {direct, self()} after 10000 -> timeout end')
        msg, sender = box.receive_with_sender()
        assert msg[0] == Atom("direct") and sender == msg[1]


def test_plain_code_sends_to_a_name_on_erl(py_node: Any, e1: ErlShell) -> None:
    e1.eval("catch register(shell, self())")
    py_node.system.send(("shell", "e1@127.0.0.1"), ("from_py", 1, None, True))
    assert e1.eval(RECEIVE) == (b"from_py", 1, None, True)  # None is undefined, True is true


def test_terms_with_pids_and_refs_of_both_nodes_come_back_exactly(py_node: Any, e1: ErlShell) -> None:
    def echo(ctx: Any) -> None:
        while True:
            msg = ctx.receive()
            ctx.send(msg[0], msg)  # unchanged

    py_node.register("echo_proc", py_node.spawn_fn(echo).pid)
    e1.eval("catch register(shell, self())")
    with Probe(py_node, name="ours", timeout=10) as ours:
        ours.ctx.send(("shell", "e1@127.0.0.1"), ("ours", ours.pid, py_node.system.make_ref()))
        same = e1.eval(
            'receive {<<"ours">>, OurPid, OurRef} -> '
            "T = {self(), make_ref(), OurPid, OurRef, [a | b], <<1:3>>, #{[1] => {}}, 1 bsl 70, -1.5}, "
            f"{{echo_proc, {PY}}} ! T, receive T2 -> T2 =:= T after 10000 -> timeout end "
            "after 10000 -> nothing end"
        )
        assert same is True


def test_registered_types_cross_as_records_and_elixir_structs(epmd_port: int, e1: ErlShell) -> None:
    from dataclasses import dataclass

    from erl_shell import erlang_node

    from joerl.erlang import Records
    from joerl.node.erl_node import ErlangConfig

    @dataclass(frozen=True)
    class Point:
        x: int
        y: int

    @dataclass(frozen=True)
    class User:
        name: bytes
        age: int = 0

    records = Records()
    records.record(Point)
    records.struct(User, "Elixir.MyApp.User")
    node = erlang_node(epmd_port, "rec@127.0.0.1", erlang=ErlangConfig(records=records))
    try:
        with Probe(node, name="box", timeout=10) as box:
            e1.eval(
                "{box, 'rec@127.0.0.1'} ! {self(), {point, 1, 2}, "
                "#{'__struct__' => 'Elixir.MyApp.User', name => <<\"ann\">>, age => 7}}"
            )
            sender, point, user = box.receive()
            assert point == Point(1, 2) and user == User(b"ann", 7)
            box.ctx.send(sender, (Point(3, 4), User(b"bob")))
            same = e1.eval(
                "receive {{point, 3, 4}, #{'__struct__' := 'Elixir.MyApp.User', name := <<\"bob\">>, age := 0}} "
                "-> true after 10000 -> timeout end"
            )
            assert same is True
    finally:
        node.shutdown()


def test_none_is_nil_for_elixir_when_asked(epmd_port: int, e1: ErlShell) -> None:
    from erl_shell import erlang_node

    from joerl.node.erl_node import ErlangConfig

    node = erlang_node(epmd_port, "elixirish@127.0.0.1", erlang=ErlangConfig(none_atom="nil"))
    try:
        with Probe(node, name="box", timeout=10) as box:
            e1.eval("{box, 'elixirish@127.0.0.1'} ! {self(), nil, undefined}")
            sender, nil, undefined = box.receive()
            assert nil is None and undefined == Atom("undefined")
            box.ctx.send(sender, (None, "x"))
            assert e1.eval('receive {nil, <<"x">>} -> true after 10000 -> timeout end') is True
    finally:
        node.shutdown()


def test_a_peer_sending_nonsense_neither_kills_the_link_nor_floods_the_log(
    py_node: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from gevent import socket

    from joerl.erlang import control as c
    from joerl.erlang.handshake import ErlangHandshake, Role
    from joerl.node.erl_link import run_handshake

    hs = ErlangHandshake(Role.INITIATOR, "fake@127.0.0.1", "JOERLTEST", 3, expected_peer="py@127.0.0.1")
    me = ErlangPid(Atom("fake@127.0.0.1"), 1, 0, 3)
    nonsense = [
        c.Send(5, "to an int"),
        c.Link(Atom("a"), Atom("b")),
        c.MonitorP(1, 2, 3),
        c.Exit(me, "not a pid", Atom("x")),
        c.RegSend(me, Atom("net_kernel"), "not a call"),
        c.SpawnRequest(1, me, me, "not an mfa", [], []),
        c.AliasSend(me, "not a ref", 1),
    ] * 20
    with Probe(py_node, name="after", timeout=10) as after, caplog.at_level(logging.WARNING, logger="joerl.node"):
        with socket.create_connection(("127.0.0.1", py_node.listen_port), timeout=10) as sock:
            run_handshake(sock, hs, 10.0)
            sock.sendall(b"".join(c.encode_frame(m) for m in nonsense))
            sock.sendall(b"\x00\x00\x00\x03p\x83\xff" * 10)  # frames that do not decode
            sock.sendall(c.encode_frame(c.RegSend(me, Atom("after"), Atom("still_up"))))
            assert after.receive() == Atom("still_up")
            link = py_node.erlang.links.peers["fake@127.0.0.1"].link
            assert link is not None and not link.closed and link.bad_frames >= 10
    lines = [r for r in caplog.records if "fake@127.0.0.1" in r.getMessage()]
    assert 1 <= len(lines) <= 5, len(lines)
