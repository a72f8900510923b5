"""Memory stays bounded as nodes and links come and go (issue 15).

* 1,000 short-lived peers (nodes of this process): each links with a
  survivor and shuts down. The survivor's peer table used to keep an entry
  per departed node (200 departed nodes left 200 entries); it now forgets
  peers that nothing needs, and stays bounded.
* Connect/close cycles of one pair of nodes: what the link machinery
  allocates per cycle, from ``tracemalloc`` snapshots after a warm-up.
  ``$JOERL_CHURN_CYCLES`` sets the count (default 1,000 in CI; the figure
  in docs/reliability.md is from 10,000).
"""

from __future__ import annotations

import gc
import logging
import os
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from _reliakit import COOKIE

from joerl.node.names import node_name as full
from joerl.node.node import DistributedSystem
from joerl.node.peers import SWEEP_FLOOR
from joerl.testing import running_epmd, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

PEERS = 1000
CYCLES = int(os.environ.get("JOERL_CHURN_CYCLES", "1000"))
WARMUP = 200


@pytest.fixture
def epmd_address() -> Iterator[str]:
    with running_epmd() as address:
        yield address


@pytest.fixture
def quiet() -> Iterator[None]:
    """Link-down warnings by the thousand are not what these tests look at."""
    logger = logging.getLogger("joerl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _node(name: str, epmd: str) -> DistributedSystem:
    return DistributedSystem(name, "127.0.0.1:0", epmd, cookie=COOKIE, start_epmd=False, global_names=False)


def test_the_peer_table_forgets_departed_nodes(epmd_address: str, quiet: None, scenario: Any) -> None:
    rec = scenario(
        "churn_peers",
        "Peer table with 1,000 short-lived peers",
        f"{PEERS} nodes of this process, one after another, link with a survivor and shut down",
    )
    survivor = _node("survivor", epmd_address)
    sizes: list[int] = []
    try:
        for i in range(PEERS):
            with _node(f"p{i}", epmd_address) as peer:
                peer.connect_to_node("survivor", timeout=10)
            wait_until(lambda: survivor.nodes() == [], timeout=10)
            sizes.append(len(survivor._peers))
        rec.figure("peers_max", max(sizes), "largest peer table of the survivor", f"entries (of {PEERS} peers)")
        rec.figure("peers_end", sizes[-1], "peer table at the end", "entries")
        rec.check(max(sizes) <= 2 * SWEEP_FLOOR, f"the peer table stays bounded (at most {2 * SWEEP_FLOOR})")
        # A departed node's name is still known for its pids, and it can come back.
        with _node("p0", epmd_address) as back:
            assert back.connect_to_node("survivor", timeout=10)
            assert survivor.nodes() == [full("p0")]
    finally:
        survivor.shutdown()
    rec.verify()


def test_memory_stays_flat_over_connect_close_cycles(epmd_address: str, quiet: None, scenario: Any) -> None:
    rec = scenario(
        "churn_links",
        f"Memory over {CYCLES:,} connect/close cycles",
        "one pair of nodes of this process: b links with a, the link is closed, both see it go; "
        f"tracemalloc snapshots after {WARMUP} warm-up cycles and at the end",
    )
    a, b = _node("a", epmd_address), _node("b", epmd_address)

    def cycle() -> None:
        b.connect_to_node("a", timeout=10)
        link = b._peers["a"].conn
        assert link is not None
        link.close("cycle")
        wait_until(lambda: a.nodes() == [] and b.nodes() == [], timeout=10)

    try:
        for _ in range(WARMUP):
            cycle()
        gc.collect()
        tracemalloc.start(1)
        try:
            before = tracemalloc.take_snapshot()
            t0 = time.monotonic()
            half = 0
            for i in range(CYCLES):
                cycle()
                if i == CYCLES // 2:
                    gc.collect()
                    half = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
            seconds = time.monotonic() - t0
            gc.collect()
            growth = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
        finally:
            tracemalloc.stop()
        rec.figure("cycles", CYCLES, "connect/close cycles measured")
        rec.figure("seconds", seconds, "time for them", "s")
        rec.figure("growth_half", half / 1024, f"heap growth after {CYCLES // 2 + 1:,} cycles", "KiB")
        rec.figure("growth", growth / 1024, f"heap growth after {CYCLES:,} cycles", "KiB")
        rec.figure("per_cycle", growth / CYCLES, "growth per cycle", "bytes")
        rec.figure("peers", len(a._peers) + len(b._peers), "peer table entries (both nodes)")
        rec.check(growth / CYCLES < 1024, "less than 1 KiB per cycle (9 KiB per cycle was the probes' figure)")
    finally:
        b.shutdown()
        a.shutdown()
    rec.verify()
