"""A counter GenServer, step by step: start, call, cast, a deferred reply, a
timed-out call, a crash seen by the caller, a failed start, and an orderly stop.

Run: ``python examples/gen_server_counter.py``
"""

from __future__ import annotations

import logging
from typing import Any

from joerl.errors import CallError, CallTimeout, StartError
from joerl.gen_server import From, GenServer, NoReply, Reply, Stop, call, start
from joerl.system import ActorSystem


class Counter(GenServer):
    """Holds an int. Calls: incr, get, get_later, never, stop. Casts: ("add", n)."""

    def init(self, start_at: int) -> int:
        print(f"  [counter] init({start_at})")
        return start_at

    def handle_call(self, request: Any, from_: From, count: int) -> Reply | NoReply | Stop:
        if request == "incr":
            return Reply(count + 1, count + 1)
        if request == "get":
            return Reply(count)
        if request == "get_later":
            # Don't answer now: a timer to self answers in 50 ms; meanwhile the
            # server is free to handle other messages.
            self.send_after(0.05, ("answer", from_))
            return NoReply()
        if request == "never":
            return NoReply()  # this caller will time out
        if request == "stop":
            return Stop("normal", reply=count)
        raise ValueError(f"unknown request {request!r}")

    def handle_cast(self, request: Any, count: int) -> int:
        op, n = request
        return count + n if op == "add" else count

    def handle_info(self, msg: Any, count: int) -> int:
        if msg[0] == "answer":
            self.reply(msg[1], count)
        return count

    def terminate(self, reason: Any, count: int) -> None:
        print(f"  [counter] terminate({reason!r}, {count})")


class Broken(GenServer):
    def init(self, args: Any) -> Any:
        raise RuntimeError("no database")


def main() -> None:
    # The runtime logs a crashed server once, with its traceback.
    logging.basicConfig(level=logging.WARNING, format="  [log] %(name)s: %(message)s")
    with ActorSystem() as system:
        counter = start(system, Counter(), 0, name="counter")
        print(f"started {counter} as 'counter'")

        for _ in range(3):
            counter.call("incr")
        print(f"count is {counter.call('get')}")

        counter.cast(("add", 10))
        print(f"after cast(('add', 10)), by name: {call('counter', 'get', system=system)}")

        print(f"deferred reply (a timer to self answered): {counter.call('get_later')}")

        try:
            counter.call("never", timeout=0.1)
        except CallTimeout as exc:
            print(f"CallTimeout: {exc}")

        print(f"still serving: {counter.call('get')}")
        print(f"stop with a reply: {counter.call('stop')}, alive: {counter.is_alive()}")

        fresh = start(system, Counter(), 100, name="counter")  # the name is free again
        try:
            fresh.call("bogus")
        except CallError as exc:
            print(f"CallError: the server crashed with {exc.reason!r}; alive: {fresh.is_alive()}")

        try:
            start(system, Broken())
        except StartError as exc:
            print(f"StartError: {exc.reason!r}; processes left: {system.processes()}")
    print("done")


if __name__ == "__main__":
    main()
