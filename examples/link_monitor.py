"""Links, trap_exit, monitors and kill: how failures travel between processes.

Run: python examples/link_monitor.py

1. A crash travels over a link: the linked partner dies with the same reason.
2. A process that traps exits gets ``Exit(pid, reason)`` messages instead.
3. A monitor is one-way: the watcher gets one ``Down(ref, pid, reason)``,
   with ``"noproc"`` for a process that is already gone.
4. ``exit(pid, "kill")`` cannot be trapped; the victim ends as ``"killed"``.

Each crash is logged once by the runtime (logger ``joerl.actor``, with the
traceback); this script prints those records on stdout in a one-line format.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from joerl.actor import ActorContext
from joerl.message import Down, Exit
from joerl.system import ActorSystem


def worker(ctx: ActorContext) -> None:
    """Waits for a job; the job "crash" raises."""
    job = ctx.receive()
    if job == "crash":
        raise ValueError("bad job")


def idle(ctx: ActorContext) -> None:
    ctx.receive(match=lambda m: m == "quit")


def supervisor_like(ctx: ActorContext, report: Any) -> None:
    """Traps exits, starts a linked worker, reports how the worker ended."""
    ctx.trap_exit(True)
    child = ctx.spawn_link(worker)
    ctx.send(child.pid, "crash")
    msg = ctx.receive(match=Exit, timeout=5)
    report(f"2. trapping process got Exit from {msg.pid}: {msg.reason!r} (and is still alive)")


def watcher(ctx: ActorContext, target: Any, gone: Any) -> None:
    ref = ctx.monitor(target)
    ref_gone = ctx.monitor(gone)
    ctx.send(target, "quit")
    for _ in range(2):
        down = ctx.receive(match=Down, timeout=5)
        which = "the live target" if down.ref == ref else "an already dead pid"
        assert down.ref in (ref, ref_gone)
        print(f"3. monitor of {which} {down.pid}: Down reason={down.reason!r}")


class OneLineFormatter(logging.Formatter):
    """Show the exception of a record as one line instead of a traceback."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return f"   ({ei[0].__name__}: {ei[1]})"

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "")


def main() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(OneLineFormatter("   [log] %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("joerl").addHandler(handler)
    with ActorSystem() as system:
        # 1. a crash kills the linked partner (which does not trap exits)
        partner = system.spawn_fn(idle)
        crasher = system.spawn_fn(worker)
        system.link(partner.pid, crasher.pid)
        crasher.send("crash")
        partner.join(5)
        print(f"1. linked partner {partner.pid} alive after the crash? {partner.is_alive()}")

        # 2. trap_exit turns the exit signal into a message
        system.spawn_fn(supervisor_like, print).join(5)

        # 3. monitors
        target = system.spawn_fn(idle)
        gone = system.spawn_fn(lambda ctx: None)
        gone.join(5)
        system.spawn_fn(watcher, target.pid, gone.pid).join(5)

        # 4. kill is untrappable
        def trapper(ctx: ActorContext) -> None:
            ctx.trap_exit(True)
            idle(ctx)

        victim = system.spawn_fn(trapper)

        def killer(ctx: ActorContext) -> None:
            ref = ctx.monitor(victim.pid)
            ctx.exit(victim.pid, "kill")
            down = ctx.receive(match=lambda m: isinstance(m, Down) and m.ref == ref, timeout=5)
            print(f"4. trapping process {down.pid} was killed: reason={down.reason!r}")

        system.spawn_fn(killer).join(5)
    print("done")


if __name__ == "__main__":
    main()
