"""A counter actor: state kept inside one process, changed only by messages.

Run: python examples/counter.py

A ``Counter`` (a class-based actor) holds a number. Clients send it
``("add", n)`` and ``("get",)``; it answers ``get`` to the sender of the
message (``ctx.sender``). Three clients send their additions; the counter
handles one message at a time, so no update is lost and no lock is needed.
"""

from __future__ import annotations

from typing import Any

from joerl.actor import Actor, ActorContext
from joerl.system import ActorSystem


class Counter(Actor):
    """Keeps a count; replies to ``("get",)`` with ``("count", value)``."""

    def __init__(self, start: int = 0) -> None:
        self.value = start

    def started(self, ctx: ActorContext) -> None:
        print(f"counter {ctx.pid} started at {self.value}")

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if msg[0] == "add":
            self.value += msg[1]
        elif msg[0] == "get":
            ctx.send(ctx.sender, ("count", self.value))

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        print(f"counter stopped ({reason}) at {self.value}")


def client(ctx: ActorContext, name: str, times: int) -> None:
    """Add 1 to the counter ``times`` times, then ask for the value."""
    for _ in range(times):
        ctx.send("counter", ("add", 1))
    ctx.send("counter", ("get",))
    _, value = ctx.receive(match=lambda m: m[0] == "count", timeout=5)
    print(f"client {name} {ctx.pid}: added {times}, counter now reads {value}")


def main() -> None:
    with ActorSystem() as system:
        system.spawn(Counter(), name="counter")
        clients = [system.spawn_fn(client, name, n) for name, n in (("a", 100), ("b", 250), ("c", 650))]
        for c in clients:
            c.join(5)

        def final(ctx: ActorContext) -> None:
            ctx.send("counter", ("get",))
            print(f"final count: {ctx.receive(timeout=5)[1]}")

        system.spawn_fn(final).join(5)
    print("system shut down")


if __name__ == "__main__":
    main()
