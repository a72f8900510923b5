"""Overlapping lookups at one port mapper share one listing (joerl/node/locator.py)."""

from __future__ import annotations

from typing import Any

import gevent
import pytest

from joerl import epmd as _epmd
from joerl.node.locator import Locator
from joerl.testing import running_epmd

pytestmark = pytest.mark.timeout(30)


def _locator(address: str) -> Locator:
    return Locator("me@127.0.0.1", "127.0.0.1:0", address, None, portless=False, timeout=5.0)


def test_overlapping_lookups_share_a_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    with running_epmd() as address:
        clients = []
        for i in range(12):
            client = _epmd.EpmdClient(address, timeout=5.0)
            client.register(f"n{i}@127.0.0.1", "127.0.0.1", 5000 + i, metadata={"i": i})
            clients.append(client)
        try:
            calls = {"lookup": 0, "list": 0}
            lookup, list_nodes = _epmd.EpmdClient.lookup, _epmd.EpmdClient.list_nodes

            def counted_lookup(self: Any, name: str) -> Any:
                calls["lookup"] += 1
                return lookup(self, name)

            def counted_list(self: Any) -> Any:
                calls["list"] += 1
                return list_nodes(self)

            monkeypatch.setattr(_epmd.EpmdClient, "lookup", counted_lookup)
            monkeypatch.setattr(_epmd.EpmdClient, "list_nodes", counted_list)
            loc = _locator(address)
            names = [f"n{i}@127.0.0.1" for i in range(12)] + ["absent@127.0.0.1"]
            jobs = [gevent.spawn(loc.lookup, name) for name in names]
            gevent.joinall(jobs, timeout=10, raise_error=True)
            infos = [job.value for job in jobs]
            assert infos[-1] is None  # (not in the listing: asked alone, and not registered)
            for i, info in enumerate(infos[:-1]):
                assert info is not None and info.port == 5000 + i and info.metadata == {"i": i}, info
                assert info.name == f"n{i}@127.0.0.1" and info.host == "127.0.0.1"
            assert calls["list"] >= 1
            assert calls["lookup"] <= 3, calls  # (the first alone, the absent name, at most one more)
            # A lookup alone asks alone, as before:
            assert loc.lookup("n3@127.0.0.1").port == 5003  # type: ignore[union-attr]
            assert calls["lookup"] <= 4 and not loc._listing
        finally:
            for client in clients:
                client.close()


def test_a_failed_listing_leaves_each_lookup_to_ask_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    with running_epmd() as address:
        client = _epmd.EpmdClient(address, timeout=5.0)
        client.register("n0@127.0.0.1", "127.0.0.1", 5000)
        try:

            def broken(self: Any) -> Any:
                raise _epmd.EpmdError("no listing today")

            monkeypatch.setattr(_epmd.EpmdClient, "list_nodes", broken)
            loc = _locator(address)
            jobs = [gevent.spawn(loc.lookup, "n0@127.0.0.1") for _ in range(5)]
            gevent.joinall(jobs, timeout=10, raise_error=True)
            assert [job.value.port for job in jobs] == [5000] * 5
            assert not loc._listing and not any(loc._asking.values())
        finally:
            client.close()
