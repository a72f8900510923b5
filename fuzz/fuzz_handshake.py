#!/usr/bin/env python
"""atheris harness: the node handshake engine (joerl/node/protocol.py ``Handshake``).

Input layout: ``mode:8 | step:8 | bytes``. ``mode`` picks the role and where
the fuzzed bytes start: an acceptor from scratch, an initiator from scratch,
an acceptor after a valid HELLO (the bytes stand for the REPLY), an initiator
after a valid STATUS + HELLO (the bytes stand for the ACK); and how a HELLO
is answered (accept, dialling tie-break, a refusal). The bytes are fed whole
and in pieces of ``step``: only ``HandshakeError`` may come out, the engine is
CLOSED after one, and the split changes neither events, error nor bytes sent.

    python fuzz/fuzz_handshake.py --selftest
    python fuzz/fuzz_handshake.py -max_total_time=600 /tmp/joerl-fuzz/handshake
"""

from __future__ import annotations

from typing import Any

from _harness import instrumented, main, outcome, pieces

with instrumented():
    from joerl.errors import HandshakeError, LocalProtocolError
    from joerl.node.protocol import (
        Established,
        Handshake,
        HandshakeState,
        HelloReceived,
        NodeIdentity,
        Role,
    )
    from joerl.testing import fixed_random

COOKIE = b"fuzz-cookie"
INI = NodeIdentity("fuzz-ini", 0x1111, creation=3)
ACC = NodeIdentity("fuzz-acc", 0x2222, creation=4)


def _new(role: Role) -> Handshake:
    if role is Role.ACCEPTOR:
        return Handshake(Role.ACCEPTOR, ACC, COOKIE, random_bytes=fixed_random(2))
    return Handshake(Role.INITIATOR, INI, COOKIE, expected_peer=ACC.name, random_bytes=fixed_random(1))


def _transcript() -> tuple[bytes, bytes, bytes, bytes]:
    ini, acc = _new(Role.INITIATOR), _new(Role.ACCEPTOR)
    hello_i = ini.data_to_send()
    acc.feed(hello_i)
    acc.accept()
    status_hello_a = acc.data_to_send()
    ini.feed(status_hello_a)
    ini.accept()
    reply = ini.data_to_send()
    acc.feed(reply)
    ack = acc.data_to_send()
    return hello_i, status_hello_a, reply, ack


HELLO_I, STATUS_HELLO_A, REPLY, ACK = _transcript()
DECISIONS = ["accept", "dialing", "busy", "not_allowed", "id_collision"]


def _drive(role: Role, chunks: list[bytes], decision: str) -> tuple[list[Any], Any, bytes]:
    engine = _new(role)
    events: list[Any] = []
    sent = bytearray(engine.data_to_send())
    try:
        for i, chunk in enumerate(chunks):
            todo = engine.feed(chunk)
            while todo:
                events += todo
                last, todo = todo[-1], []
                if isinstance(last, HelloReceived):
                    if decision == "accept" or (decision == "dialing" and role is Role.INITIATOR):
                        engine.accept()
                    elif decision == "dialing":
                        engine.accept(dialing=True)
                    else:
                        engine.refuse(decision, "fuzz")
                    sent += engine.data_to_send()
                    if engine.state is HandshakeState.CLOSED:
                        return events, None, bytes(sent)
                    todo = engine.feed(b"")
                elif isinstance(last, Established):
                    events[-1] = last._replace(leftover=last.leftover + b"".join(chunks[i + 1 :]))
                    return events, None, bytes(sent + engine.data_to_send())
            sent += engine.data_to_send()
    except HandshakeError as exc:
        assert engine.state is HandshakeState.CLOSED, engine.state
        sent += engine.data_to_send()
        try:
            engine.feed(b"x")
            raise AssertionError("a failed handshake took more bytes")
        except LocalProtocolError:
            pass
        return events, exc, bytes(sent)
    return events, None, bytes(sent)


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    mode, step, body = data[0] % 4, data[1] % 64 + 1, data[2:]
    decision = DECISIONS[(data[0] >> 2) % len(DECISIONS)]
    role = Role.ACCEPTOR if mode in (0, 2) else Role.INITIATOR
    prefix = {0: b"", 1: b"", 2: HELLO_I, 3: STATUS_HELLO_A}[mode]
    stream = prefix + body
    whole = _drive(role, [stream], decision)
    split = _drive(role, pieces(stream, step), decision)
    assert [outcome(e) for e in whole[0]] == [outcome(e) for e in split[0]]
    assert outcome(whole[1]) == outcome(split[1])
    assert whole[2] == split[2]


SEEDS = [
    bytes([0, 7]) + HELLO_I + REPLY,
    bytes([1, 7]) + STATUS_HELLO_A + ACK,
    bytes([2, 3]) + REPLY + b"\x00\x00\x00\x00",
    bytes([3, 3]) + ACK + b"\x00\x00\x00\x00",
    bytes([4, 64]) + HELLO_I,  # dialing
    bytes([8, 1]) + HELLO_I,  # busy
]

if __name__ == "__main__":
    main(test_one_input, SEEDS)
