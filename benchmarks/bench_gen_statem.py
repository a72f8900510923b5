"""GenStatem event rates beside GenServer, in one run.

Every contestant is an echo started in the same ActorSystem, driven from
plain code (the main greenlet), and they take turns (``harness.interleaved``):

* ``call``: N ``ref.call(i)`` round trips. The GenStatem answers with a
  ``Reply`` action in ``KeepState`` (state functions mode, then
  handle_event mode), and once more changing state on every call
  (``NextState`` between two states, each with a state function); the
  baseline is a GenServer whose ``handle_call`` returns ``Reply(request)``.
* ``cast``: N casts then one call (so that all N have been handled): the
  machine keeps its state and counts in its data; the baseline GenServer
  counts in its state.

No target ratio was set for these; the ratio says what the state machine
layer (an event tuple, the result's dispatch, the actions loop) costs over a
GenServer's callback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from joerl import gen_server, gen_statem
from joerl.gen_server import GenServer
from joerl.gen_statem import HANDLE_EVENT_FUNCTION, GenStatem, KeepState, NextState, Reply
from joerl.system import ActorSystem, From

from .harness import Row, interleaved


class EchoServer(GenServer):
    """The baseline: answers a call with its request; counts casts."""

    def init(self, args: Any) -> Any:
        return 0

    def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        return gen_server.Reply(request if request != "count" else state)

    def handle_cast(self, request: Any, state: Any) -> Any:
        return state + 1


class EchoMachine(GenStatem):
    """State functions mode: one state, a Reply action per call; counts casts."""

    def init(self, args: Any) -> Any:
        return ("ready", 0)

    def ready(self, event_type: Any, content: Any, count: int) -> Any:
        if event_type == "cast":
            return KeepState(count + 1)
        return KeepState(actions=[Reply(event_type[1], content if content != "count" else count)])


class EchoEvents(GenStatem):
    """Handle_event mode: the same echo through ``handle_event``."""

    callback_mode = HANDLE_EVENT_FUNCTION

    def init(self, args: Any) -> Any:
        return ("ready", 0)

    def handle_event(self, event_type: Any, content: Any, state: Any, count: int) -> Any:
        if event_type == "cast":
            return KeepState(count + 1)
        return KeepState(actions=[Reply(event_type[1], content if content != "count" else count)])


class Flipper(GenStatem):
    """A state change on every call: ping -> pong -> ping ..."""

    def init(self, args: Any) -> Any:
        return ("ping", None)

    def ping(self, event_type: Any, content: Any, data: Any) -> Any:
        return NextState("pong", actions=[Reply(event_type[1], content)])

    def pong(self, event_type: Any, content: Any, data: Any) -> Any:
        return NextState("ping", actions=[Reply(event_type[1], content)])


def _calls(ref: Any) -> Callable[[int], None]:
    call = ref.call

    def run_calls(n: int) -> None:
        for i in range(n):
            call(i)

    return run_calls


def _casts(ref: Any) -> Callable[[int], None]:
    cast, call = ref.cast, ref.call

    def run_casts(n: int) -> None:
        for i in range(n):
            cast(i)
        call("count")

    return run_casts


def run(quick: bool) -> list[Row]:
    """Measure; ``quick``: 3 samples of 5,000 calls / 20,000 casts, else 7 of 20,000 / 100,000."""
    repeats, n_calls, n_casts = (3, 5_000, 20_000) if quick else (7, 20_000, 100_000)
    system = ActorSystem("bench_gen_statem")
    try:
        server = gen_server.start(system, EchoServer())
        machines = {
            "GenStatem call (state functions)": gen_statem.start(system, EchoMachine()),
            "GenStatem call (handle_event)": gen_statem.start(system, EchoEvents()),
            "GenStatem call (state change per call)": gen_statem.start(system, Flipper()),
        }
        base = "GenServer call"
        contestants = {base: _calls(server), **{k: _calls(ref) for k, ref in machines.items()}}
        for fn in contestants.values():  # warm-up
            fn(n_calls // 10)
        figs = interleaved(contestants, n_calls, repeats=repeats, unit="calls/s")
        rows = [
            Row("gen_statem call", figs[name], figs[base], note=f"{name} vs {base}: ref.call(i) round trips")
            for name in machines
        ]
        cast_base = "GenServer cast"
        cast_name = "GenStatem cast (state functions)"
        casts = {cast_base: _casts(server), cast_name: _casts(machines["GenStatem call (state functions)"])}
        for fn in casts.values():
            fn(n_casts // 10)
        cfigs = interleaved(casts, n_casts, repeats=repeats, unit="casts/s")
        rows.append(
            Row("gen_statem cast", cfigs[cast_name], cfigs[cast_base], note="N casts then one call, vs a GenServer")
        )
        for row in rows:
            print(f"  {row.figure.name}: {row.figure.median:,.0f}/s ({row.ratio:.2f}x)", file=sys.stderr, flush=True)
        return rows
    finally:
        system.shutdown()


if __name__ == "__main__":
    for row in run(quick="--full" not in sys.argv):
        base = row.baseline.median if row.baseline else 0.0
        print(f"{row.figure.name:42} {row.figure.median:12,.0f}/s  baseline {base:12,.0f}/s  ratio {row.ratio:.2f}")
