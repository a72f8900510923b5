"""Pool checkout + checkin round trips, beside a GenServer call round trip
measured in the same run (``python -m benchmarks --only pool``).

* figure: ``with pool.transaction() as w: pass`` from plain code: one
  checkout call (a GenServer call to the pool manager, which lends an idle
  worker) and one checkin cast, handled before the next checkout.
* baseline: ``ref.call(i)`` on an echo GenServer: the same call machinery,
  one round trip, no bookkeeping.

A transaction costs a call plus a cast plus the manager's bookkeeping, so
about half the call rate is what the design allows; no target is set.
"""

from __future__ import annotations

from typing import Any

from joerl.gen_server import From, GenServer, Reply
from joerl.gen_server import start as start_server
from joerl.pool import start_pool
from joerl.system import ActorSystem

from .harness import Row, interleaved


class _Echo(GenServer):
    def handle_call(self, request: Any, from_: From, state: Any) -> Reply:
        return Reply(request)


def run(quick: bool) -> list[Row]:
    """Measure transactions/s and calls/s in turns."""
    n = 2_000 if quick else 20_000
    repeats = 3 if quick else 7
    with ActorSystem("bench_pool") as system:
        pool = start_pool(system, _Echo, size=4)
        echo = start_server(system, _Echo())

        def transactions(count: int) -> None:
            for _ in range(count):
                with pool.transaction(5.0):
                    pass

        def checkout_checkin(count: int) -> None:
            for _ in range(count):
                pool.checkin(pool.checkout())

        def calls(count: int) -> None:
            call = echo.call
            for i in range(count):
                call(i)

        for fn in (transactions, checkout_checkin, calls):
            fn(200)  # warm-up
        figs = interleaved(
            {"pool transaction": transactions, "checkout+checkin": checkout_checkin, "GenServer call": calls},
            n,
            repeats=repeats,
            unit="round trips/s",
        )
    base = figs["GenServer call"]
    return [
        Row("pool", figs["pool transaction"], base, note="with pool.transaction(): checkout call + checkin cast"),
        Row("pool", figs["checkout+checkin"], base, note="pool.checkin(pool.checkout())"),
    ]
