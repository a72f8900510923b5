#!/usr/bin/env python
"""atheris harness: the link frame decoder (joerl/node/protocol.py ``FrameDecoder``).

Input layout: ``step:8 | bytes``: a stream of ``Len:32 | body`` frames, fed
whole and in pieces of ``step``, into a decoder with a 1 KiB frame limit.
Only ``OversizedFrame`` may be raised (and then again on every later feed);
everything else is a control message or a ``FrameError`` in its place; the
split changes nothing.

    python fuzz/fuzz_frames.py --selftest
    python fuzz/fuzz_frames.py -max_total_time=600 /tmp/joerl-fuzz/frames
"""

from __future__ import annotations

from typing import Any

from _harness import instrumented, main, outcome, pieces

with instrumented():
    from joerl.node import protocol as p
    from joerl.pid import Pid, Ref

LIMIT = 1024
MESSAGE_TYPES = (p.Send, p.RegSend, p.Link, p.Unlink, p.UnlinkAck, p.Exit, p.Exit2, p.Monitor, p.Demonitor,
                 p.Down, p.SpawnRequest, p.SpawnReply, p.AliveRequest, p.AliveReply, p.CallReply, p.FrameError)  # fmt: skip


def _decode(chunks: list[bytes]) -> tuple[list[Any], Any, int]:
    dec = p.FrameDecoder(max_frame_size=LIMIT, pid_cache_size=8)
    out: list[Any] = []
    for chunk in chunks:
        try:
            out += dec.feed(chunk)
        except p.OversizedFrame as exc:
            out += exc.messages
            try:
                dec.feed(b"")
                raise AssertionError("a broken decoder took more bytes")
            except p.OversizedFrame as again:
                assert again is exc
            return out, exc, dec.ticks
    return out, None, dec.ticks


def test_one_input(data: bytes) -> None:
    if not data:
        return
    step, stream = data[0] % 64 + 1, data[1:]
    whole = _decode([stream])
    split = _decode(pieces(stream, step))
    assert all(isinstance(m, MESSAGE_TYPES) for m in split[0])
    assert [outcome(m) for m in whole[0]] == [outcome(m) for m in split[0]]
    assert outcome(whole[1]) == outcome(split[1]) and whole[2] == split[2]


P1, P2, R1 = Pid(1, 2, 3), Pid(4, 5, 6), Ref(1, 99, 3)
_MESSAGES: list[Any] = [
    p.Send(P1, P2, b"hi"), p.RegSend(None, "logger", b"\x01"), p.Link(P1, P2), p.Unlink(P1, P2, 7),
    p.UnlinkAck(P2, P1, 7), p.Exit(P1, P2, b"r"), p.Exit2(None, P2, b"kill"), p.Monitor(P1, "name", R1),
    p.Demonitor(P1, P2, R1), p.Down(P2, P1, R1, b"noproc"), p.SpawnRequest(R1, P1, "echo", b"\x90", True, False),
    p.SpawnReply(R1, P1, P2), p.SpawnReply(R1, P1, "error"), p.AliveRequest(R1, P2), p.AliveReply(R1, True),
    p.CallReply(R1, b"\xa2ok"),
]  # fmt: skip
SEEDS = [bytes([5]) + b"".join(p.encode_frame(m) for m in _MESSAGES)] + [
    bytes([1]) + p.encode_frame(m) + p.TICK_FRAME for m in _MESSAGES
]

if __name__ == "__main__":
    main(test_one_input, SEEDS)
