"""A slow consumer: one node reads slowly while another sends as fast as it can.

The consumer is a ``consume`` node process (its sink has a mailbox of 1000
and takes 20k messages a second for the first few seconds); the producer is
a ``flood`` node process that sends for 3 s. When the sink's mailbox is full,
the consumer's link reader waits, the kernel's buffers fill, then the
producer's link queue (``LinkConfig.max_queue_bytes``), and the producer's
sends wait: backpressure. The producer's memory must stay bounded; this test
samples both processes' RSS every 100 ms, with the default queue bound
(8 MiB) and with 1 MiB.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
import pytest
from _reliakit import rss_kb
from gevent.event import Event

from joerl.testing import ChildProcess, fields

pytestmark = pytest.mark.reliability

MiB = 1024 * 1024


@pytest.mark.timeout(60)
@pytest.mark.parametrize("queue_mib", [8, 1], ids=["queue-8MiB", "queue-1MiB"])
def test_slow_consumer_keeps_the_senders_memory_bounded(
    start_node: Callable[..., ChildProcess], scenario: Any, queue_mib: int
) -> None:
    flood_s, slow_for, rate, mailbox = 3.0, 4.0, 20_000, 1000
    queue = queue_mib * MiB
    cap_kb = (4 * queue + 16 * MiB) // 1024
    rec = scenario(
        f"slow_consumer_{queue_mib}MiB",
        f"a slow consumer, link queue bound {queue_mib} MiB",
        f"a `consume` node process whose sink has a mailbox of {mailbox} and takes {rate} messages/s for "
        f'{slow_for:.0f} s; a `flood` node process sending `("n", i)` to it as fast as it can for '
        f"{flood_s:.0f} s with `max_queue_bytes` = {queue_mib} MiB; tick time 60 s; both RSS sampled "
        "every 100 ms.",
    )
    consumer = start_node(
        "cons", "consume", "--mailbox", str(mailbox), "--rate", str(rate), "--slow-for", str(slow_for), tick=60.0
    )
    producer = start_node(
        "prod", "flood", "--to", "cons", "--seconds", str(flood_s), "--queue-bytes", str(queue), tick=60.0
    )
    producer.wait_line("FLOOD_READY")
    base_p, base_c = rss_kb(producer.pid), rss_kb(consumer.pid)
    samples: list[tuple[float, int, int]] = []
    stop = Event()

    def sampler() -> None:
        while not stop.is_set():
            samples.append((time.monotonic(), rss_kb(producer.pid), rss_kb(consumer.pid)))
            stop.wait(0.1)  # the sampling period, not a synchronisation

    g = gevent.spawn(sampler)
    try:
        producer.write_line("go")
        t_start = float(fields(producer.wait_line("FLOODING"))["t"])
        result = fields(producer.wait_line("FLOOD ", timeout=45))
    finally:
        stop.set()
        g.join(5)
    sink = fields(consumer.wait_line("SINK"))
    assert producer.wait() == 0, producer.stderr()

    t_end = t_start + float(result["seconds"])
    during = [s for s in samples if t_start <= s[0] <= t_end]
    first_half = [s[1] for s in during if s[0] < t_start + flood_s / 2]
    second_half = [s[1] for s in during if s[0] >= t_start + flood_s / 2]
    max_p = max(s[1] for s in samples)
    max_c = max(s[2] for s in samples)
    sent, received = int(result["sent"]), int(sink["received"])
    rec.figure("sent", sent, "messages sent")
    rec.figure("delivered", received, "messages delivered")
    rec.figure("order_violations", 0 if sink["in_order"] == "True" else 1, "order violations (0: all in order)")
    rec.figure("send_rate", int(result["rate"]), "producer's rate under backpressure", "msg/s")
    rec.figure("flood_s", float(result["seconds"]), "producer's sending time", "s")
    rec.figure(
        "overrun_s",
        float(result["seconds"]) - flood_s,
        f"producer's overrun past its {flood_s:.0f} s: its last send's wait for room",
        "s",
    )
    rec.figure("drain_s", float(result["drain"]), "last send to the consumer's answer", "s")
    rec.figure("queue_bytes", queue, "link queue bound (max_queue_bytes)", "bytes")
    rec.figure("queue_max", int(result["queue_max"]), "most bytes seen queued on the producer's link", "bytes")
    rec.figure("producer_rss_base_kb", base_p, "producer RSS before sending", "KiB")
    rec.figure("producer_rss_max_kb", max_p, "producer RSS, highest sample", "KiB")
    rec.figure("producer_rss_growth_kb", max_p - base_p, "producer RSS growth", "KiB")
    rec.figure(
        "producer_rss_growth_2nd_half_kb",
        max(second_half, default=0) - max(first_half, default=0),
        "producer RSS growth during the second half of the flood (0: a plateau)",
        "KiB",
    )
    rec.figure("consumer_rss_growth_kb", max_c - base_c, "consumer RSS growth", "KiB")
    rec.figure("samples", len(samples), "RSS samples")
    rec.check(received == sent, "every message delivered")
    rec.check(sink["in_order"] == "True", "no order violations")
    rec.check(int(result["queue_max"]) <= queue + 64 * 1024, "the link queue stayed within its bound (+ a frame)")
    rec.check(max_p - base_p < cap_kb, f"producer RSS growth under 4 x the queue bound + 16 MiB ({cap_kb} KiB)")
    rec.check(max_c - base_c < 32 * 1024, "consumer RSS growth under 32 MiB (its mailbox is bounded)")
    rec.check(len(first_half) >= 3 and len(second_half) >= 3, "enough RSS samples")
    rec.note(
        "The queue bound counts frame bytes; the producer's memory grows by several times that, for small "
        "messages: each queued frame is a Python bytes object (some 33 bytes of header for a ~30-byte "
        "frame), and the writer joins a whole batch into one more buffer before writing it. A send waits "
        "until the writer takes the whole queue, i.e. until the previous batch (up to the bound) has gone "
        "into the socket; hence the overrun. (The send timeout counts from the last byte the socket took, "
        "so a slow but steady consumer keeps its link.)"
    )
    rec.verify()
