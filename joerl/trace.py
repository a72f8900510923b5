"""Tracing, like Erlang's ``dbg`` and ``recon_trace``: what chosen processes send, receive, call and how they end.

:func:`start` picks processes (pids, or a pattern on the registered name or
the actor's class, for those alive now and, with ``new=True``, those
spawned later) and sends every traced event to a tracer process or hands
it to a callback, as a :class:`TraceEvent`. A hard limit is always set: a
number of events (``limit``) and, optionally, a rate (``rate`` per second):
when either is reached, tracing switches itself off, tells the tracer
(:class:`TraceStopped`) and logs a warning, so that tracing a busy
production node is safe, as with ``recon_trace``.

Cost when off: one attribute check per message a process takes and per
``ctx.send``; nothing else. Events:

* ``"send"``: ``ctx.send(dest, msg)`` from a traced process (``data``: ``(dest, msg)``);
* ``"receive"``: a message taken from its mailbox (``data``: the message);
* ``"call"``: a call it makes (``ctx.call``; ``data``: ``(server, request)``)
  and a call it receives (a ``$gen_call``; ``data``: the request);
* ``"exit"``: it ended (``data``: the exit reason).

A callback runs in the traced process's greenlet: it must be quick and must
not block (send the event somewhere if there is work to do). A tracer
process's events are never traced themselves.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from . import _watch
from ._crash import actor_label
from .pid import Pid
from .ratelimit import TokenBucket

if TYPE_CHECKING:
    from .actor import ActorContext
    from .system import ActorSystem

__all__ = ["EVENTS", "TraceEvent", "TraceStopped", "Tracer", "start"]

log = logging.getLogger(__name__)

#: The kinds of event.
EVENTS = frozenset({"send", "receive", "call", "exit"})

_CALL = "$gen_call"


class TraceEvent(NamedTuple):
    """One traced event: ``kind`` (see :data:`EVENTS`), the process, what happened, when (Unix seconds)."""

    kind: str
    pid: Pid
    data: Any
    time: float


class TraceStopped(NamedTuple):
    """The last thing a tracer gets: why tracing stopped (``"limit"``, ``"rate"``, ``"stopped"``) after ``events``."""

    reason: str
    events: int


class Tracer:
    """A running trace (made by :func:`start`): :meth:`stop` it, read :attr:`events` and :attr:`stopped`.

    Attributes:
        events: events delivered so far.
        stopped: None while tracing; then why it stopped.
    """

    def __init__(
        self,
        system: ActorSystem,
        select: Callable[[ActorContext], bool],
        kinds: frozenset[str],
        deliver: Callable[[Any], None],
        limit: int,
        rate: float | None,
        tracer_pid: Pid | None,
    ) -> None:
        self.system = system
        self.kinds = kinds
        self.limit = limit
        self.events = 0
        self.stopped: str | None = None
        self._select = select
        self._deliver = deliver
        self._bucket = TokenBucket(rate, rate) if rate is not None else None
        self._tracer_pid = tracer_pid
        self._traced: set[Pid] = set()
        #: Also trace matching processes spawned after the start.
        self.new = False

    def __repr__(self) -> str:
        return f"<Tracer {len(self._traced)} processes, {self.events} events, {self.stopped or 'running'}>"

    @property
    def traced(self) -> list[Pid]:
        """The processes traced now."""
        return sorted(self._traced)

    # -- the runtime calls these ----------------------------------------------------

    def attach(self, ctx: ActorContext) -> None:
        """Trace ``ctx`` if it is selected (at start, and for each new process with ``new=True``)."""
        if self.stopped is None and ctx.pid != self._tracer_pid and ctx._trace is None and self._select(ctx):
            ctx._trace = self
            _watch.refresh(ctx)
            self._traced.add(ctx.pid)

    def on_send(self, ctx: ActorContext, dest: Any, msg: Any) -> None:
        if "send" in self.kinds:
            self._emit("send", ctx.pid, (dest, msg))

    def on_call(self, ctx: ActorContext, server: Any, request: Any) -> None:
        if "call" in self.kinds:
            self._emit("call", ctx.pid, (server, request))

    def on_receive(self, ctx: ActorContext, msg: Any) -> None:
        if msg.__class__ is tuple and len(msg) == 3 and msg[0] == _CALL:
            if "call" in self.kinds:
                self._emit("call", ctx.pid, msg[2])
        elif "receive" in self.kinds:
            self._emit("receive", ctx.pid, msg)

    def on_exit(self, ctx: ActorContext, reason: Any) -> None:
        self._traced.discard(ctx.pid)
        if "exit" in self.kinds:
            self._emit("exit", ctx.pid, reason)

    # -- limits ---------------------------------------------------------------------

    def _emit(self, kind: str, pid: Pid, data: Any) -> None:
        if self.stopped is not None:
            return
        bucket = self._bucket
        if bucket is not None and not bucket.take():
            self._off("rate")
            return
        self.events += 1
        try:
            self._deliver(TraceEvent(kind, pid, data, time.time()))
        except Exception:  # noqa: BLE001 - a failing callback stops the trace, never the traced process
            log.exception("trace callback failed: tracing stopped")
            self._off("callback_failed")
            return
        if self.events >= self.limit:
            self._off("limit")

    def _off(self, reason: str) -> None:
        if self.stopped is not None:
            return
        self.stopped = reason
        for pid in self._traced:
            ctx = self.system.context_of(pid)
            if ctx is not None and ctx._trace is self:
                ctx._trace = None
                _watch.refresh(ctx)
        self._traced.clear()
        if self.system._tracer is self:
            self.system._tracer = None
        if reason != "stopped":
            rate = f", rate {self._bucket.rate}/s" if self._bucket is not None else ""
            log.warning(
                "tracing switched itself off after %d events (%s reached: limit %d%s)",
                self.events,
                reason,
                self.limit,
                rate,
            )
        try:
            self._deliver(TraceStopped(reason, self.events))
        except Exception:  # noqa: BLE001 - already stopping
            log.debug("trace callback failed on TraceStopped", exc_info=True)

    def stop(self) -> None:
        """Stop tracing now (the tracer gets ``TraceStopped("stopped", n)``)."""
        self._off("stopped")


def _selector(
    pids: Iterable[Any] | None, name: str | None, actor: type | str | None, system: ActorSystem
) -> Callable[[ActorContext], bool]:
    wanted = {p.pid if hasattr(p, "pid") else p for p in pids} if pids is not None else None

    def select(ctx: ActorContext) -> bool:
        if wanted is not None and ctx.pid not in wanted:
            return False
        if name is not None:
            names = [n for n in system.registered() if system.whereis(n) == ctx.pid]
            if not any(fnmatch.fnmatchcase(n, name) for n in names):
                return False
        if actor is not None:
            body = ctx._actor
            if isinstance(actor, type):
                return isinstance(body, actor)
            return fnmatch.fnmatchcase(actor_label(body), actor) or fnmatch.fnmatchcase(
                actor_label(body).rsplit(".", 1)[-1], actor
            )
        return True

    return select


def start(
    system: ActorSystem,
    to: Callable[[Any], None] | Pid | Any,
    *,
    pids: Iterable[Any] | None = None,
    name: str | None = None,
    actor: type | str | None = None,
    events: Iterable[str] = EVENTS,
    limit: int = 1000,
    rate: float | None = None,
    new: bool = False,
) -> Tracer:
    """Trace the processes of ``system`` that match, to ``to``.

    Args:
        system: the local runtime (a node's: ``node.system``).
        to: a callback ``fn(event)`` (see the module docstring), or the pid
            (or ref) of a tracer process, which gets :class:`TraceEvent`\\ s and,
            last, one :class:`TraceStopped`.
        pids: only these processes (pids or refs).
        name: only processes whose registered name matches this glob (``"worker_*"``).
        actor: only processes running this Actor class (and subclasses), or
            whose class or function name matches this glob (``"*Session"``).
        events: which kinds (default all of :data:`EVENTS`).
        limit: stop after this many events (required: at most 1,000,000).
        rate: also stop when events come faster than this many per second
            (bursts up to one second's worth).
        new: also trace matching processes spawned from now on.

    Returns:
        The running :class:`Tracer`.

    Raises:
        ValueError: bad ``events``, ``limit`` or ``rate``; nothing selects (no
            ``pids``, ``name`` nor ``actor``: name one, ``name="*"`` for all).
        RuntimeError: another trace runs on this system (stop it first).
    """
    kinds = frozenset(events)
    if not kinds or not kinds <= EVENTS:
        raise ValueError(f"events must be some of {sorted(EVENTS)}, got {sorted(kinds)}")
    if type(limit) is not int or not 1 <= limit <= 1_000_000:
        raise ValueError(f"limit must be an int from 1 to 1000000, got {limit!r}")
    if rate is not None and not rate > 0:
        raise ValueError(f"rate must be positive, got {rate!r}")
    if pids is None and name is None and actor is None:
        raise ValueError('name the processes to trace: pids=, name= or actor= (name="*" traces all)')
    if system._tracer is not None:
        raise RuntimeError(f"a trace runs on {system.name!r} already ({system._tracer!r}): stop it first")
    if callable(to) and not isinstance(to, Pid):
        deliver, tracer_pid = to, None
    else:
        tracer_pid = to.pid if hasattr(to, "pid") else to
        if not isinstance(tracer_pid, Pid):
            raise TypeError(f"trace to a callback or a tracer pid, not {to!r}")

        def deliver(event: Any) -> None:
            system.send(tracer_pid, event)

    tracer = Tracer(system, _selector(pids, name, actor, system), kinds, deliver, limit, rate, tracer_pid)
    tracer.new = new
    system._tracer = tracer
    for pid in system.processes():
        ctx = system.context_of(pid)
        if ctx is not None:
            tracer.attach(ctx)
    return tracer
