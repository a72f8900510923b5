"""Timers: ``send_after`` delivers a message later; ``cancel()`` takes it back.

Run: python examples/scheduled_messaging.py

* A heartbeat process re-arms a timer to itself after each tick (a periodic
  job without a loop that sleeps).
* A reminder is scheduled and cancelled before it fires.
* A timer may target a registered name; the name is looked up when the
  timer fires.
* ``receive(timeout=...)`` gives up waiting with ``ReceiveTimeout``.

Timers live in the event loop, not in greenlets: thousands cost next to
nothing, and shutting the system down cancels those still pending.
"""

from __future__ import annotations

import time

from joerl.actor import ActorContext
from joerl.errors import ReceiveTimeout
from joerl.system import ActorSystem

T0 = time.monotonic()


def stamp() -> str:
    return f"[{time.monotonic() - T0:5.2f}s]"


def heartbeat(ctx: ActorContext, interval: float, beats: int) -> None:
    ctx.send_after(interval, ctx.pid, "tick")
    for n in range(1, beats + 1):
        ctx.receive(match=lambda m: m == "tick")
        print(f"{stamp()} heartbeat: tick {n}")
        if n < beats:
            ctx.send_after(interval, ctx.pid, "tick")
    print(f"{stamp()} heartbeat: done after {beats} ticks")


def reminders(ctx: ActorContext) -> None:
    ctx.register("reminders")
    cancelled = ctx.send_after(0.15, ctx.pid, "cancelled reminder")
    ctx.send_after(0.10, ctx.pid, "first reminder")
    print(f"{stamp()} reminders: cancel() -> {cancelled.cancel()} (it had not fired)")
    while True:
        try:
            msg = ctx.receive(timeout=0.3)
        except ReceiveTimeout:
            print(f"{stamp()} reminders: nothing for 0.3s, giving up")
            return
        print(f"{stamp()} reminders: got {msg!r}")


def main() -> None:
    with ActorSystem() as system:
        hb = system.spawn_fn(heartbeat, 0.05, 4)
        rem = system.spawn_fn(reminders)
        system.send_after(0.2, "reminders", "reminder sent to a name")
        hb.join(5)
        rem.join(5)
        # A timer to a name is kept (whoever holds the name when it fires gets it);
        # one to a pid would have been cancelled already: that process has ended.
        pending = system.send_after(60, "reminders", "never")
        print(f"{stamp()} a 60 s timer is pending: {pending.active}")
    print(f"{stamp()} after shutdown the pending timer is active: {pending.active}")


if __name__ == "__main__":
    main()
