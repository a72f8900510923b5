"""A remote call costs one write each way (issue 17): its ``Demonitor`` leaves
with the next call (``Connection.send_later``), or on its own once the caller
yields to the hub; order on the link is kept."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from joerl import gen_server
from joerl.node.node import DistributedSystem
from joerl.testing import node_cluster, wait_until


class Echo(gen_server.GenServer):
    def init(self, args: object) -> None:
        return None

    def handle_call(self, request: object, from_: object, state: None) -> gen_server.Reply:
        return gen_server.Reply(request, state)


@pytest.fixture
def pair() -> Iterator[tuple[DistributedSystem, DistributedSystem]]:
    with node_cluster("a", "b", cookie="calls", global_names=False) as (a, b):
        yield a, b


def test_back_to_back_calls_take_one_write_each_and_leave_no_monitor(
    pair: tuple[DistributedSystem, DistributedSystem],
) -> None:
    a, b = pair
    server = gen_server.start(b.system, Echo(), None).pid
    gpid = type(server)(b.node_id, server.id, b.creation)
    assert a.system.call(gpid, 0, 5) == 0  # the link is up
    conn = a._peers[b.node_name].link
    assert conn is not None
    writes = conn.stats.writes
    n = 200
    for i in range(n):
        assert a.system.call(gpid, i, 5) == i
    # One write per call (Demonitor of call i with Monitor and Send of call i + 1),
    # give or take the last Demonitor, which leaves once the caller yields.
    assert conn.stats.writes - writes <= n + 2
    ctx = b.system.context_of(server)
    assert ctx is not None
    wait_until(lambda: not ctx._monitored_by, what="every Demonitor to arrive")
