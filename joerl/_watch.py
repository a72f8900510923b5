"""The slow path around a process's messages, taken only while something watches the process.

The runtime's hot paths (the Actor loop in :mod:`joerl._process`,
``ActorContext.receive``, ``send`` and ``call``) test one slot per message,
``ctx._watched``, and go on at full speed while it is False. It is True while
any of these is on for the process, and then the functions here do the work:

- **message counts** (``ctx._counting``): messages in and out, for
  :mod:`joerl.introspect`, :func:`joerl.sys_calls.statistics` and the metrics'
  ``messages_received``. Off by default, as Erlang keeps no per-process
  message counters and OTP's ``sys:statistics`` collects them only when asked:
  counting costs a local message about 5% (one attribute increment on each
  side, in CPython), where the test of ``_watched`` costs about 1.5%. On for
  every process of a system with ``ActorSystem(count_messages=True)`` or
  :func:`count_messages`, for one process with ``sys_calls.statistics(pid,
  True)``;
- **a trace** (``ctx._trace``, :mod:`joerl.trace`);
- **trace-context envelopes**: once a :class:`~joerl._traced.Traced` exists in
  this OS process (:mod:`joerl.otel`, or one decoded from a peer), every
  process of every system is watched, since any of them may be sent one and
  must see the message inside it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _traced
from ._traced import Traced
from ._traced import handle as handle_traced
from ._traced import received as traced_received

if TYPE_CHECKING:
    from .actor import ActorContext
    from .system import ActorSystem

__all__ = ["called", "count_messages", "handle", "received", "refresh", "sent", "watch_everything"]

#: Every ActorSystem of this OS process (for :func:`watch_everything`).
_systems: weakref.WeakSet[Any] = weakref.WeakSet()


def refresh(ctx: ActorContext) -> None:
    """Recompute ``ctx._watched`` (and ``_count_only``: the hot paths count inline) after one of its reasons changed."""
    more = ctx._trace is not None or _traced.seen
    ctx._watched = ctx._counting or more
    ctx._count_only = ctx._counting and not more


def started(system: ActorSystem, ctx: ActorContext) -> None:
    """A process is being spawned on ``system``: watch it if its system counts, or envelopes exist."""
    if system._count_messages:
        ctx._counting = ctx._watched = True
        ctx._count_only = not _traced.seen
    elif _traced.seen:
        ctx._watched = True


def count_messages(system: ActorSystem, on: bool) -> None:
    """Turn message counts on (or off) for every process of ``system``, now and spawned later.

    Counts start at zero the first time they are turned on; turned off, they
    stay where they were (and are not reported). Must run in the system's
    thread.
    """
    system._count_messages = bool(on)
    for ctx in list(system._procs.values()):
        ctx._counting = bool(on)
        refresh(ctx)


def count_one(ctx: ActorContext, on: bool) -> None:
    """Turn message counts on or off for one process (``sys_calls.statistics``); its system's setting wins when on."""
    ctx._counting = bool(on) or ctx.system._count_messages
    refresh(ctx)


def register(system: ActorSystem) -> None:
    """``system`` is new: let :func:`watch_everything` reach it."""
    _systems.add(system)


def watch_everything() -> None:
    """The first Traced exists: every process of every system is watched from now on."""
    for system in list(_systems):
        for ctx in list(system._procs.values()):
            ctx._watched = True
            ctx._count_only = False


# -- the slow paths ---------------------------------------------------------------------


def handle(ctx: ActorContext, msg: Any, handler: Callable[[Any, ActorContext], Any]) -> None:
    """The Actor loop took ``msg`` for a watched process: count, trace, unwrap, then handle it."""
    if ctx._counting:
        ctx._received += 1.0
    if msg.__class__ is Traced:  # sent with a trace context (joerl.otel)
        handle_traced(ctx, msg, handler)
        return
    if ctx._trace is not None:
        ctx._trace.on_receive(ctx, msg)
    handler(msg, ctx)


def received(ctx: ActorContext, msg: Any) -> Any:
    """``ctx.receive`` took ``msg`` for a watched process: count and trace it; the message its caller gets."""
    if ctx._counting:
        ctx._received += 1.0
    if ctx._trace is not None:
        ctx._trace.on_receive(ctx, msg.msg if msg.__class__ is Traced else msg)
    if msg.__class__ is Traced or ctx._otel is not None:
        msg = traced_received(ctx, msg)
    return msg


def sent(ctx: ActorContext, dest: Any, msg: Any) -> None:
    """A watched process sends ``msg`` to ``dest``."""
    if ctx._counting:
        ctx._sent += 1.0
    if ctx._trace is not None:
        ctx._trace.on_send(ctx, dest, msg)


def called(ctx: ActorContext, server: Any, request: Any) -> None:
    """A watched process calls ``server``."""
    if ctx._counting:
        ctx._sent += 1.0
    if ctx._trace is not None:
        ctx._trace.on_call(ctx, server, request)
