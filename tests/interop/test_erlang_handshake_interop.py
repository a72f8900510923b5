"""The version 6 handshake engine against real ``erl`` nodes, both ways,
driven over real sockets by a tiny test-only loop; then a few control
messages (``net_adm:ping``'s is_auth call, a REG_SEND) to show the link
works. Erlang's own ``epmd`` runs on a free port; we register with the
standard ALIVE2 request and look Erlang up with PORT_PLEASE2."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from gevent import socket

from joerl.erlang.control import FrameDecoder, MonitorP, RegSend, Send, encode_frame
from joerl.erlang.handshake import ERLANG, Connected, ErlangHandshake, NameReceived, Role, detect_protocol
from joerl.erlang.terms import Atom, ErlangPid, ImproperList
from joerl.errors import AuthenticationError

pytestmark = pytest.mark.interop

COOKIE = "JOERLTEST"  # conftest's erl_argv sets it
PY = "py@127.0.0.1"
DEADLINE = 30.0


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("epmd closed the connection")
        out += chunk
    return out


def alive2(epmd_port: int, alive: str, port: int) -> tuple[socket.socket, int]:
    """Register ``alive`` at ``port`` with a standard ALIVE2; return the socket (keep it open) and the creation."""
    name = alive.encode()
    body = struct.pack(">BHBBHHH", 120, port, 72, 0, 6, 5, len(name)) + name + b"\x00\x00"
    sock = socket.create_connection(("127.0.0.1", epmd_port), timeout=10)
    sock.sendall(len(body).to_bytes(2, "big") + body)
    tag, result, creation = struct.unpack(">BBI", _recv_exact(sock, 6))
    assert (tag, result) == (118, 0), (tag, result)
    return sock, creation


def port_please(epmd_port: int, alive: str) -> int:
    body = b"z" + alive.encode()
    with socket.create_connection(("127.0.0.1", epmd_port), timeout=10) as sock:
        sock.sendall(len(body).to_bytes(2, "big") + body)
        tag, result, port = struct.unpack(">BBH", _recv_exact(sock, 4))
    assert (tag, result) == (119, 0)
    return int(port)


def run_handshake(sock: socket.socket, hs: ErlangHandshake, first: bytes = b"") -> Connected:
    """The test-only loop: send, receive, feed, answer NameReceived with accept()."""
    pending = first
    while True:
        out = hs.data_to_send()
        if out:
            sock.sendall(out)
        if not pending:
            pending = sock.recv(65536)
            if not pending:
                raise hs.closed_error()
        for event in hs.feed(pending):
            if isinstance(event, NameReceived):
                hs.accept()
                sock.sendall(hs.data_to_send())
                rest = hs.feed(b"")
                assert not rest
            elif isinstance(event, Connected):
                out = hs.data_to_send()
                if out:
                    sock.sendall(out)
                return event
        pending = b""


def serve_erlang(sock: socket.socket, conn: Connected, seen: list[Any], until: Callable[[Any], bool]) -> None:
    """Read frames; answer net_kernel's is_auth call with ``yes``, as net_kernel does."""
    frames = FrameDecoder()
    data = conn.leftover
    while True:
        for event in frames.feed(data):
            seen.append(event)
            if isinstance(event, RegSend) and event.to_name == Atom("net_kernel"):
                _, (caller, tag), _ = event.message  # {'$gen_call', {Caller, [alias | Ref]}, {is_auth, Node}}
                sock.sendall(encode_frame(Send(caller, (tag, Atom("yes")))))
            if until(event):
                return
        data = sock.recv(65536)
        if not data:
            return


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    yield s
    s.close()


def test_erlang_dials_us_and_pings_pong(real_epmd: Any, erl_node: Any, listener: socket.socket) -> None:
    epmd = real_epmd()
    reg, creation = alive2(epmd.port, "py", listener.getsockname()[1])
    seen: list[Any] = []
    result: dict[str, Any] = {}

    def acceptor() -> None:
        conn, _ = listener.accept()
        with conn:
            first = conn.recv(3)
            while detect_protocol(first) is None:
                first += conn.recv(3 - len(first))
            result["protocol"] = detect_protocol(first)
            hs = ErlangHandshake(Role.ACCEPTOR, PY, COOKIE, creation)
            established = run_handshake(conn, hs, first)
            result["conn"] = established
            serve_erlang(conn, established, seen, lambda e: False)

    with gevent.Timeout(DEADLINE):
        g = gevent.spawn(acceptor)
        node = erl_node(
            epmd.port,
            "e1",
            f"R = net_adm:ping('{PY}'), io:format(\"ping=~p hidden=~p~n\", [R, nodes(hidden)]), "
            "receive never -> ok after 60000 -> ok end.",
        )
        assert node.first_line == f"ping=pong hidden=['{PY}']", node.first_line
        node.kill()
        g.join()
    reg.close()
    conn = result["conn"]
    assert result["protocol"] == ERLANG
    assert conn.peer == "e1@127.0.0.1" and conn.peer_creation >= 4
    assert isinstance(next(e for e in seen if isinstance(e, MonitorP)).to_proc, Atom)
    call = next(e for e in seen if isinstance(e, RegSend))
    assert isinstance(call.message[1][1], ImproperList) and call.message[2] == (Atom("is_auth"), Atom("e1@127.0.0.1"))


def test_we_dial_erlang_and_send_to_a_registered_process(
    real_epmd: Any, erl_node: Any, listener: socket.socket
) -> None:
    epmd = real_epmd()
    reg, creation = alive2(epmd.port, "py", listener.getsockname()[1])
    node = erl_node(
        epmd.port,
        "e2",
        'register(box, self()), io:format("up~n"), '
        'receive M -> io:format("got ~w~n", [M]) after 30000 -> io:format("nothing~n") end, init:stop().',
    )
    assert node.first_line == "up"
    port = port_please(epmd.port, "e2")
    me = ErlangPid(Atom(PY), 1, 0, creation)
    with gevent.Timeout(DEADLINE), socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        hs = ErlangHandshake(Role.INITIATOR, PY, COOKIE, creation, expected_peer="e2@127.0.0.1")
        conn = run_handshake(sock, hs)
        assert conn.peer == "e2@127.0.0.1" and conn.peer_creation >= 4
        sock.sendall(encode_frame(RegSend(me, Atom("box"), (Atom("from_py"), me, b"text", [1, 2, 3], 3.25))))
        line = node.proc.stdout.readline().strip()
    reg.close()
    assert line.startswith("got {from_py,<") and line.endswith(",<<116,101,120,116>>,[1,2,3],3.25}")


def test_wrong_cookie_is_refused_both_ways(real_epmd: Any, erl_node: Any, listener: socket.socket) -> None:
    epmd = real_epmd()
    reg, creation = alive2(epmd.port, "py", listener.getsockname()[1])
    errors: list[BaseException] = []

    def acceptor() -> None:
        conn, _ = listener.accept()
        with conn:
            try:
                run_handshake(conn, ErlangHandshake(Role.ACCEPTOR, PY, "WRONG", creation))
            except AuthenticationError as exc:
                errors.append(exc)

    with gevent.Timeout(DEADLINE):
        g = gevent.spawn(acceptor)
        node = erl_node(
            epmd.port,
            "e3",
            f"io:format(\"ping=~p~n\", [net_adm:ping('{PY}')]), receive never -> ok after 60000 -> ok end.",
        )
        assert node.first_line == "ping=pang"
        g.join()
        assert len(errors) == 1 and "cookie" in str(errors[0])  # Erlang dialled us with its cookie: refused

        port = port_please(epmd.port, "e3")
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
            hs = ErlangHandshake(Role.INITIATOR, PY, "WRONG", creation, expected_peer="e3@127.0.0.1")
            with pytest.raises(AuthenticationError, match="cookie"):  # Erlang closes without an ack
                run_handshake(sock, hs)
    reg.close()
