#!/usr/bin/env python
"""atheris harness: Erlang's wire formats (joerl/erlang/): the term decoder, the frame decoder, the handshake.

Input layout: ``mode:8 | step:8 | bytes``. ``mode`` picks the target: the
External Term Format ``Decoder`` (only ``TermDecodeError``; whatever decodes
re-encodes and decodes to the same value), the control-message
``FrameDecoder`` (bytes fed in pieces of ``step`` and whole: the events must
not depend on the split; only ``OversizedFrame`` may be raised), or an
``ErlangHandshake`` of either role (only ``HandshakeError`` or a
``LocalProtocolError`` once it is over).

    python fuzz/fuzz_erlang.py --selftest
    python fuzz/fuzz_erlang.py -max_total_time=600 /tmp/joerl-fuzz/erlang
"""

from __future__ import annotations

from typing import Any

from _harness import instrumented, main, outcome, pieces

with instrumented():
    from joerl.erlang import control as c
    from joerl.erlang.decoder import Decoder
    from joerl.erlang.etf import encode
    from joerl.erlang.handshake import ErlangHandshake, NameReceived, Role
    from joerl.erlang.limits import EtfLimits
    from joerl.erlang.terms import Atom, ErlangPid, ErlangRef, ImproperList, TermDecodeError, TermEncodeError
    from joerl.errors import HandshakeError, LocalProtocolError, OversizedFrame

DECODER = Decoder(EtfLimits(max_bytes=1 << 16, max_depth=32, max_container_len=1 << 12, max_big_bytes=64))


def _term(body: bytes) -> None:
    try:
        value = DECODER.decode(body)
    except TermDecodeError:
        return
    try:
        again = encode(value)
    except TermEncodeError:
        return  # (a value our encoder refuses, e.g. a map whose keys collide once decoded: never silently)
    assert Decoder().decode(again) == value, (body, value)


def _frames(body: bytes, step: int) -> None:
    def run(chunks: list[bytes]) -> tuple[list[Any], Any]:
        dec = c.FrameDecoder(1 << 16, DECODER)
        out: list[Any] = []
        try:
            for chunk in chunks:
                out += dec.feed(chunk)
        except OversizedFrame as exc:
            return out + list(exc.messages), exc  # (the events before it in that feed)
        return out, None

    whole, whole_err = run([body])
    split, split_err = run(pieces(body, step))
    assert [outcome(e) for e in whole] == [outcome(e) for e in split], (whole, split)
    assert outcome(whole_err) == outcome(split_err)


def _handshake(role: Role, body: bytes, step: int) -> None:
    hs = ErlangHandshake(role, "py@host", "cookie", 5, expected_peer="e@host", random_u32=lambda: 7)
    try:
        for chunk in pieces(body, step):
            for event in hs.feed(chunk):
                if isinstance(event, NameReceived):
                    hs.accept(dialing=step % 2 == 0)
    except (HandshakeError, LocalProtocolError):
        pass


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    mode, step, body = data[0] % 4, data[1] % 64 + 1, data[2:]
    if mode == 0:
        _term(body)
    elif mode == 1:
        _frames(body, step)
    else:
        _handshake(Role.INITIATOR if mode == 2 else Role.ACCEPTOR, body, step)


E, PY = Atom("e@host"), Atom("py@host")
PID = ErlangPid(E, 5, 0, 9)
REF = ErlangRef(E, 9, (1, 2, 3))
TERMS = [
    (Atom("ok"), 1, -1, 2**70, 1.5, b"bin", "text", [1, 2, 3], {Atom("k"): [PID]}),
    ImproperList((Atom("alias"),), REF),
    (Atom("$gen_call"), (PID, ImproperList((Atom("alias"),), REF)), (Atom("is_auth"), PY)),
]
FRAMES = [
    c.SendSender(PID, ErlangPid(PY, 1, 0, 5), TERMS[0]),
    c.RegSend(PID, Atom("net_kernel"), TERMS[2]),
    c.MonitorP(PID, Atom("box"), REF),
    c.AliasSend(PID, REF, (TERMS[1], Atom("yes"))),
    c.SpawnRequest(
        REF, PID, PID, (Atom("erpc"), Atom("execute_call"), 4), [Atom("monitor")], [REF, Atom("m"), Atom("f"), []]
    ),
]


def _name_msg() -> bytes:
    return ErlangHandshake(Role.INITIATOR, "e@host", "cookie", 9, expected_peer="py@host").data_to_send()


SEEDS = (
    [bytes([0, 1]) + encode(t) for t in TERMS]
    + [bytes([1, 7]) + b"".join(c.encode_frame(f) for f in FRAMES) + c.TICK]
    + [bytes([2, 3]) + b"\x00\x03sok" + b"\x00\x1eN" + bytes(29), bytes([3, 4]) + _name_msg()]
)  # fmt: skip

if __name__ == "__main__":
    main(test_one_input, SEEDS)
