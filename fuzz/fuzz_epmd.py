#!/usr/bin/env python
"""atheris harness: the port mapper's sans-IO decoders (joerl/epmd/protocol.py).

Input layout: ``mode:8 | step:8 | bytes``. ``mode`` picks the decoder: the
daemon's ``RequestDecoder`` (bytes fed in pieces of ``step`` and whole: the
verdict must not depend on the split), ``decode_request_body``, the client's
``ExtReplyDecoder``, or a ``ClassicReplyDecoder`` for each Erlang request.
Only ``EpmdProtocolError`` may come out.

    python fuzz/fuzz_epmd.py --selftest
    python fuzz/fuzz_epmd.py -max_total_time=600 /tmp/joerl-fuzz/epmd
"""

from __future__ import annotations

from typing import Any

from _harness import instrumented, main, outcome, pieces

with instrumented():
    from joerl.epmd import protocol as p

CLASSIC = [p.Alive2Req(4000, "node"), p.PortPlease2Req("node"), p.NamesReq(), p.DumpReq(), p.KillReq(),
           p.StopReq("node")]  # fmt: skip


def _feed(decoder: Any, chunks: list[bytes]) -> tuple[list[Any], Any]:
    out: list[Any] = []
    try:
        for chunk in chunks:
            out += decoder.feed(chunk)
    except p.EpmdProtocolError as exc:
        return out, exc
    return out, None


def _split_invariant(make: Any, data: bytes, step: int) -> None:
    whole, whole_err = _feed(make(), [data])
    split, split_err = _feed(make(), pieces(data, step))
    assert outcome(whole_err) == outcome(split_err), (whole_err, split_err)
    if whole_err is None:
        assert whole == split, (whole, split)


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    mode, step, body = data[0] % (3 + len(CLASSIC)), data[1] % 64 + 1, data[2:]
    if mode == 0:
        _split_invariant(p.RequestDecoder, body, step)
    elif mode == 1:
        try:
            p.decode_request_body(body)
        except p.EpmdProtocolError:
            pass
    elif mode == 2:
        _split_invariant(lambda: p.ExtReplyDecoder(max_len=1 << 16), body, step)
    else:
        dec = p.ClassicReplyDecoder(CLASSIC[mode - 3], max_size=1 << 16)
        try:
            reply = None
            for chunk in pieces(body, step):
                reply = dec.feed(chunk) or reply
            if reply is None:
                dec.feed_eof()
        except p.EpmdProtocolError:
            pass


NODE = p.NodeInfo("node", "127.0.0.1", 4000, {"k": [1, 2.5, None, True, b"x"]}, 7, kind="joerl")
SEEDS = [bytes([0, 7]) + r for r in (
    p.NamesReq().encode(), p.PortPlease2Req("node").encode(), p.Alive2Req(4000, "node").encode(),
    p.StopReq("node").encode(), p.Lookup("node", close=True).encode(), p.ListNodes().encode(),
    p.Register("node", "127.0.0.1", 4000, {"k": [1, {"n": b"v"}]}).encode() + p.KeepAlive("node").encode(),
    p.Unregister("node").encode(),
)] + [bytes([1, 1]) + p.Alive2Req(4000, "node").encode()[2:]] + [bytes([2, 5]) + r for r in (
    p.Registered(NODE).encode(), p.LookupResult(NODE).encode(), p.NodeList((NODE, NODE)).encode(),
    p.Pong().encode() + p.KeepAliveAck().encode(), p.ExtError("name_in_use", "taken").encode(),
)] + [bytes([3 + i, 3]) + r for i, r in enumerate((
    p.Alive2Resp(0, 5).encode(), p.Port2Resp(NODE).encode(), p.NamesResp(4369, (("a", 1),)).encode(),
    p.encode_dump(4369, [("a", 1, 5)], [("b", 2, 6)]), b"OK", b"STOPPED",
))]  # fmt: skip

if __name__ == "__main__":
    main(test_one_input, SEEDS)
