"""A node that discovery lists still passes the TLS handshake like any other: a node with a
certificate of another authority, or without TLS, is listed but never linked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from joerl import DistributedSystem
from joerl.discovery import StaticDiscovery
from joerl.testing import running_epmd, wait_until

pytest.importorskip("cryptography.x509")
from _tlskit import CA  # noqa: E402 - needs cryptography

HOST = "h.test"


@pytest.fixture
def make_node() -> Iterator[Any]:
    made: list[DistributedSystem] = []
    with running_epmd() as epmd:

        def make(name: str, **kw: Any) -> DistributedSystem:
            node = DistributedSystem(
                name, "127.0.0.1:0", epmd, cookie="tls-test", start_epmd=False, global_names=False, **kw
            )
            made.append(node)
            return node

        try:
            yield make
        finally:
            for node in reversed(made):
                node.shutdown()


@pytest.mark.timeout(60)
def test_listed_nodes_without_our_authoritys_certificate_are_never_linked(tmp_path: Path, make_node: Any) -> None:
    ours, theirs = CA(tmp_path, "ours"), CA(tmp_path, "theirs")
    names = [f"{n}@{HOST}" for n in ("a", "b", "rogue", "plain")]
    make_node(names[1], tls=ours.node(names[1]))
    make_node(names[2], tls=theirs.node(names[2]))  # another authority
    make_node(names[3])  # no TLS at all
    a = make_node(names[0], tls=ours.node(names[0]), discovery=StaticDiscovery(names, interval=0.05))
    loop = a.discovery
    assert loop is not None
    wait_until(lambda: a.nodes() == [names[1]] and loop.stats.connect_failures >= 2, what="b linked, two refused")
    assert loop.listed == names[1:]
    assert loop.stats.connects == 1
