"""Registered names: find a process by name instead of passing its pid around.

Run: python examples/named_processes.py

* ``spawn(..., name=...)`` or ``ctx.register(name)`` binds a name;
  ``whereis`` looks it up, ``registered`` lists names, and any ``send``
  accepts the name in place of a pid.
* A name is taken by one process at a time (``NameTaken``).
* A name is freed when its process dies, so a restarted service can take it
  again and clients that address it by name reach the new process.
"""

from __future__ import annotations

from typing import Any

from gevent.event import Event

from joerl.actor import Actor, ActorContext
from joerl.errors import NameTaken
from joerl.system import ActorSystem


class KeyValueStore(Actor):
    """A tiny store: ``("put", k, v)``, ``("get", k)`` -> ``("value", k, v)``, ``"stop"``."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if msg == "stop":
            ctx.stop("told to stop")
        elif msg[0] == "put":
            self.data[msg[1]] = msg[2]
        elif msg[0] == "get":
            ctx.send(ctx.sender, ("value", msg[1], self.data.get(msg[1])))


def client(ctx: ActorContext, key: str) -> None:
    ctx.send("store", ("get", key))
    _, k, v = ctx.receive(timeout=5)
    print(f"client {ctx.pid}: store[{k!r}] = {v!r} (served by {ctx.sender})")


def announcer(ctx: ActorContext, ready: Any) -> None:
    ctx.register("announcer")  # a process can name itself
    ready.set()
    print(f"announcer: {ctx.receive(timeout=5)}")


def main() -> None:
    with ActorSystem() as system:
        store = system.spawn(KeyValueStore(), name="store")
        ready = Event()
        announcer_ref = system.spawn_fn(announcer, ready)
        ready.wait(5)
        print(f"registered names: {system.registered()}")
        print(f"whereis('store') -> {system.whereis('store')} (pid {store.pid})")

        system.send("store", ("put", "lang", "erlang"))
        system.spawn_fn(client, "lang").join(5)

        try:
            system.spawn(KeyValueStore(), name="store")
        except NameTaken as exc:
            print(f"second 'store' refused: {exc}")

        system.send("store", "stop")
        store.join(5)
        print(f"after the store died: whereis('store') -> {system.whereis('store')}")

        new_store = system.spawn(KeyValueStore(), name="store")
        system.send("store", ("put", "lang", "python"))
        system.spawn_fn(client, "lang").join(5)
        system.send("announcer", f"store restarted as {new_store.pid}")
        announcer_ref.join(5)
        print(f"registered names after the announcer ended: {system.registered()}")


if __name__ == "__main__":
    main()
