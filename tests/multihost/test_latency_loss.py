"""50 ms of latency each way and 2% packet loss between three simulated hosts.

Every TCP connection between two hosts goes through a relay that holds each
chunk 50 ms in each direction (``Network.delay``), and every host drops 2% of
the packets it receives (``Network.loss``, iptables ``statistic``). On such
a network, three nodes (tick time 2 s):

* mesh through discovery and stay up (no NodeDown while nothing is cut);
* answer calls (at least one round trip late), and a call that gets no
  answer times out at its deadline;
* keep every sender's order: two streams into one process arrive whole,
  each in order, nothing lost, duplicated or dropped;
* still declare a host that goes silent down within the tick time.

Figures are printed (run with ``-s``).
"""

from __future__ import annotations

import statistics
import time

import pytest
from agent_client import start_nodes, wait_meshed
from netns import Network

from joerl.testing import wait_until

pytestmark = [pytest.mark.multihost, pytest.mark.timeout(240)]

TICK = 2.0
SLACK = 1.5
DELAY_MS = 50.0
LOSS = 0.02
RATE = 200.0


def test_calls_order_and_detection_with_latency_and_loss(net: Network) -> None:
    alpha, beta, gamma = hosts = net.hosts
    for i, a in enumerate(hosts):
        for b in hosts[i + 1 :]:
            net.delay(a, b, DELAY_MS)
        net.loss(a, LOSS)
    t0 = time.monotonic()
    n1, n2, n3 = nodes = start_nodes(net, tick=TICK)
    meshed = wait_meshed(nodes, timeout=60)
    started = time.monotonic() - t0

    # calls: a round trip late, and timeouts on time
    calls = [n1.ok("call", node=n2.node, value=i)["seconds"] for i in range(20)]
    assert min(calls) >= 2 * DELAY_MS / 1000, calls
    held = n3.request("call", node=n1.node, hold=True, timeout=0.5)
    assert held["ok"] is False and held["error"] == "CallTimeout", held

    # two senders into one process: each in order, nothing lost
    for sender in (n1, n2):
        sender.ok("stream_start", node=n3.node, tag=sender.node, rate=RATE)
    wait_until(lambda: (n3.ok("stream_report", tag=n1.node)["report"] or {}).get("received", 0) >= RATE * 4, timeout=30)
    results = {}
    for sender in (n1, n2):
        sent = sender.ok("stream_stop", tag=sender.node)
        sender.ok("ping", node=n3.node)  # behind its last stream message
        results[sender.node] = (sent, n3.ok("stream_report", tag=sender.node)["report"])
    for who, (sent, got) in results.items():
        assert sent["dropped"] == 0 and sent["attempts"] == sent["sent"], (who, sent)
        assert got == {"received": sent["attempts"], "highest": sent["attempts"] - 1, "violations": 0, "gaps": []}, (
            who,
            sent,
            got,
        )
    for n in nodes:
        assert not [e for e in n.events if e["kind"] == "nodedown"], f"{n}: a node went down with nothing cut"

    # a host that goes silent is still found out within the tick time
    t_cut = time.monotonic()
    net.isolate(gamma)
    detection = {}
    for seer, lost in ((n1, n3), (n2, n3), (n3, n1), (n3, n2)):
        ev = seer.node_event("nodedown", lost.node, since=t_cut, timeout=TICK * 4)
        detection[f"{seer.node} sees {lost.node} down"] = ev["t"] - t_cut

    relayed = net.relay_stats()
    print(f"\n{DELAY_MS:.0f} ms each way, {LOSS:.0%} loss, tick {TICK}s:")
    print(f"  3 nodes started and meshed in {started:.2f}s (meshed {meshed:.2f}s after the last was registered)")
    print(
        f"  call round trips: median {statistics.median(calls) * 1000:.0f} ms, "
        f"min {min(calls) * 1000:.0f}, max {max(calls) * 1000:.0f} (20 calls); "
        f"a call with no answer: CallTimeout at 0.5 s"
    )
    for who, (sent, got) in results.items():
        print(f"  stream {who} -> n3@gamma: {sent['attempts']} sent, {got['received']} delivered, in order, 0 lost")
    for what, seconds in sorted(detection.items()):
        print(f"  detection: {what} after {seconds:.2f}s")
    print(
        f"  relays carried {sum(int(r['chunks']) for r in relayed)} chunks on {sum(int(r['connections']) for r in relayed)} connections"
    )
    for what, seconds in detection.items():
        assert seconds <= 1.25 * TICK + SLACK, f"{what} after {seconds:.2f}s (tick {TICK}s)"
