"""Fuzzing Erlang's wire formats (joerl/erlang/): mutated encodings of rich terms into the term
decoder (only ``TermDecodeError``; what decodes re-encodes to the same value), mutated frame
streams into the ``FrameDecoder`` cut anywhere (the events do not depend on the cuts; only
``OversizedFrame`` is raised), and mutated handshake bytes into both roles of ``ErlangHandshake``."""

from __future__ import annotations

import sys
from pathlib import Path

from _fuzzkit import cut_points, fuzz_settings, mutated, split
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fuzz"))
import fuzz_erlang as harness  # noqa: E402  (fuzz/fuzz_erlang.py: the same targets and seeds as atheris)

SEEDS = st.sampled_from(harness.SEEDS)


@fuzz_settings(400)
@given(mutated(SEEDS, max_mutations=6))
def test_mutated_terms_frames_and_handshakes_give_only_our_errors(data: bytes) -> None:
    harness.test_one_input(data)


@fuzz_settings(200)
@given(st.data())
def test_frame_events_do_not_depend_on_how_the_stream_is_cut(data: st.DataObject) -> None:
    body = data.draw(mutated(st.sampled_from([s[2:] for s in harness.SEEDS if s[0] == 1])))
    cuts = data.draw(cut_points(len(body)))
    whole = harness.c.FrameDecoder(1 << 16, harness.DECODER)
    pieces = harness.c.FrameDecoder(1 << 16, harness.DECODER)
    try:
        expected = whole.feed(body)
    except harness.OversizedFrame as exc:
        expected = list(exc.messages)
    got = []
    for piece in split(body, cuts):
        try:
            got += pieces.feed(piece)
        except harness.OversizedFrame as exc:
            got += exc.messages
            break
    assert [harness.outcome(e) for e in got] == [harness.outcome(e) for e in expected]
