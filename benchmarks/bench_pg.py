"""Process groups (``joerl.pg``) on one ActorSystem, each figure beside a baseline of the same run.

* ``pg-read``: ``Scope.get_members(group)`` on a group of 10 members (a read
  of the local replica that copies the member list), beside the same read
  done by hand: ``list(d.get(group, ()))`` on a plain dict of lists (the floor
  of a replica that hands out copies).
* ``pg-join``: ``Scope.join(group, pid)`` of N distinct processes (a call
  to the scope process, which monitors each new member), beside
  ``ActorSystem.register(name, pid)`` of N distinct names (the local
  registry, no process involved). Each sample's joins and registrations are
  undone outside the timed part.

The samples are taken in turns (figure, baseline, figure, ...) so that noise
on the shared machine lands on both alike. No target was set.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from joerl import pg
from joerl.actor import ActorContext
from joerl.pid import Pid
from joerl.system import ActorSystem

from .harness import Figure, Row


def _idle(ctx: ActorContext) -> None:
    ctx.receive()


def _timed(fn: Callable[[int], None], n: int) -> float:
    t0 = time.perf_counter()
    fn(n)
    dt = time.perf_counter() - t0
    return n / dt if dt > 0 else float("inf")


def run(quick: bool) -> list[Row]:
    """Measure get_members and join beside their baselines; see the module docstring."""
    reads, joins, repeats = (200_000, 2_000, 3) if quick else (1_000_000, 10_000, 7)
    with ActorSystem("bench-pg") as system:
        scope = pg.start(system)
        pids: list[Pid] = [system.spawn_fn(_idle).pid for _ in range(joins)]
        scope.join("room", pids[:10])
        table = {"room": list(pids[:10])}

        def read_pg(n: int) -> None:
            get = scope.get_members
            for _ in range(n):
                get("room")

        def read_dict(n: int) -> None:
            get = table.get
            for _ in range(n):
                list(get("room", ()))

        def join_pg(n: int) -> None:
            join = scope.join
            for pid in pids[:n]:
                join("bench", pid)

        def register(n: int) -> None:
            reg = system.register
            for i, pid in enumerate(pids[:n]):
                reg(f"bench{i}", pid)

        samples: dict[str, list[float]] = {k: [] for k in ("pg_read", "dict", "pg_join", "register")}
        for _ in range(repeats):
            samples["pg_read"].append(_timed(read_pg, reads))
            samples["dict"].append(_timed(read_dict, reads))
            samples["pg_join"].append(_timed(join_pg, joins))
            scope.leave("bench", pids)
            samples["register"].append(_timed(register, joins))
            for i in range(joins):
                system.unregister(f"bench{i}")
        assert len(scope.get_members("room")) == 10 and scope.get_members("bench") == []

    return [
        Row(
            "pg-read",
            Figure("Scope.get_members (10 members)", "reads/s", samples["pg_read"]),
            Figure("list(dict.get(group))", "reads/s", samples["dict"]),
            note="a read of the local replica, no message",
        ),
        Row(
            "pg-join",
            Figure("Scope.join (one pid per call)", "joins/s", samples["pg_join"]),
            Figure("ActorSystem.register", "names/s", samples["register"]),
            note="a join is a call to the scope process (which monitors the member)",
        ),
    ]
