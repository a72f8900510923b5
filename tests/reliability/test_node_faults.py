"""A peer that dies, a link cut under a stream, a peer that freezes: with the figures.

The peer is a ``serve`` node of ``tests/multiprocess/node_main.py`` (a real
OS process: it is killed with SIGKILL, or stopped with SIGSTOP); the sender
is a :class:`~_reliakit.Stream` in this process's node. The sender is told
of every loss by ``NodeDown`` or by ``Down(noconnection)`` of its monitor of
the sink; the sink counts what arrived. What the sink never got must lie in
a range the sender was told about (no silent loss); nothing may arrive out
of order or twice.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from _reliakit import Stream

from joerl.message import NOCONNECTION
from joerl.node.node import DistributedSystem
from joerl.testing import ChildProcess

pytestmark = pytest.mark.reliability


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)


def book_figures(rec: Any, stream: Stream, *, final: bool = True) -> None:
    """The figures every stream scenario reports, and its invariants."""
    rec.figure("sent", stream.sent, "messages sent")
    if final:
        assert stream.final is not None
        received, _, violations, gaps = stream.final
        lost = stream.sent - received
        rec.figure("delivered", received, "messages delivered (the sink's count)")
        rec.figure("lost", lost, "messages lost (sent, never delivered)")
        rec.figure("gaps", len(gaps), "gaps the sink saw (missing ranges before a later message)")
        rec.figure("order_violations", violations, "order violations (duplicate or out of order)")
        unreported = stream.unreported()
        rec.figure("unreported_lost", unreported, "lost messages the sender was never told of")
        rec.check(violations == 0, "no message delivered out of order or twice")
        rec.check(unreported == 0, "every lost message lies in a range reported by NodeDown/Down")
        rec.check(
            received + stream.reported_count() >= stream.sent,
            "delivered + reported lost accounts for every message sent",
        )
    else:
        rec.figure("delivered", stream.acked_received, "messages delivered (acknowledged by the sink)")
        rec.figure("order_violations", stream.ack_violations, "order violations the sink reported")
        rec.check(stream.ack_violations == 0, "no message delivered out of order or twice")
        rec.check(
            stream.acked_received + stream.reported_count() >= stream.sent,
            "delivered (acknowledged) + reported lost accounts for every message sent",
        )
    rec.figure("reported_lost", stream.reported_count(), "messages reported maybe lost (NodeDown/Down)")
    rec.figure("acks_out_of_order", stream.acks_out_of_order, "acknowledgements out of order")
    rec.figure("send_errors", len(stream.send_errors), "sends that raised (a send never should)")
    rec.check(stream.acks_out_of_order == 0, "acknowledgements (the way back) in order")


@pytest.mark.timeout(60)
def test_kill_9_of_a_peer_during_a_stream_of_100k(
    start_node: Callable[..., ChildProcess], here: DistributedSystem, scenario: Any
) -> None:
    total, window = 100_000, 10_000
    rec = scenario(
        "kill9",
        "kill -9 of a peer during a stream of 100k messages",
        f"{total} numbered messages, window {window} unacknowledged, from this process's node to a `serve` "
        "node process (acks every 100); SIGKILL once 30k were acknowledged; tick time 1 s; the sender "
        "stops at the first loss report.",
    )
    b = start_node("node_b", "serve")
    stream = Stream(here, "node_b", total=total, window=window, stop_on_loss=True)
    stream.wait(lambda s: s.acked_hi >= 30_000, what="30k messages acknowledged")
    t_kill = time.monotonic()
    b.proc.kill()
    stream.wait(lambda s: s.node_downs and s.downs, timeout=10, what="NodeDown and Down after kill -9")
    sent_at_kill = stream.sent
    stream.stop(final=False)

    detect = stream.node_downs[0][0] - t_kill
    rec.figure("planned", total, "messages the stream would have sent")
    rec.figure("sent_before_detect", sent_at_kill, "messages sent when the loss was reported")
    book_figures(rec, stream, final=False)
    rec.figure(
        "in_flight_lost",
        stream.sent - stream.acked_received,
        "messages sent but not acknowledged: lost in flight (all reported)",
    )
    rec.figure("detect_ms", ms(detect), "kill -9 to NodeDown", "ms")
    rec.figure("down_ms", ms(stream.downs[0][0] - t_kill), "kill -9 to Down of the sink's monitor", "ms")
    rec.check(
        stream.node_downs[0][1] == NOCONNECTION and stream.downs[0][1] == NOCONNECTION,
        "NodeDown and Down say noconnection",
    )
    unacked = stream.sent - 1 > stream.acked_hi
    rec.check(
        not unacked
        or (
            stream.reported
            and stream.reported[-1][1] == stream.sent - 1
            and stream.reported[0][0] <= stream.acked_hi + 1
        ),
        "every unacknowledged message was reported lost",
    )
    rec.check(detect < 5.0, "detected within 5 s")
    rec.verify()


@pytest.mark.timeout(60)
def test_link_reset_mid_stream_reconnects_on_the_next_send(
    start_node: Callable[..., ChildProcess], here: DistributedSystem, scenario: Any
) -> None:
    total, window, resets = 60_000, 5_000, 3
    rec = scenario(
        "reset",
        "a link reset mid-stream (socket shut down under it) and the reconnect",
        f"{total} numbered messages, window {window} unacknowledged, to a `serve` node process; "
        f"{resets} times, `shutdown(SHUT_RDWR)` of the link's socket on the sending side, the sender "
        "keeps sending (the next send dials again).",
    )
    start_node("node_b", "serve")
    stream = Stream(here, "node_b", total=total, window=window)
    detects: list[float] = []
    reconnects: list[float] = []
    resumes: list[float] = []
    for i in range(resets):
        mark = (i + 1) * total // (resets + 1)
        stream.wait(lambda s: s.acked_hi >= mark, what=f"reset {i}: progress")
        link = here._peers["node_b"].link
        assert link is not None and not link.closed
        downs, ups = len(stream.node_downs), len(stream.node_ups)
        t = time.monotonic()
        link.sock.shutdown(socket.SHUT_RDWR)
        stream.wait(lambda s: len(s.node_downs) > downs, timeout=10, what=f"reset {i}: NodeDown")
        stream.wait(lambda s: len(s.node_ups) > ups, timeout=15, what=f"reset {i}: NodeUp again")
        above = stream.reported_hi
        stream.wait(lambda s: s.acked_hi > above, timeout=15, what=f"reset {i}: stream resumed")
        detects.append(stream.node_downs[downs][0] - t)
        reconnects.append(stream.node_ups[ups] - t)
        resumes.append((stream.first_ack_after(t, above) or time.monotonic()) - t)
    stream.wait(lambda s: s.acked_received > 0 and s.sent >= total, what="all sent")
    stream.stop()

    book_figures(rec, stream)
    rec.figure("resets", resets, "link resets")
    rec.figure("node_downs", len(stream.node_downs), "NodeDown messages")
    rec.figure("detect_ms", ms(max(detects)), "reset to NodeDown (worst)", "ms")
    rec.figure("reconnect_ms", ms(max(reconnects)), "reset to the link up again (NodeUp; worst)", "ms")
    rec.figure(
        "reconnect_ms_median", ms(sorted(reconnects)[len(reconnects) // 2]), "reset to the link up again (median)", "ms"
    )
    rec.figure(
        "resume_ms", ms(max(resumes)), "reset to the first acknowledgement of a message sent after it (worst)", "ms"
    )
    rec.figure("dials_failed", here.stats.connect_failures, "reconnection attempts that failed")
    rec.check(len(stream.node_downs) == resets, "one NodeDown per reset")
    rec.check(max(reconnects) < 5.0, "the link came back within 5 s each time")
    rec.verify()


@pytest.mark.timeout(60)
def test_sigstop_and_sigcont_of_a_peer(
    start_node: Callable[..., ChildProcess], here: DistributedSystem, scenario: Any
) -> None:
    window, tick = 5_000, 1.0
    rec = scenario(
        "sigstop",
        "SIGSTOP and SIGCONT of a peer",
        f"an endless stream, window {window} unacknowledged, to a `serve` node process, tick time {tick:.0f} s "
        "on both sides; SIGSTOP once 10k were acknowledged, SIGCONT as soon as NodeDown came; then 10k more.",
    )
    b = start_node("node_b", "serve", tick=tick)
    stream = Stream(here, "node_b", window=window)
    stream.wait(lambda s: s.acked_hi >= 10_000, what="10k messages acknowledged")
    t_stop = time.monotonic()
    b.proc.send_signal(signal.SIGSTOP)
    stream.wait(lambda s: s.node_downs, timeout=tick * 2 + 5, what="NodeDown after SIGSTOP")
    t_cont = time.monotonic()
    b.proc.send_signal(signal.SIGCONT)
    ups = len(stream.node_ups)
    stream.wait(lambda s: len(s.node_ups) > ups, timeout=15, what="NodeUp after SIGCONT")
    above = stream.reported_hi
    stream.wait(lambda s: s.acked_hi > above + 10_000, timeout=20, what="10k more after SIGCONT")
    stream.stop()

    detect = stream.node_downs[0][0] - t_stop
    book_figures(rec, stream)
    rec.figure("stopped_ms", ms(t_cont - t_stop), "time the peer was stopped", "ms")
    rec.figure("detect_ms", ms(detect), "SIGSTOP to NodeDown", "ms")
    rec.figure("reconnect_ms", ms(stream.node_ups[ups] - t_cont), "SIGCONT to the link up again (NodeUp)", "ms")
    rec.figure(
        "resume_ms",
        ms((stream.first_ack_after(t_cont, above) or time.monotonic()) - t_cont),
        "SIGCONT to the first acknowledgement of a message sent after the loss",
        "ms",
    )
    rec.figure("node_downs", len(stream.node_downs), "NodeDown messages")
    rec.figure("dials_failed", here.stats.connect_failures, "reconnection attempts that failed")
    rec.check(detect < tick * 2 + 1.0, f"detected within 2 tick times (+1 s slack): {tick * 2 + 1.0:.0f} s")
    rec.note(
        "What was in flight at the freeze is reported lost (the sender cannot know), but it is not always "
        "lost: on waking, if the peer's reader runs before its ticker, it reads what waited in its socket, "
        "then the FIN, and delivers it all; if its ticker runs first, the link is declared silent and what "
        "was unread is dropped. Either way nothing arrives out of order: the peer refuses the new link "
        "(busy) until the old one is closed."
    )
    rec.verify()
