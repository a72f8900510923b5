"""Introspection of a local runtime (Erlang's ``process_info`` and ``erlang:system_info``).

:func:`process_info` describes one live process as a :class:`ProcessInfo`,
:func:`processes_info` every one of them, :func:`system_info` the system as a
whole (:class:`SystemInfo`). ``ActorSystem.process_info(pid)`` is the same
as :func:`process_info`. Everything here is a snapshot taken in the calling
greenlet, without switching: it reads the runtime's bookkeeping, changes
nothing, and costs the hot paths nothing. The messages in and out of a
process are counted only while message counts are on (``ActorSystem(
count_messages=True)``, ``system.count_messages = True``, or for one process
``sys_calls.statistics(pid, True)``; see :mod:`joerl._watch`): otherwise
they read None.

:func:`as_dict` and :func:`process_info_from` turn a :class:`ProcessInfo`
into plain terms and back: what crosses a node link (see
:mod:`joerl.node.introspection`) and what the web observer serves as JSON.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from gevent import getcurrent

from .actor import EXITING, NEW
from .pid import Pid

if TYPE_CHECKING:
    from .actor import ActorContext
    from .system import ActorSystem

__all__ = [
    "EXITING_STATUS",
    "RUNNABLE",
    "RUNNING",
    "WAITING",
    "ProcessInfo",
    "SystemInfo",
    "as_dict",
    "behaviour_of",
    "describe_actor",
    "process_info",
    "process_info_from",
    "processes_info",
    "queued_messages",
    "sort_key",
    "system_info",
    "system_info_from",
    "top",
]

#: A process's status (``ProcessInfo.status``), Erlang's words: it is the
#: greenlet running now (the one asking about itself); it has messages to
#: handle or has not run yet; it waits for a message or a reply (a process
#: suspended with ``sys_calls.suspend`` waits too, as in Erlang; its
#: ``get_status`` says "suspended"); it is ending.
RUNNING = "running"
RUNNABLE = "runnable"
WAITING = "waiting"
EXITING_STATUS = "exiting"

#: Messages sampled to estimate the memory a mailbox holds.
_MEMORY_SAMPLE = 32


@dataclass(frozen=True)
class ProcessInfo:
    """One process, as :func:`process_info` saw it.

    Attributes:
        pid: the process.
        name: its registered name, or None.
        actor: what it runs: the Actor's class (``module.Class``) or the function.
        behaviour: ``"gen_server"``, ``"gen_statem"``, ``"supervisor"`` or None (another actor).
        status: ``"running"``, ``"runnable"``, ``"waiting"`` or ``"exiting"``.
        mailbox_len: messages queued, not yet taken.
        received: messages it has taken from its mailbox since its counts
            were turned on; None while they are off (see the module's text).
        sent: messages it has sent (``ctx.send`` and calls), the same way.
        links: the processes linked with it (of any node).
        monitors: what it monitors (pids, or ``(name, node)`` for a name).
        monitored_by: the processes that monitor it.
        trap_exit: whether it traps exits.
        parent: the process that spawned it (its supervisor, for a child), or None.
        supervisor: whether it is a supervisor (or pool).
        memory: a rough estimate in bytes (its context, mailbox and actor object; shallow).
    """

    pid: Pid
    name: str | None
    actor: str
    behaviour: str | None
    status: str
    mailbox_len: int
    received: int | None
    sent: int | None
    links: tuple[Pid, ...]
    monitors: tuple[Any, ...]
    monitored_by: tuple[Pid, ...]
    trap_exit: bool
    parent: Pid | None
    supervisor: bool
    memory: int


@dataclass(frozen=True)
class SystemInfo:
    """A runtime as a whole, as :func:`system_info` saw it.

    Attributes:
        name: the system's name (a node's is its node name).
        processes: live processes.
        registered: registered names and their pids, sorted by name.
        mailbox_total: messages queued in all mailboxes.
        received: messages taken by the live processes (the dead ones' are
            not kept), or None unless the system counts messages.
        sent: messages sent by the live processes, the same way.
        dropped: messages dropped in all; ``dropped_by_reason``: by reason.
        supervisors: live supervisors (and pools).
        spawned, crashed, restarts: processes started, crashed and restarted by
            supervisors since the system started (``system.stats``).
    """

    name: str
    processes: int
    registered: tuple[tuple[str, Pid], ...]
    mailbox_total: int
    received: int | None
    sent: int | None
    dropped: int
    dropped_by_reason: dict[str, int]
    supervisors: int
    spawned: int
    crashed: int
    restarts: int


def describe_actor(actor: Any) -> str:
    """What a process runs, for people: ``module.Class`` or ``module.function``."""
    fn = getattr(actor, "fn", None)
    if fn is not None and actor.__class__.__name__ == "_FnActor":
        target: Any = fn
        return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
    cls = actor.__class__
    return f"{cls.__module__}.{cls.__qualname__}"


#: joerl's behaviours, by the name of their class (found in an actor's MRO).
_BEHAVIOURS = {
    "GenServer": "gen_server",
    "GenStatem": "gen_statem",
    "Supervisor": "supervisor",
    "DynamicSupervisor": "supervisor",
}


def behaviour_of(actor: Any) -> str | None:
    """Which of joerl's behaviours ``actor`` is (see :attr:`ProcessInfo.behaviour`), or None."""
    for cls in type(actor).__mro__:
        kind = _BEHAVIOURS.get(cls.__name__)
        if kind is not None and cls.__module__.startswith("joerl."):
            return kind
    return None


def _status(ctx: ActorContext) -> str:
    if ctx._state >= EXITING:
        return EXITING_STATUS
    if ctx._greenlet is getcurrent():
        return RUNNING
    if ctx._mailbox._reader is not None:  # parked in a receive: what is queued does not match
        return WAITING
    if ctx._state == NEW or ctx._mailbox._q:
        return RUNNABLE
    return WAITING


def _memory(ctx: ActorContext) -> int:
    q = ctx._mailbox._q
    size = sys.getsizeof(ctx) + sys.getsizeof(ctx._mailbox) + sys.getsizeof(q)
    if q:
        sample = [q[i] for i in range(min(len(q), _MEMORY_SAMPLE))]
        size += sum(map(sys.getsizeof, sample)) * len(q) // len(sample)
    actor = ctx._actor
    if actor is not None:
        size += sys.getsizeof(actor)
        attrs = getattr(actor, "__dict__", None)
        if attrs is not None:
            size += sys.getsizeof(attrs)
    return size


def _names(system: ActorSystem) -> dict[Pid, str]:
    """Registered names by pid."""
    names: dict[Pid, str] = {}
    for name in system.registered():
        pid = system.whereis(name)
        if pid is not None:
            names[pid] = name
    return names


def _info(ctx: ActorContext, names: dict[Pid, str]) -> ProcessInfo:
    monitors = ctx._monitors
    watchers = ctx._monitored_by
    return ProcessInfo(
        pid=ctx.pid,
        name=names.get(ctx.pid),
        actor=describe_actor(ctx._actor) if ctx._actor is not None else "?",
        behaviour=behaviour_of(ctx._actor),
        status=_status(ctx),
        mailbox_len=len(ctx._mailbox._q),
        received=int(ctx._received) if ctx._counting else None,  # (floats: see ActorContext)
        sent=int(ctx._sent) if ctx._counting else None,
        links=tuple(sorted(ctx._links or ())),
        monitors=tuple(monitors.values()) if monitors else (),
        monitored_by=tuple(w for w in watchers.values() if isinstance(w, Pid)) if watchers else (),
        trap_exit=ctx._trap_exit,
        parent=ctx._parent,
        supervisor=ctx._supervisor,
        memory=_memory(ctx),
    )


def process_info(system: ActorSystem, pid: Any) -> ProcessInfo | None:
    """The process ``pid`` (a Pid, an ActorRef or a registered name) of ``system``, or None if it is not alive.

    Raises:
        TypeError: ``pid`` names no process (see ``ActorSystem.send``).
    """
    if isinstance(pid, str):
        found = system.whereis(pid)
        if found is None:
            return None
        pid = found
    pid = getattr(pid, "pid", pid)
    if not isinstance(pid, Pid):
        raise TypeError(f"process_info takes a Pid, an ActorRef or a name, not {pid!r}")
    ctx = system.context_of(pid)
    return None if ctx is None else _info(ctx, _names(system))


def processes_info(system: ActorSystem) -> list[ProcessInfo]:
    """Every live process of ``system``, oldest first."""
    names = _names(system)
    return [_info(ctx, names) for ctx in _contexts(system)]


def _contexts(system: ActorSystem) -> list[ActorContext]:
    return [ctx for pid in system.processes() if (ctx := system.context_of(pid)) is not None]


#: The longest ``repr`` of one message :func:`queued_messages` gives.
MAX_MESSAGE_REPR = 200


def queued_messages(system: ActorSystem, pid: Pid, limit: int = 20) -> list[str] | None:
    """The ``repr`` of the first ``limit`` messages queued for ``pid`` (each cut to
    :data:`MAX_MESSAGE_REPR` characters), or None if it is not alive."""
    ctx = system.context_of(pid)
    if ctx is None:
        return None
    texts = map(repr, ctx._mailbox.messages(limit))
    return [t if len(t) <= MAX_MESSAGE_REPR else t[: MAX_MESSAGE_REPR - 3] + "..." for t in texts]


def system_info(system: ActorSystem) -> SystemInfo:
    """``system`` as a whole (counts are of the live processes)."""
    ctxs = _contexts(system)
    names = tuple((name, pid) for name in system.registered() if (pid := system.whereis(name)) is not None)
    stats = system.stats
    return SystemInfo(
        name=system.name,
        processes=len(ctxs),
        registered=names,
        mailbox_total=sum(len(c._mailbox._q) for c in ctxs),
        received=int(sum(c._received for c in ctxs)) if system.count_messages else None,
        sent=int(sum(c._sent for c in ctxs)) if system.count_messages else None,
        dropped=stats.dropped,
        dropped_by_reason=dict(stats.dropped_by_reason),
        supervisors=sum(1 for c in ctxs if c._supervisor),
        spawned=stats.spawned,
        crashed=stats.crashed,
        restarts=stats.restarts,
    )


# -- plain terms (what crosses a link, what the observer serves) ----------------------

_PID_LISTS = ("links", "monitored_by")


def as_dict(info: ProcessInfo | SystemInfo) -> dict[str, Any]:
    """``info`` as a dict of plain terms (tuples become lists; pids stay pids)."""
    out: dict[str, Any] = {}
    for f in fields(info):
        value = getattr(info, f.name)
        if isinstance(value, tuple):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        out[f.name] = value
    return out


def process_info_from(terms: dict[str, Any]) -> ProcessInfo:
    """A :class:`ProcessInfo` from what :func:`as_dict` gave (received from another node).

    Raises:
        ValueError: ``terms`` lacks a field or holds a wrong type.
    """
    try:
        values = {f.name: terms[f.name] for f in fields(ProcessInfo)}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a process_info map: {exc}") from None
    for key in (*_PID_LISTS, "monitors"):
        values[key] = tuple(_term_tuple(v) for v in values[key])
    if not isinstance(values["pid"], Pid):
        raise ValueError(f"not a process_info map: pid is {values['pid']!r}")
    return ProcessInfo(**values)


def system_info_from(terms: dict[str, Any]) -> SystemInfo:
    """A :class:`SystemInfo` from what :func:`as_dict` gave.

    Raises:
        ValueError: ``terms`` lacks a field.
    """
    try:
        values = {f.name: terms[f.name] for f in fields(SystemInfo)}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a system_info map: {exc}") from None
    values["registered"] = tuple((str(n), p) for n, p in values["registered"])
    values["dropped_by_reason"] = dict(values["dropped_by_reason"])
    return SystemInfo(**values)


def _term_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def sort_key(key: str) -> Any:
    """A key function sorting :class:`ProcessInfo` by ``key`` (a field name), largest first for numbers."""
    if key not in {f.name for f in fields(ProcessInfo)}:
        raise ValueError(f"cannot sort by {key!r}: not a process_info field")

    def by(info: ProcessInfo) -> Any:
        value = getattr(info, key)
        return (0, -value) if isinstance(value, (int, float)) else (1, str(value))

    return by


def top(infos: Iterable[ProcessInfo], key: str, limit: int | None = None) -> list[ProcessInfo]:
    """``infos`` sorted by ``key`` (see :func:`sort_key`), the first ``limit`` of them."""
    ranked = sorted(infos, key=sort_key(key))
    return ranked if limit is None else ranked[:limit]
