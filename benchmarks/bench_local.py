"""Local-runtime benchmarks: joerl beside raw gevent and Pykka, in one run.

What each group measures (details and the reasons in ``benchmarks/README.md``):

* ``one-way``: N sends from plain code to one actor, then wait until the actor
  has handled the Nth; beside the raw burst (N puts, then N gets by a parked
  reader greenlet) through a ``gevent.queue.SimpleQueue`` and through a deque
  with one ``gevent.hub.Waiter`` (the floor of this design), and Pykka 4 tells.
* ``ping-pong``: round trips between two function actors, beside two raw
  greenlets with deque-and-Waiter mailboxes.
* ``call``: GenServer call round trips from plain code, beside that raw
  round trip and Pykka 4 ``ask``.
* ``spawn-exit``: spawn an actor that returns at once and join it, N times,
  beside ``gevent.spawn(f).join()``.
* ``memory``: bytes per idle actor (10k of them, parked in receive), beside a
  bare greenlet parked on its own ``SimpleQueue``; RSS measured in a fresh
  child process per sample, and Python heap (tracemalloc) in this process.
* ``scaling``: the one-way rate to one actor while 1, 100, 10k and 100k
  actors are alive (quick mode stops at 10k), beside the 1-actor rate.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event
from gevent.hub import Waiter, get_hub
from gevent.queue import SimpleQueue

from joerl.actor import Actor, ActorContext
from joerl.system import ActorSystem

from .harness import Figure, Row, interleaved

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Params:
    """Sizes for one run (quick mode: fewer and smaller samples)."""

    repeats: int  # samples per figure
    burst: int  # one-way messages per burst (a sample is many bursts)
    one_way_n: int  # one-way messages per sample
    pykka_tell_n: int  # Pykka tells per sample (it is ~10x slower)
    ping_pong_n: int  # round trips per sample
    call_n: int  # calls per sample
    pykka_ask_n: int  # Pykka asks per sample
    spawn_n: int  # spawn-and-join per sample
    memory_k: int  # idle actors / greenlets per memory sample
    scaling_sizes: tuple[int, ...]  # live actors
    scaling_n: int  # one-way messages per scaling sample

    @classmethod
    def for_mode(cls, quick: bool) -> Params:
        if quick:
            return cls(
                repeats=3,
                burst=10_000,
                one_way_n=200_000,
                pykka_tell_n=20_000,
                ping_pong_n=20_000,
                call_n=10_000,
                pykka_ask_n=2_000,
                spawn_n=5_000,
                memory_k=10_000,
                scaling_sizes=(1, 100, 10_000),
                scaling_n=200_000,
            )
        return cls(
            repeats=7,
            burst=10_000,
            one_way_n=500_000,
            pykka_tell_n=50_000,
            ping_pong_n=50_000,
            call_n=30_000,
            pykka_ask_n=6_000,
            spawn_n=10_000,
            memory_k=10_000,
            scaling_sizes=(1, 100, 10_000, 100_000),
            scaling_n=300_000,
        )


# -- raw gevent baselines ---------------------------------------------------------


def raw_simple_queue_burst(n: int) -> None:
    """N puts into a SimpleQueue, then N gets by a reader greenlet parked on it."""
    q: SimpleQueue = SimpleQueue()

    def reader() -> None:
        get = q.get
        for _ in range(n):
            get()

    g = gevent.spawn(reader)
    gevent.sleep(0)  # the reader starts and parks on the empty queue
    put = q.put
    for i in range(n):
        put(i)
    g.join()


def raw_deque_waiter_burst(n: int) -> None:
    """The floor: N appends to a deque (waking the parked reader's Waiter through
    the hub on the first), then N pops by the reader; written inline."""
    hub = get_hub()
    schedule = hub.loop.run_callback
    q: deque[int] = deque()
    parked: list[Waiter | None] = [None]

    def reader() -> None:
        pop = q.popleft
        left = n
        while left:
            if q:
                pop()
                left -= 1
            else:
                w = Waiter(hub)
                parked[0] = w
                w.get()

    g = gevent.spawn(reader)
    gevent.sleep(0)
    append = q.append
    for i in range(n):
        append(i)
        w = parked[0]
        if w is not None:
            parked[0] = None
            schedule(w.switch, None)
    g.join()


class RawMailbox:
    """deque + Waiter as a small class with ``put``/``get`` methods (the shape of
    SimpleQueue and of joerl's Mailbox): the floor plus one call per operation."""

    __slots__ = ("_q", "_reader", "_hub", "_schedule")

    def __init__(self) -> None:
        self._q: deque[Any] = deque()
        self._reader: Waiter | None = None
        self._hub = get_hub()
        self._schedule = self._hub.loop.run_callback

    def put(self, item: Any) -> None:
        self._q.append(item)
        w = self._reader
        if w is not None:
            self._reader = None
            self._schedule(w.switch, None)

    def get(self) -> Any:
        q = self._q
        while not q:
            w = Waiter(self._hub)
            self._reader = w
            w.get()
        return q.popleft()


def raw_mailbox_class_burst(n: int) -> None:
    """N ``RawMailbox.put`` then N ``RawMailbox.get`` by a parked reader greenlet."""
    box = RawMailbox()

    def reader() -> None:
        get = box.get
        for _ in range(n):
            get()

    g = gevent.spawn(reader)
    gevent.sleep(0)
    put = box.put
    for i in range(n):
        put(i)
    g.join()


def raw_ping_pong(n: int) -> None:
    """N round trips between two greenlets, each with a deque + Waiter mailbox
    (inline), woken through ``hub.loop.run_callback(waiter.switch)``."""
    hub = get_hub()
    schedule = hub.loop.run_callback
    qa: deque[Any] = deque()
    qb: deque[Any] = deque()
    wa: list[Waiter | None] = [None]
    wb: list[Waiter | None] = [None]

    def ponger() -> None:
        while True:
            while not qb:
                w = Waiter(hub)
                wb[0] = w
                w.get()
            m = qb.popleft()
            if m is None:
                return
            qa.append(m)
            w = wa[0]
            if w is not None:
                wa[0] = None
                schedule(w.switch, None)

    def pinger() -> None:
        for i in range(1, n + 1):
            qb.append(i)
            w = wb[0]
            if w is not None:
                wb[0] = None
                schedule(w.switch, None)
            while not qa:
                w = Waiter(hub)
                wa[0] = w
                w.get()
            qa.popleft()
        qb.append(None)
        w = wb[0]
        if w is not None:
            wb[0] = None
            schedule(w.switch, None)

    gp = gevent.spawn(ponger)
    gi = gevent.spawn(pinger)
    gi.join()
    gp.join()


def _noop() -> None:
    pass


def raw_spawn_join(n: int) -> None:
    """``gevent.spawn(f).join()``, N times one after another."""
    spawn = gevent.spawn
    for _ in range(n):
        spawn(_noop).join()


# -- joerl contestants ------------------------------------------------------------


class Counter(Actor):
    """Counts messages; sets ``done`` when the armed number has been handled."""

    def __init__(self) -> None:
        self.left = 0
        self.done = Event()

    def arm(self, n: int) -> Event:
        """Expect ``n`` messages (called from plain code while the actor is parked)."""
        self.left = n
        self.done = Event()
        return self.done

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        self.left -= 1
        if not self.left:
            self.done.set()


def joerl_one_way(system: ActorSystem, counter: Counter, pid: Any) -> Callable[[int], None]:
    """N ``system.send(pid, i)`` from plain code, then wait for the Nth to be handled."""

    def one_way(n: int) -> None:
        done = counter.arm(n)
        send = system.send
        for i in range(n):
            send(pid, i)
        done.wait()

    return one_way


def joerl_one_way_fn(system: ActorSystem) -> Callable[[int], None]:
    """As :func:`joerl_one_way`, to a function actor looping on ``ctx.receive()``."""

    def one_way(n: int) -> None:
        done = Event()

        def body(ctx: ActorContext) -> None:
            receive = ctx.receive
            for _ in range(n):
                receive()
            done.set()

        pid = system.spawn_fn(body).pid
        gevent.sleep(0)
        send = system.send
        for i in range(n):
            send(pid, i)
        done.wait()

    return one_way


def joerl_ping_pong(system: ActorSystem) -> Callable[[int], None]:
    """N round trips between two function actors (``ctx.send(ctx.sender, m)``)."""

    def ponger(ctx: ActorContext) -> None:
        receive = ctx.receive
        send = ctx.send
        while True:
            m = receive()
            if m is None:
                return
            send(ctx.sender, m)

    def pinger(ctx: ActorContext, other: Any, n: int) -> None:
        receive = ctx.receive
        send = ctx.send
        for i in range(1, n + 1):
            send(other, i)
            receive()
        send(other, None)

    def ping_pong(n: int) -> None:
        pong = system.spawn_fn(ponger)
        ping = system.spawn_fn(pinger, pong.pid, n)
        ping.join()
        pong.join()

    return ping_pong


def joerl_spawn_exit(system: ActorSystem) -> Callable[[int], None]:
    """Spawn a function actor that returns at once and join it, N times."""

    def body(ctx: ActorContext) -> None:
        pass

    def spawn_exit(n: int) -> None:
        spawn_fn = system.spawn_fn
        for _ in range(n):
            spawn_fn(body).join()

    return spawn_exit


def start_call_server(system: ActorSystem) -> tuple[Callable[[Any], Any], str]:
    """An echo server and the function that calls it from plain code.

    Uses :mod:`joerl.gen_server` when it is importable and works; otherwise a
    function actor answering ``("$gen_call", from_, request)`` with
    ``system.reply``, called with ``system.call`` (the same machinery).
    """
    try:
        from joerl import gen_server

        class Echo(gen_server.GenServer):
            def init(self, args: Any) -> Any:
                return None

            def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
                return gen_server.Reply(request, state)

        ref = gen_server.start(system, Echo(), None)
        if ref.call(1) != 1:
            raise RuntimeError("echo GenServer answered wrongly")
        return ref.call, "joerl GenServer.call"
    except ImportError:
        pass
    except Exception as exc:  # noqa: BLE001 - fall back to the call machinery below, and say so
        print(f"  local/call: joerl.gen_server unusable ({exc!r}); measuring system.call", file=sys.stderr)

    def server(ctx: ActorContext) -> None:
        receive = ctx.receive
        reply = ctx.system.reply
        while True:
            _tag, from_, request = receive()
            reply(from_, request)

    pid = system.spawn_fn(server).pid
    call = system.call

    def call_fn(request: Any) -> Any:
        return call(pid, request)

    return call_fn, "joerl system.call (spawn_fn server)"


def calls(call: Callable[[Any], Any]) -> Callable[[int], None]:
    def run_calls(n: int) -> None:
        for i in range(n):
            call(i)

    return run_calls


# -- Pykka ------------------------------------------------------------------------


class _PykkaSide:
    """Two Pykka 4 ThreadingActors: an echo for ``ask`` and a counter for ``tell``."""

    def __init__(self) -> None:
        import pykka

        class Echo(pykka.ThreadingActor):
            def on_receive(self, message: Any) -> Any:
                return message

        outer = self

        class Count(pykka.ThreadingActor):
            def on_receive(self, message: Any) -> Any:
                outer.left -= 1
                if not outer.left:
                    outer.done.set()
                return None

        self.left = 0
        self.done = threading.Event()
        self.echo = Echo.start()
        self.count = Count.start()

    def tells(self, n: int) -> None:
        """N ``tell`` from the main thread, then wait until the Nth is handled."""
        self.left = n
        self.done = threading.Event()
        done = self.done
        tell = self.count.tell
        for i in range(n):
            tell(i)
        done.wait()

    def asks(self, n: int) -> None:
        """N ``ask`` round trips from the main thread."""
        ask = self.echo.ask
        for i in range(n):
            ask(i)

    def stop(self) -> None:
        self.echo.stop()
        self.count.stop()


def _pykka() -> _PykkaSide | None:
    try:
        return _PykkaSide()
    except ImportError:
        return None


# -- the groups -------------------------------------------------------------------


def in_bursts(fn: Callable[[int], None], size: int) -> Callable[[int], None]:
    """``fn(size)`` repeated until ``n`` messages have gone (a sample is many bursts,
    so that it lasts long enough, yet each burst stays cache-sized)."""

    def bursts(n: int) -> None:
        for _ in range(max(1, n // size)):
            fn(size)

    bursts.__name__ = getattr(fn, "__name__", "bursts")
    return bursts


def warm_up(fns: dict[str, Callable[[int], None]], n: int) -> None:
    """Run each contestant once, unmeasured: imports, first allocations, caches."""
    for fn in fns.values():
        fn(n)


def fraction(fn: Callable[[int], None], k: int) -> Callable[[int], None]:
    """``fn(n // k)``: lets a contestant ~k times slower take turns with the others
    in one :func:`interleaved` run; :func:`unscale` its figure afterwards."""

    def part(n: int) -> None:
        fn(n // k)

    return part


def unscale(fig: Figure, k: int) -> Figure:
    """The true rate of a :func:`fraction` contestant (it did n // k per sample)."""
    return Figure(fig.name, fig.unit, [x / k for x in fig.samples])


FLOOR = "gevent deque+Waiter (inline)"
RAW_RT = "gevent 2 greenlets, deque+Waiter"


def one_way(p: Params) -> list[Row]:
    system = ActorSystem("bench-one-way")
    pykka_side = _pykka()
    try:
        counter = Counter()
        pid = system.spawn(counter).pid
        gevent.sleep(0)
        fns = {
            name: in_bursts(fn, p.burst)
            for name, fn in {
                FLOOR: raw_deque_waiter_burst,
                "gevent SimpleQueue": raw_simple_queue_burst,
                "deque+Waiter as a class": raw_mailbox_class_burst,
                "joerl Actor": joerl_one_way(system, counter, pid),
                "joerl spawn_fn receive": joerl_one_way_fn(system),
            }.items()
        }
        k = p.one_way_n // p.pykka_tell_n
        if pykka_side is not None:
            fns["Pykka 4 tell"] = fraction(in_bursts(pykka_side.tells, p.burst), k)
        warm_up(fns, p.burst)
        figs = interleaved(fns, p.one_way_n, repeats=p.repeats, unit="msg/s")
        tell = unscale(figs["Pykka 4 tell"], k) if pykka_side is not None else None
    finally:
        if pykka_side is not None:
            pykka_side.stop()
        system.shutdown()
    floor = figs[FLOOR]
    sq = figs["gevent SimpleQueue"]
    extra = {
        "n": p.one_way_n,
        "burst": p.burst,
        "vs_simple_queue": figs["joerl Actor"].median / sq.median,
        "vs_class_mailbox": figs["joerl Actor"].median / figs["deque+Waiter as a class"].median,
    }
    if tell is not None:
        extra["vs_pykka_tell"] = figs["joerl Actor"].median / tell.median
    rows = [
        Row(
            "one-way",
            figs["joerl Actor"],
            floor,
            0.3,  # issue 17 asks 0.4x: see benchmarks/README.md, "the local one-way row, counted"
            note="N system.send() from plain code to an Actor, until its handle_message saw the Nth",
            extra=extra,
        ),
        Row(
            "one-way",
            figs["joerl spawn_fn receive"],
            floor,
            None,
            note="as above, to a function actor looping on ctx.receive()",
            extra={"n": p.one_way_n, "burst": p.burst},
        ),
        Row(
            "one-way",
            sq,
            floor,
            None,
            note="raw burst: N SimpleQueue.put, then N get",
            extra={"n": p.one_way_n, "burst": p.burst},
        ),
        Row(
            "one-way",
            figs["deque+Waiter as a class"],
            floor,
            None,
            note="the floor's protocol behind put()/get() methods",
            extra={"n": p.one_way_n, "burst": p.burst},
        ),
    ]
    if tell is not None:
        rows.append(
            Row(
                "one-way",
                tell,
                floor,
                None,
                note="N tell from the main thread to a ThreadingActor",
                extra={"n": p.pykka_tell_n, "burst": p.burst},
            )
        )
    return rows


def ping_pong(p: Params) -> list[Row]:
    system = ActorSystem("bench-ping-pong")
    try:
        fns = {RAW_RT: raw_ping_pong, "joerl spawn_fn pair": joerl_ping_pong(system)}
        warm_up(fns, 1000)
        figs = interleaved(fns, p.ping_pong_n, repeats=p.repeats, unit="rt/s")
    finally:
        system.shutdown()
    return [
        Row(
            "ping-pong",
            figs["joerl spawn_fn pair"],
            figs[RAW_RT],
            0.6,
            note="round trips: ctx.send(other) then ctx.receive(); the other sends back to ctx.sender",
            extra={"n": p.ping_pong_n},
        )
    ]


def call(p: Params) -> list[Row]:
    system = ActorSystem("bench-call")
    pykka_side = _pykka()
    try:
        call_fn, label = start_call_server(system)
        fns = {RAW_RT: raw_ping_pong, label: calls(call_fn)}
        k = p.call_n // p.pykka_ask_n
        if pykka_side is not None:
            fns["Pykka 4 ask"] = fraction(pykka_side.asks, k)  # ~10x slower: fewer round trips per turn
        warm_up(fns, 1000)
        figs = interleaved(fns, p.call_n, repeats=p.repeats, unit="rt/s")
        ask = unscale(figs["Pykka 4 ask"], k) if pykka_side is not None else None
    finally:
        if pykka_side is not None:
            pykka_side.stop()
        system.shutdown()
    rows = [
        Row(
            "call",
            figs[label],
            figs[RAW_RT],
            0.35,
            note="call round trips from plain code to an echo server",
            extra={"n": p.call_n},
        )
    ]
    if ask is not None:
        rows.append(
            Row(
                "call",
                figs[label],
                ask,
                3.0,
                note="the same, against Pykka 4 ask from the main thread",
                extra={"n": p.call_n, "pykka_n": p.pykka_ask_n},
            )
        )
    return rows


def spawn_exit(p: Params) -> list[Row]:
    system = ActorSystem("bench-spawn")
    try:
        fns = {"gevent.spawn(f).join()": raw_spawn_join, "joerl spawn_fn + join": joerl_spawn_exit(system)}
        warm_up(fns, 1000)
        figs = interleaved(fns, p.spawn_n, repeats=p.repeats, unit="proc/s")
    finally:
        system.shutdown()
    return [
        Row(
            "spawn-exit",
            figs["joerl spawn_fn + join"],
            figs["gevent.spawn(f).join()"],
            0.5,
            note="spawn a function actor that returns at once, join it; one after another",
            extra={"n": p.spawn_n},
        )
    ]


# -- memory -----------------------------------------------------------------------


def _park_greenlets(k: int) -> Any:
    """``k`` bare greenlets, each parked on its own SimpleQueue."""
    started = [0]

    def park(q: SimpleQueue) -> None:
        started[0] += 1
        q.get()

    keep = [(q, gevent.spawn(park, q)) for q in [SimpleQueue() for _ in range(k)]]
    _settle(lambda: started[0] == k)
    return keep


def _park_actors(k: int) -> Any:
    """``k`` idle function actors, each parked in ``ctx.receive()``."""
    started = [0]

    def body(ctx: ActorContext) -> None:
        started[0] += 1
        ctx.receive()

    system = ActorSystem("bench-memory")
    keep = (system, [system.spawn_fn(body) for _ in range(k)])
    _settle(lambda: started[0] == k)
    return keep


def _settle(ready: Callable[[], bool]) -> None:
    """Let every new greenlet start and park (they all run in one hub pass)."""
    for _ in range(10):
        gevent.sleep(0)
        if ready():
            gevent.sleep(0)
            return
    raise RuntimeError("greenlets did not all start")


_PARKERS = {"greenlet": _park_greenlets, "actor": _park_actors}


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_child(kind: str, k: int) -> None:
    """Child-process side: print the RSS bytes per parked item as JSON."""
    gevent.sleep(0)
    warm = _PARKERS[kind](100)  # import, allocate and compile once before measuring
    del warm
    gc.collect()
    before = _rss()
    keep = _PARKERS[kind](k)
    gc.collect()
    after = _rss()
    print(json.dumps({"bytes_per": (after - before) / k}))
    del keep
    os._exit(0)  # skip tearing down k greenlets: the parent only needs the line


def _rss_sample(kind: str, k: int) -> float:
    code = "import sys; from benchmarks.bench_local import memory_child; memory_child(sys.argv[1], int(sys.argv[2]))"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", code, kind, str(k)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["bytes_per"])


def _traced_sample(kind: str, k: int) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep = _PARKERS[kind](k)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    if kind == "actor":
        keep[0].shutdown()
    else:
        for _q, g in keep:
            g.kill(block=False)
        gevent.sleep(0)
    del keep
    return (after - before) / k


def memory(p: Params) -> list[Row]:
    k = p.memory_k
    rss: dict[str, list[float]] = {"greenlet": [], "actor": []}
    traced: dict[str, list[float]] = {"greenlet": [], "actor": []}
    for _ in range(p.repeats):
        for kind in ("greenlet", "actor"):
            rss[kind].append(_rss_sample(kind, k))
    for _ in range(2):  # tracemalloc counts allocations exactly: two samples show it
        for kind in ("greenlet", "actor"):
            traced[kind].append(_traced_sample(kind, k))
    g_name = "greenlet parked on a SimpleQueue"
    return [
        Row(
            "memory",
            Figure("joerl idle actor (RSS)", "B", rss["actor"]),
            Figure(g_name + " (RSS)", "B", rss["greenlet"]),
            1.3,
            lower_is_better=True,
            note=f"RSS growth / {k}: function actors parked in ctx.receive(); a fresh child process per sample",
            extra={"k": k},
        ),
        Row(
            "memory",
            Figure("joerl idle actor (heap)", "B", traced["actor"]),
            Figure(g_name + " (heap)", "B", traced["greenlet"]),
            1.3,
            lower_is_better=True,
            note=f"tracemalloc growth / {k} (Python allocators only)",
            extra={"k": k},
        ),
    ]


# -- scaling ----------------------------------------------------------------------


def scaling(p: Params) -> list[Row]:
    """The one-way rate to one actor as the number of live actors grows.

    Two identical subjects: one alone in its own system, one in the crowded
    system (1, then 100, 10k, 100k live processes, the idle ones parked in
    receive). Building 100k actors takes seconds, so the crowd only grows;
    at each size the two subjects take turns, so that noise on the shared
    machine hits both alike. Process-wide effects of the crowd (the garbage
    collector, memory) weigh on both subjects; the rate of the lone subject
    before any crowd existed is kept in ``extra["no_crowd"]`` to show them.
    """
    alone = ActorSystem("bench-alone")
    crowd = ActorSystem("bench-crowd")
    subjects = []
    for system in (alone, crowd):
        counter = Counter()
        pid = system.spawn(counter).pid
        subjects.append(in_bursts(joerl_one_way(system, counter, pid), p.burst))
    gevent.sleep(0)
    alone_burst, crowd_burst = subjects
    base_label = "1 actor (alone in its system)"

    def idle(ctx: ActorContext) -> None:
        ctx.receive()

    rows = []
    try:
        gc.collect()
        warm_up({"alone": alone_burst}, p.scaling_n)
        no_crowd = interleaved({"no crowd": alone_burst}, p.scaling_n, repeats=p.repeats, unit="msg/s")["no crowd"]
        live = 1
        for size in p.scaling_sizes:
            if size <= 1:
                continue
            spawn_fn = crowd.spawn_fn
            for _ in range(size - live):
                spawn_fn(idle)
            live = size
            gevent.sleep(0)
            gc.collect()
            label = f"{size:,} actors"
            fns = {base_label: alone_burst, label: crowd_burst}
            warm_up(fns, p.scaling_n)  # the first burst after a mass spawn pays one-off costs
            figs = interleaved(fns, p.scaling_n, repeats=p.repeats, unit="msg/s")
            rows.append(
                Row(
                    "scaling",
                    figs[label],
                    figs[base_label],
                    0.7,
                    note="one-way burst to one Actor among N live ones (the others idle in receive), "
                    "beside a lone Actor in its own system, in turns (within 30%)",
                    extra={
                        "live": size,
                        "n": p.scaling_n,
                        "burst": p.burst,
                        "no_crowd": no_crowd.median,
                        "vs_no_crowd": figs[label].median / no_crowd.median,
                    },
                )
            )
    finally:
        crowd.shutdown(timeout=60)
        alone.shutdown()
    return rows


# -- entry point ------------------------------------------------------------------

GROUPS: dict[str, Callable[[Params], list[Row]]] = {
    "one-way": one_way,
    "ping-pong": ping_pong,
    "call": call,
    "spawn-exit": spawn_exit,
    "memory": memory,
    "scaling": scaling,
}


def run(quick: bool) -> list[Row]:
    """Measure every local group; see the module docstring."""
    p = Params.for_mode(quick)
    rows: list[Row] = []
    for name, group in GROUPS.items():
        t0 = time.perf_counter()
        rows.extend(group(p))
        print(f"  local/{name}: {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    return rows
