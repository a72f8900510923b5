"""The test's side of ``agent.py``: a node on a simulated host, asked through its standard input.

:meth:`Agent.request` sends one JSON request and waits for its ``REPLY``;
:meth:`Agent.wait_event` waits for an ``EVENT`` line matching a condition
(events are kept, so one that came before the wait counts).
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from gevent.event import AsyncResult, Event

from joerl.testing import ChildProcess

HERE = Path(__file__).resolve().parent


class Agent:
    """A node process on a host (start it with ``host.spawn_node(name, ...)``).

    Attributes:
        host: the simulated host it runs on.
        child: its :class:`ChildProcess`.
        node: its node name, as it reported it.
        port: its listen port.
        events: every ``EVENT`` so far (dicts with ``kind`` and ``t``).
    """

    def __init__(self, host: Any, child: ChildProcess) -> None:
        self.host = host
        self.child = child
        ready = child.wait_ready()
        self.node = ready["node"]
        self.port = int(ready["port"])
        self.events: list[dict[str, Any]] = []
        self._replies: dict[int, AsyncResult] = {}
        self._ids = itertools.count(1)
        self._changed = Event()
        self._reader = gevent.spawn(self._read)

    @staticmethod
    def argv(name: str, *options: str, tick: float = 2.0) -> list[str]:
        """The command of a node: ``agent.py NAME --tick TICK OPTIONS``."""
        return [sys.executable, str(HERE / "agent.py"), name, "--tick", str(tick), *options]

    @classmethod
    def start(cls, host: Any, name: str, *options: str, tick: float = 2.0) -> Agent:
        """Start a node on ``host``, wait until it is registered."""
        return cls(host, host.start(cls.argv(name, *options, tick=tick)))

    def __repr__(self) -> str:
        return f"<Agent {self.node} on {self.host.hostname}>"

    def _read(self) -> None:
        while True:
            try:
                line = self.child.wait_line(lambda _line: True, timeout=3600)
            except AssertionError:  # it exited
                break
            kind, _, text = line.partition(" ")
            if kind == "REPLY":
                body = json.loads(text)
                waiter = self._replies.pop(body.pop("id"), None)
                if waiter is not None:
                    waiter.set(body)
            elif kind == "EVENT":
                self.events.append(json.loads(text))
                self._changed.set()
        for waiter in self._replies.values():
            waiter.set({"ok": False, "error": "exited", "message": f"{self} exited"})
        self._changed.set()

    def request(self, op: str, wait: float = 30.0, **args: Any) -> dict[str, Any]:
        """Ask for ``op`` with ``args``; its reply within ``wait`` seconds
        (``{"ok": False, "error": ...}`` when it failed)."""
        rid = next(self._ids)
        waiter: AsyncResult = AsyncResult()
        self._replies[rid] = waiter
        self.child.write_line(json.dumps({"id": rid, "op": op, **args}))
        try:
            return dict(waiter.get(timeout=wait))
        except gevent.Timeout:
            raise AssertionError(f"{self}: no reply to {op} {args} within {wait}s\n{self.child.stderr()}") from None

    def ok(self, op: str, wait: float = 30.0, **args: Any) -> dict[str, Any]:
        """:meth:`request`, which must succeed."""
        reply = self.request(op, wait, **args)
        assert reply.get("ok", True) is not False, f"{self}: {op} {args} failed: {reply}"
        return reply

    def wait_event(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 30.0, since: float = 0.0
    ) -> dict[str, Any]:
        """The first event at or after ``since`` (a ``time.monotonic()``) for which ``match`` is true."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for ev in self.events[seen:]:
                if ev["t"] >= since and match(ev):
                    return ev
            seen = len(self.events)
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0 or not self.child.alive() and seen == len(self.events):
                raise AssertionError(f"{self}: no such event within {timeout}s; events: {self.events}")
            self._changed.wait(left)

    def node_event(self, kind: str, node: str, since: float = 0.0, timeout: float = 30.0) -> dict[str, Any]:
        """The first ``nodeup`` / ``nodedown`` event about ``node`` at or after ``since``."""
        return self.wait_event(lambda ev: ev["kind"] == kind and ev.get("node") == node, timeout, since)

    def close(self) -> None:
        self.child.close()
        self._reader.join(5)


def start_nodes(
    net: Any, *options: str, tick: float = 2.0, discover: str | None = "static", per_host: Any = None
) -> list[Agent]:
    """A port mapper on every host of ``net`` (on port 4369) and a node ``nI@HOST`` on each.

    Args:
        net: the :class:`~netns.Network`.
        *options: ``agent.py`` options for every node.
        tick: their tick time.
        discover: ``"static"`` (every node lists all), ``"epmd"`` (every node
            reads every host's port mapper) or None (no discovery: link with ``connect``).
        per_host: ``per_host(host)`` -> more options for the node on ``host``.

    Returns:
        The nodes, in the order of ``net.hosts``, registered (not yet linked).
    """
    names = [f"n{h.index + 1}@{h.hostname}" for h in net.hosts]
    extra: list[str] = []
    if discover == "static":
        extra = ["--discover", "static:" + ",".join(names)]
    elif discover == "epmd":
        extra = ["--discover", "epmd:" + ",".join(h.hostname for h in net.hosts)]
    # Every process starts at once, then each is waited for: Python's start-up
    # is most of the time a node takes to come up.
    epmds = [host.start_epmd(wait=False) for host in net.hosts if host.epmd is None]
    for epmd in epmds:
        epmd.wait_ready()
    children = [
        host.start(Agent.argv(name, *options, *extra, *(per_host(host) if per_host else ()), tick=tick))
        for host, name in zip(net.hosts, names, strict=True)
    ]
    return [Agent(host, child) for host, child in zip(net.hosts, children, strict=True)]


def wait_meshed(agents: list[Agent], timeout: float = 30.0) -> float:
    """Wait until every node has a NodeUp for every other; the seconds it took (from now)."""
    t0 = time.monotonic()
    for a in agents:
        for b in agents:
            if a is not b:
                a.node_event("nodeup", b.node, timeout=max(0.1, t0 + timeout - time.monotonic()))
    return time.monotonic() - t0
