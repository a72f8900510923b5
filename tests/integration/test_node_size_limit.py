"""One message-size limit end to end (issue 17): a node's decoding limits match
its frame limit (``LinkConfig.max_frame_size``, announced in its HELLO as
``max_frame``), and a sender refuses a message over the peer's limit with
:class:`MessageTooLarge` before writing anything. Before, a 9 to 64 MiB
message was sent and dropped by the receiver as a bad payload.

Real nodes on loopback in one process (``node_cluster``); each test waits on
its probes with deadlines.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from joerl import MessageTooLarge
from joerl.actor import ActorContext
from joerl.errors import LocalProtocolError
from joerl.node.config import LinkConfig, message_limits
from joerl.node.frames import DEFAULT_MAX_FRAME_SIZE
from joerl.node.node import DistributedSystem
from joerl.serialization import Limits
from joerl.testing import Probe, node_cluster, wait_until

MiB = 1 << 20
COOKIE = "size-limit-cookie"


@pytest.fixture
def pair() -> Iterator[tuple[DistributedSystem, DistributedSystem]]:
    with node_cluster("a", "b", cookie=COOKIE, global_names=False) as (a, b):
        yield a, b


def test_decoding_limits_default_to_the_frame_limit() -> None:
    config, limits = message_limits(LinkConfig(), None)
    assert config.max_frame_size == DEFAULT_MAX_FRAME_SIZE
    assert limits.max_bytes == limits.max_str_len == limits.max_bin_len == DEFAULT_MAX_FRAME_SIZE
    config, limits = message_limits(LinkConfig(max_frame_size=2 * MiB), None)
    assert limits.max_bytes == 2 * MiB
    # Smaller decoding limits lower the frame limit the node announces, so that
    # peers refuse what this node could not decode instead of losing it.
    config, limits = message_limits(LinkConfig(), Limits(max_bytes=MiB))
    assert config.max_frame_size == MiB and limits.max_bytes == MiB
    config, _ = message_limits(LinkConfig(), Limits(max_bytes=10))
    assert config.max_frame_size == 1024  # the smallest a HELLO may announce


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mib", [9, 33, 63])
def test_messages_of_9_to_63_mib_arrive(pair: tuple[DistributedSystem, DistributedSystem], mib: int) -> None:
    """Both roads: a dict through the serialization codec (SEND), and a plain
    term too big for SEND_TERMS (bytes in a tuple)."""
    a, b = pair
    inbox = Probe(b)
    src = Probe(a)
    a.connect_to_node(b.node_name)
    blob = bytes(range(256)) * (mib * MiB // 256)
    src.ctx.send(inbox.gpid, {"blob": blob})
    src.ctx.send(inbox.gpid, ("blob", blob))
    src.ctx.send(inbox.gpid, "after")
    got = inbox.receive(timeout=60)
    assert isinstance(got, dict) and got["blob"] == blob
    assert inbox.receive(timeout=60) == ("blob", blob)
    assert inbox.receive(timeout=60) == "after"
    assert b.stats.bad_payloads == 0 and b.stats.received == 3


def test_a_message_over_the_peers_limit_is_refused_before_anything_is_written(
    pair: tuple[DistributedSystem, DistributedSystem],
) -> None:
    a, b = pair
    inbox = Probe(b)
    a.connect_to_node(b.node_name)
    conn = a._peers[b.node_name].link
    assert conn is not None and conn.peer.max_frame == DEFAULT_MAX_FRAME_SIZE
    bytes_out = conn.stats.bytes_out
    errors: list[BaseException] = []

    def source(ctx: ActorContext) -> None:
        try:
            ctx.send(inbox.gpid, {"blob": b"x" * (DEFAULT_MAX_FRAME_SIZE + 1)})
        except MessageTooLarge as exc:
            errors.append(exc)
        ctx.send(inbox.gpid, "after")

    a.spawn_fn(source)
    assert inbox.receive() == "after"
    (exc,) = errors
    assert isinstance(exc, LocalProtocolError)
    assert exc.limit == DEFAULT_MAX_FRAME_SIZE and exc.size > exc.limit and exc.node == b.node_name
    assert f"exceeds the limit of node {b.node_name!r}" in str(exc) and "nothing was sent" in str(exc)
    assert conn.stats.bytes_out - bytes_out < 1024  # only "after" crossed
    assert not conn.closed and a.stats.sent == 1 and b.stats.received == 1


def test_a_too_large_message_queued_while_the_link_comes_up_is_dropped_and_counted(
    pair: tuple[DistributedSystem, DistributedSystem], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="joerl.node")
    a, b = pair
    inbox = Probe(b)

    def source(ctx: ActorContext) -> None:
        ctx.send(inbox.gpid, "before")  # starts the dial; these wait for the link
        ctx.send(inbox.gpid, ("big", b"x" * (DEFAULT_MAX_FRAME_SIZE + 1)))
        ctx.send(inbox.gpid, "after")

    a.spawn_fn(source)
    assert inbox.receive() == "before"
    assert inbox.receive() == "after"
    wait_until(lambda: a.stats.dropped_too_large == 1, what="the drop to be counted")
    assert a.stats.sent == 2 and b.stats.received == 2 and b.stats.bad_payloads == 0
    assert "message too large" in caplog.text
    assert b.node_name in a.nodes()  # the link is fine


def test_smaller_decoding_limits_are_announced_and_honoured_by_the_sender(
    pair: tuple[DistributedSystem, DistributedSystem],
) -> None:
    a, _ = pair
    small = DistributedSystem(
        "small", "127.0.0.1:0", a.epmd_address, cookie=COOKIE, start_epmd=False, global_names=False,
        limits=Limits(max_bytes=MiB),
    )  # fmt: skip
    try:
        inbox = Probe(small)
        a.connect_to_node(small.node_name)
        conn = a._peers[small.node_name].link
        assert conn is not None and conn.peer.max_frame == MiB
        with pytest.raises(MessageTooLarge):
            a.system.send(inbox.gpid, {"blob": b"x" * (2 * MiB)})
        a.system.send(inbox.gpid, {"blob": b"x" * (MiB // 2)})
        assert len(inbox.receive()["blob"]) == MiB // 2
        assert small.stats.bad_payloads == 0
    finally:
        small.shutdown()
