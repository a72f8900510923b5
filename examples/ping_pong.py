"""Ping-pong: two function actors that talk with blocking ``ctx.receive()``.

Run: python examples/ping_pong.py

``ping`` sends ``("ping", n, its_pid)`` and waits for the matching
``("pong", n)``; ``pong`` answers every ping until told to stop. Each is a
plain function ``fn(ctx, *args)`` started with ``system.spawn_fn``.
"""

from __future__ import annotations

from joerl.actor import ActorContext
from joerl.pid import Pid
from joerl.system import ActorSystem


def pong(ctx: ActorContext) -> None:
    while True:
        msg = ctx.receive()
        if msg == "stop":
            print("pong: stopping")
            return
        _, n, reply_to = msg
        print(f"pong: got ping {n}")
        ctx.send(reply_to, ("pong", n))


def ping(ctx: ActorContext, partner: Pid, rounds: int) -> None:
    for n in range(1, rounds + 1):
        ctx.send(partner, ("ping", n, ctx.pid))
        reply = ctx.receive(match=lambda m, n=n: m == ("pong", n), timeout=5)
        print(f"ping: got {reply[0]} {reply[1]}")
    ctx.send(partner, "stop")
    print(f"ping: done after {rounds} rounds")


def main() -> None:
    with ActorSystem() as system:
        pong_ref = system.spawn_fn(pong)
        ping_ref = system.spawn_fn(ping, pong_ref.pid, 5)
        ping_ref.join(5)
        pong_ref.join(5)
        print(f"both ended: ping alive={ping_ref.is_alive()} pong alive={pong_ref.is_alive()}")


if __name__ == "__main__":
    main()
