"""Erlang control messages and frames: byte vectors for every operation,
fed whole, byte by byte and with trailing bytes; ticks; bad frames skipped
in sync; the size limit."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joerl.erlang.control import (
    TICK,
    AliasSend,
    DemonitorP,
    Exit,
    Exit2,
    FrameDecoder,
    Link,
    MonitorP,
    MonitorPExit,
    RegSend,
    Send,
    SendSender,
    SpawnReply,
    SpawnRequest,
    Tick,
    UnlinkId,
    UnlinkIdAck,
    Unsupported,
    encode_frame,
)
from joerl.erlang.etf import encode
from joerl.erlang.terms import Atom, ErlangPid, ErlangRef, ImproperList
from joerl.errors import FrameError, OversizedFrame

A = Atom
E = ErlangPid(A("e1@vm"), 80, 0, 7)
P = ErlangPid(A("py@vm"), 1, 0, 9)
REF = ErlangRef(A("e1@vm"), 7, (1, 2, 3))
TOKEN = (A("trace"), 1)


def frame(control: Any, *message: Any) -> bytes:
    payload = b"p" + encode(control) + b"".join(encode(m) for m in message)
    return len(payload).to_bytes(4, "big") + payload


# (message, its frame as laid out by hand from the control tuple).
VECTORS: list[tuple[Any, bytes]] = [
    (Link(E, P), frame((1, E, P))),
    (Send(P, A("hi")), frame((2, A(""), P), A("hi"))),
    (Send(P, A("hi"), TOKEN), frame((12, A(""), P, TOKEN), A("hi"))),
    (Exit(E, P, A("bye")), frame((3, E, P, A("bye")))),
    (Exit(E, P, A("bye"), TOKEN), frame((13, E, P, TOKEN, A("bye")))),
    (RegSend(E, A("box"), [1]), frame((6, E, A(""), A("box")), [1])),
    (RegSend(E, A("box"), [1], TOKEN), frame((16, E, A(""), A("box"), TOKEN), [1])),
    (Exit2(E, P, A("kill")), frame((8, E, P, A("kill")))),
    (Exit2(E, P, A("kill"), TOKEN), frame((18, E, P, TOKEN, A("kill")))),
    (MonitorP(E, A("net_kernel"), REF), frame((19, E, A("net_kernel"), REF))),
    (DemonitorP(E, P, REF), frame((20, E, P, REF))),
    (MonitorPExit(P, E, REF, A("noproc")), frame((21, P, E, REF, A("noproc")))),
    (SendSender(E, P, b"x"), frame((22, E, P), b"x")),
    (SendSender(E, P, b"x", TOKEN), frame((23, E, P, TOKEN), b"x")),
    (
        SpawnRequest(REF, E, E, (A("m"), A("f"), 1), [A("monitor")], [1]),
        frame((29, REF, E, E, (A("m"), A("f"), 1), [A("monitor")]), [1]),
    ),
    (
        SpawnRequest(REF, E, E, (A("m"), A("f"), 0), [], [], TOKEN),
        frame((30, REF, E, E, (A("m"), A("f"), 0), [], TOKEN), []),
    ),
    (SpawnReply(REF, E, 2, P), frame((31, REF, E, 2, P))),
    (SpawnReply(REF, E, 0, A("badarg"), TOKEN), frame((32, REF, E, 0, A("badarg"), TOKEN))),
    (AliasSend(E, REF, A("m")), frame((33, E, REF), A("m"))),
    (AliasSend(E, REF, A("m"), TOKEN), frame((34, E, REF, TOKEN), A("m"))),
    (UnlinkId(4, E, P), frame((35, 4, E, P))),
    (UnlinkIdAck(2**64 - 1, P, E), frame((36, 2**64 - 1, P, E))),
]


@pytest.mark.parametrize(("msg", "data"), VECTORS)
def test_byte_vectors_whole_bytewise_and_trailing(msg: Any, data: bytes) -> None:
    assert encode_frame(msg) == data
    assert FrameDecoder().feed(data) == [msg]
    dec = FrameDecoder()
    events: list[Any] = []
    for i in range(len(data)):
        events += dec.feed(data[i : i + 1])
    assert events == [msg]
    dec = FrameDecoder()
    assert dec.feed(data + TICK + data[:5]) == [msg, Tick()]
    assert dec.feed(data[5:]) == [msg]


def test_payload_exit_variants_decode_to_the_classic_messages() -> None:
    dec = FrameDecoder()
    got = dec.feed(
        frame((24, E, P), A("r"))
        + frame((25, E, P, TOKEN), A("r"))
        + frame((26, E, P), A("r"))
        + frame((27, E, P, TOKEN), A("r"))
        + frame((28, P, E, REF), A("r"))
    )
    assert got == [Exit(E, P, A("r")), Exit(E, P, A("r"), TOKEN), Exit2(E, P, A("r")), Exit2(E, P, A("r"), TOKEN),
                   MonitorPExit(P, E, REF, A("r"))]  # fmt: skip


def test_ping_as_otp_25_sends_it() -> None:
    tag = ImproperList((A("alias"),), REF)
    call = (A("$gen_call"), (E, tag), (A("is_auth"), A("e1@vm")))
    [msg] = FrameDecoder().feed(frame((6, E, A(""), A("net_kernel")), call))
    assert msg == RegSend(E, A("net_kernel"), call)
    assert encode_frame(Send(E, (tag, A("yes")))) == frame((2, A(""), E), (tag, A("yes")))


def test_bad_frames_are_skipped_and_the_stream_stays_in_sync() -> None:
    bad = [
        (b"\x00\x00\x00\x02p\x00", "version byte"),
        (b"\x00\x00\x00\x03\x83Dx", "distribution header"),
        (b"\x00\x00\x00\x01q", "type 113"),
        (frame((1, E)), "needs 2 fields"),
        (frame((1, E, P), A("x")), "takes no message"),
        (frame((2, A(""), P)), "needs a message"),
        (frame((A("x"), 1)), "not a tuple"),
        (frame([1, 2]), "not a tuple"),
    ]
    dec = FrameDecoder()
    for data, message in bad:
        [err, ok] = dec.feed(data + encode_frame(Link(E, P)))
        assert isinstance(err, FrameError) and message in str(err), (err, message)
        assert ok == Link(E, P)
    [unsupported] = dec.feed(frame((7, E, P)))  # GROUP_LEADER
    assert unsupported == Unsupported(7, (7, E, P), None)


def test_oversized_frames_close_the_connection() -> None:
    dec = FrameDecoder(max_frame_size=100)
    with pytest.raises(OversizedFrame) as info:
        dec.feed(TICK + (101).to_bytes(4, "big"))
    assert info.value.messages == [Tick()]
    with pytest.raises(OversizedFrame):
        dec.feed(b"")
    with pytest.raises(TypeError):
        encode_frame((1, 2))  # type: ignore[arg-type]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120), st.integers(1, 16))
def test_fuzz_frames_give_only_events_or_oversized(data: bytes, step: int) -> None:
    whole = FrameDecoder(max_frame_size=1024)
    pieces = FrameDecoder(max_frame_size=1024)
    try:
        expected = whole.feed(data)
    except OversizedFrame:
        return
    got: list[Any] = []
    for i in range(0, len(data), step):
        got += pieces.feed(data[i : i + step])
    assert [repr(e) for e in got] == [repr(e) for e in expected]
