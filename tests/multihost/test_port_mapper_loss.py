"""One host's port mapper dies, and comes back.

``n1@alpha`` is linked with ``n2@beta`` (and links to and monitors a process
there); beta's port mapper is then killed (SIGKILL). Checked:

* the existing link keeps working: sends, calls, the link and the monitor
  (no NodeDown, no Exit, no Down);
* a new connection to ``n2@beta`` (from ``n3@gamma``) fails with a clear
  error that names the port mapper it could not ask;
* once beta's port mapper runs again, ``n2@beta`` registers again by itself
  and ``n3@gamma`` reaches it.

Figures are printed (run with ``-s``).
"""

from __future__ import annotations

import time

import pytest
from agent_client import start_nodes
from netns import Network

from joerl.testing import wait_until

pytestmark = [pytest.mark.multihost, pytest.mark.timeout(180)]


def test_existing_links_survive_new_ones_fail_then_recover(net: Network) -> None:
    alpha, beta, gamma = net.hosts
    n1, n2, n3 = start_nodes(net, tick=2.0, discover=None)
    n1.ok("connect", node=n2.node)
    n1.ok("watch", node=n2.node)

    t_kill = time.monotonic()
    beta.kill_epmd()
    # the link n1 <-> n2 does not need the port mapper
    for _ in range(5):
        n1.ok("ping", node=n2.node)
        n2.ok("ping", node=n1.node, by="pid")
        assert n1.ok("call", node=n2.node, value="still here")["value"] == "still here"
    # a new connection needs it
    failed = n3.request("connect", node=n2.node, timeout=5.0)
    assert failed["ok"] is False and failed["error"] == "NodeUnreachable", failed
    message = failed["message"]
    assert n2.node in message and ("port mapper" in message or "4369" in message), message

    t_back = time.monotonic()
    beta.start_epmd()
    attempts = []

    def reached() -> bool:
        reply = n3.request("connect", node=n2.node, timeout=2.0)
        attempts.append(reply)
        return reply.get("ok") is True

    wait_until(reached, timeout=60, interval=0.2, what="n3@gamma reaches n2@beta once beta's port mapper is back")
    recovered = time.monotonic() - t_back
    n3.ok("ping", node=n2.node)
    # (n3 may be linked with n1 by now too: global's transitive connect, as Erlang's)
    assert n2.node in n1.ok("nodes")["nodes"]
    events = [e for e in n1.events + n2.events if e["kind"] in ("nodedown", "exit", "down", "anchor_exit")]
    assert events == [], f"the link between n1 and n2 was disturbed: {events}"
    print(
        f"\nbeta's port mapper killed: the n1<->n2 link kept working ({time.monotonic() - t_kill:.1f}s, "
        f"no NodeDown); a new connection failed with: {message!r}; after the port mapper came back "
        f"n3 reached n2 in {recovered:.2f}s ({len(attempts)} attempts)"
    )
