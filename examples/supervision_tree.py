"""A supervision tree: a crashed worker is restarted, then the tree stops in order.

    python examples/supervision_tree.py

The tree::

    app (one_for_one)
    +-- cache
    +-- backend (rest_for_one)
        +-- db
        +-- web      (depends on db: restarted whenever db is)

The script crashes ``web`` (restarted alone), then ``db`` (``db`` and ``web``
restarted, in that order), prints the tree after each, and shuts the system
down: every worker reports its stop, newest first, leaves before their
supervisor.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from joerl.actor import Actor, ActorContext
from joerl.pid import Pid
from joerl.supervisor import ChildSpec, Supervisor, SupervisorRef, start_supervisor
from joerl.system import ActorSystem


class Worker(Actor):
    """Prints its life; "crash" raises; a call answers "pong" (used to wait for it)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def started(self, ctx: ActorContext) -> None:
        print(f"    {self.name} started as {ctx.pid}")

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if msg == "crash":
            raise RuntimeError(f"{self.name} hit a bug")
        if isinstance(msg, tuple) and msg[0] == "$gen_call":
            ctx.system.reply(msg[1], "pong")

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        print(f"    {self.name} stopped ({reason if isinstance(reason, str) else type(reason).__name__})")


class Backend(Supervisor):
    """A supervisor that says when it has stopped its children."""

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        super().stopped(reason, ctx)
        print(f"    backend supervisor stopped ({reason})")


def backend() -> Supervisor:
    return Backend("rest_for_one", [ChildSpec.worker("db", Worker, "db"), ChildSpec.worker("web", Worker, "web")])


def show(system: ActorSystem, sup: SupervisorRef, indent: str = "  ") -> None:
    for info in sup.which_children():
        print(f"{indent}{info.id:<8} {info.type:<10} {info.pid}")
        if info.type == "supervisor" and info.pid is not None:
            show(system, SupervisorRef(system, info.pid), indent + "    ")
        elif info.pid is not None:
            system.call(info.pid, "ping")  # its started() has run (and printed)


def crash(system: ActorSystem, sup: SupervisorRef, id: str) -> None:
    pid = {info.id: info.pid for info in sup.which_children()}[id]
    assert isinstance(pid, Pid)
    print(f"\n- crashing {id} ({pid})")
    system.send(pid, "crash")
    system.join(pid, 5.0)
    sup.which_children()  # answered after the supervisor has handled the crash


def main() -> int:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="    [%(name)s] %(message)s")
    logging.getLogger("joerl.actor").setLevel(logging.CRITICAL)  # the crashes are on purpose: no tracebacks

    with ActorSystem() as system:
        print("- starting the tree")
        app = start_supervisor(
            system,
            Supervisor(
                "one_for_one",
                [
                    ChildSpec.worker("cache", Worker, "cache"),
                    ChildSpec.supervisor("backend", backend),
                ],
                intensity=3,
                period=5.0,
            ),
        )
        show(system, app)
        backend_ref = SupervisorRef(system, app.which_children()[1].pid)  # type: ignore[arg-type]

        crash(system, backend_ref, "web")
        show(system, app)

        crash(system, backend_ref, "db")
        show(system, app)

        print("\n- shutting the system down")
    print(f"- done: {len(system.processes())} processes left")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
