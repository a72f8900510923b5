"""Selective receive: take the message you want now, leave the rest queued in order.

Run: python examples/selective_receive.py

``ctx.receive(match=...)`` takes the oldest message that matches (a
predicate, a type, or a tuple of types); messages that don't match stay in
the mailbox, in their order, for a later receive. ``timeout=0`` only looks
at what is already queued.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from gevent.event import Event

from joerl.actor import ActorContext
from joerl.errors import ReceiveTimeout
from joerl.system import ActorSystem


class Urgent(NamedTuple):
    text: str


def worker(ctx: ActorContext, gate: Event) -> None:
    gate.wait()  # let the mailbox fill up first
    print(f"worker: mailbox holds {ctx.mailbox_len} messages")

    # 1. urgent messages first, by type
    while True:
        try:
            msg = ctx.receive(match=Urgent, timeout=0)
        except ReceiveTimeout:
            break
        print(f"worker: urgent  -> {msg.text}")

    # 2. a reply we wait for, by content; everything else waits its turn
    reply = ctx.receive(match=lambda m: isinstance(m, tuple) and m[0] == "reply", timeout=5)
    print(f"worker: reply   -> {reply[1]}")

    # 3. the rest, in the order it was sent
    rest: list[Any] = []
    while True:
        try:
            rest.append(ctx.receive(timeout=0))
        except ReceiveTimeout:
            break
    print(f"worker: the rest, in order -> {rest}")

    # 4. waiting for something that never comes
    try:
        ctx.receive(match=lambda m: m == "never", timeout=0.1)
    except ReceiveTimeout:
        print("worker: nothing matched within 0.1 s: ReceiveTimeout")


def main() -> None:
    with ActorSystem() as system:
        gate = Event()
        ref = system.spawn_fn(worker, gate)
        for msg in ["job 1", Urgent("disk full"), "job 2", ("reply", 42), "job 3", Urgent("fire")]:
            print(f"main: send {msg!r}")
            ref.send(msg)
        gate.set()
        ref.join(5)
    print("done")


if __name__ == "__main__":
    main()
