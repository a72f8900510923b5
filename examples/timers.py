"""Timers that repeat, apply and exit: OTP's ``timer`` module in joerl.

Run: python examples/timers.py

* ``send_interval``: a heartbeat ticks every 50 ms until it is cancelled.
* ``ctx.send_interval`` to a name stops by itself when the process that set
  it ends (OTP links an interval timer to its setter).
* ``apply_after``: a function runs later, in a new process.
* ``exit_after``: a watchdog ends a worker that overran its deadline; a
  worker that finishes first takes its watchdog with it (a timer to a pid
  dies with that process).
* ``ctx.kill_after(delay)``: a process sets its own, untrappable, deadline.
"""

from __future__ import annotations

from joerl.actor import ActorContext
from joerl.message import Down
from joerl.system import ActorSystem
from joerl.testing import Probe


def worker(ctx: ActorContext, steps: int) -> None:
    """Work ``steps`` steps of 10 ms each (a step is a message to itself)."""
    for _ in range(steps):
        ctx.send_after(0.01, ctx.pid, "step")
        ctx.receive(match=lambda m: m == "step")


def main() -> None:
    with ActorSystem("timers") as system:
        out = Probe(system, timeout=5.0)  # this script's mailbox

        # 1. A heartbeat: every 50 ms until cancelled.
        heartbeat = system.send_interval(0.05, out.pid, "tick")
        ticks = [out.receive() for _ in range(3)]
        print(f"1. heartbeat: {ticks}; cancel() -> {heartbeat.cancel()}; active: {heartbeat.active}")

        # 2. An interval timer to a name, set by a process, ends with it.
        system.register("sink", out.pid)

        def pinger(ctx: ActorContext) -> None:
            timer = ctx.send_interval(0.02, "sink", "ping")
            ctx.send(out.pid, timer)
            ctx.receive(match=lambda m: m == "quit")

        ref = system.spawn_fn(pinger)
        timer = out.receive(lambda m: not isinstance(m, str))
        out.receive(lambda m: m == "ping")
        ref.send("quit")
        ref.join(5.0)
        print(f"2. the pinger ended; its interval timer is active: {timer.active}")
        out.sync()  # pings already on their way

        # 3. A function, later, in a process of its own.
        system.apply_after(0.02, system.send, out.pid, "applied later")
        print(f"3. apply_after: {out.receive(lambda m: m == 'applied later')!r}")

        # 4. A watchdog: a worker that takes too long is ended with "timeout".
        for steps in (3, 50):
            w = system.spawn_fn(worker, steps)
            mref = system.monitor(out.pid, w.pid)
            watchdog = system.exit_after(0.2, w.pid, "timeout")
            down = out.receive(Down)
            assert down.ref == mref
            print(f"4. worker of {steps} steps ended with {down.reason!r}; watchdog active: {watchdog.active}")

        # 5. A process sets its own deadline, which even trapping exits cannot stop.
        def stubborn(ctx: ActorContext) -> None:
            ctx.trap_exit(True)
            ctx.kill_after(0.05)
            while True:
                ctx.receive()

        s = system.spawn_fn(stubborn)
        mref = system.monitor(out.pid, s.pid)
        print(f"5. a trapping process with kill_after ended with {out.receive(Down).reason!r}")
    print("done")


if __name__ == "__main__":
    main()
