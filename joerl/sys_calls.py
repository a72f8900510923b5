"""sys-style calls: look into, pause and resume a running GenServer or GenStatem (Erlang's ``sys``).

``get_state``, ``get_status``, ``suspend``, ``resume`` and ``statistics``
work on any :class:`~joerl.gen_server.GenServer`,
:class:`~joerl.gen_statem.GenStatem` or supervisor (whose state is its
``which_children()``), on this node or another: they are
calls, so they take every road a call takes (a pid, a registered name,
``(name, node)``), with its monitor and its timeout.

Where joerl differs from Erlang on purpose: a system message is a
``$gen_call`` whose request is ``("$system", what)``, not a separate
``{system, From, Msg}`` message, so that it reuses the one call machinery
(and its remote path) unchanged; the behaviour answers it before its
``handle_call`` sees anything.

A suspended process answers only system messages (and its parent's exit
signal, if it traps exits); every other message stays queued, in order,
until :func:`resume`. Exit signals that are not trapped end it as always.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import _watch
from ._crash import actor_label
from ._gen import From
from .actor import ActorContext, ActorRef, StopActor
from .message import Exit

if TYPE_CHECKING:
    from .system import ActorSystem

__all__ = ["SYSTEM", "get_state", "get_status", "is_system", "resume", "statistics", "suspend"]

#: The tag of a system request: a call's request ``(SYSTEM, what)``.
SYSTEM = "$system"

_CALL = "$gen_call"


def _call(server: Any, what: Any, timeout: float | None, system: ActorSystem | ActorContext | None) -> Any:
    if system is None:
        if not isinstance(server, ActorRef):
            raise TypeError(f"{server!r}: give system= (an ActorSystem or the caller's ActorContext) or a ref")
        system = server.system
    return system.call(server, (SYSTEM, what), timeout)


def get_state(server: Any, timeout: float | None = 5.0, *, system: ActorSystem | ActorContext | None = None) -> Any:
    """The server's state (a GenStatem's: ``(state, data)``), as ``sys:get_state``.

    Args:
        server: a ref, Pid, registered name or ``(name, node)`` of a GenServer or GenStatem.
        timeout: seconds to wait for the answer.
        system: the system to call through (or the caller's ActorContext); not needed for a ref.

    Raises:
        CallTimeout: no answer in time (a process that is no behaviour never answers).
        CallError: the process is dead or died meanwhile.
    """
    return _call(server, "get_state", timeout, system)


def get_status(
    server: Any, timeout: float | None = 5.0, *, system: ActorSystem | ActorContext | None = None
) -> dict[str, Any]:
    """What ``sys:get_status`` tells, as a dict: ``pid``, ``name``, ``behaviour``
    (the class), ``status`` (``"running"`` or ``"suspended"``), ``parent``,
    ``mailbox_len``, ``trap_exit`` and ``state`` (raises as :func:`get_state`)."""
    status: dict[str, Any] = _call(server, "get_status", timeout, system)
    return status


def suspend(server: Any, timeout: float | None = 5.0, *, system: ActorSystem | ActorContext | None = None) -> None:
    """Suspend the server: it answers only system messages until :func:`resume`
    (others stay queued). Suspending a suspended server does nothing."""
    _call(server, "suspend", timeout, system)


def resume(server: Any, timeout: float | None = 5.0, *, system: ActorSystem | ActorContext | None = None) -> None:
    """Resume a suspended server: it takes its queued messages, in order."""
    _call(server, "resume", timeout, system)


def statistics(
    server: Any, flag: bool | str, timeout: float | None = 5.0, *, system: ActorSystem | ActorContext | None = None
) -> dict[str, Any] | None:
    """``sys:statistics``: ``True`` starts counting, ``False`` stops, ``"get"`` reads.

    Returns:
        For ``"get"``: ``start_time`` and ``current_time`` (Unix seconds),
        ``messages_in`` and ``messages_out`` since counting started; None when
        statistics are off (and for ``True``/``False``).
    """
    if flag not in (True, False, "get"):
        raise ValueError(f"statistics flag must be True, False or 'get', not {flag!r}")
    result: dict[str, Any] | None = _call(server, ("statistics", flag), timeout, system)
    return result


# -- the server side (the behaviours call these) ----------------------------------


def is_system(msg: Any) -> bool:
    """True for a call carrying a system request."""
    if msg.__class__ is not tuple or len(msg) != 3 or msg[0] != _CALL:
        return False
    request = msg[2]
    return request.__class__ is tuple and len(request) == 2 and request[0] == SYSTEM


def handle(behaviour: Any, ctx: ActorContext, from_: From, what: Any, parent: Any) -> None:
    """Answer one system request (in the behaviour's greenlet).

    ``behaviour`` provides ``_joerl_sys_state()``; its statistics live in
    ``behaviour._joerl_sys_stats``. ``parent``: the pid whose ``Exit`` ends a
    suspended process that traps exits.
    """
    if what == "suspend":
        ctx.system.reply(from_, None)
        _suspended(behaviour, ctx, parent)
        return
    ctx.system.reply(from_, _answer(behaviour, ctx, what, False))


def _suspended(behaviour: Any, ctx: ActorContext, parent: Any) -> None:
    """The suspended loop: system messages and the parent's exit only, until resumed."""

    def wanted(msg: Any) -> bool:
        return is_system(msg) or (msg.__class__ is Exit and parent is not None and msg.pid == parent)

    while True:
        msg = ctx.receive(wanted)
        if msg.__class__ is Exit:
            raise StopActor(msg.reason, report=False)
        from_, what = msg[1], msg[2][1]
        if what == "resume":
            ctx.system.reply(from_, None)
            return
        ctx.system.reply(from_, None if what == "suspend" else _answer(behaviour, ctx, what, True))


def _answer(behaviour: Any, ctx: ActorContext, what: Any, suspended: bool) -> Any:
    if what == "get_state":
        return behaviour._joerl_sys_state()
    if what == "get_status":
        return {
            "pid": ctx.pid,
            "name": next((n for n in ctx.system.registered() if ctx.system.whereis(n) == ctx.pid), None),
            "behaviour": actor_label(behaviour),
            "status": "suspended" if suspended else "running",
            "parent": ctx.parent,
            "mailbox_len": ctx.mailbox_len,
            "trap_exit": ctx.trapping_exits,
            "state": behaviour._joerl_sys_state(),
        }
    if what == "resume":
        return None  # not suspended: nothing to do (as sys:resume of a running process)
    if what.__class__ is tuple and len(what) == 2 and what[0] == "statistics":
        return _statistics(behaviour, ctx, what[1])
    return ("error", ("unknown_system_request", what))


def _statistics(behaviour: Any, ctx: ActorContext, flag: Any) -> Any:
    if flag is True:  # this process counts its messages from now on (joerl._watch), as sys:statistics collects them
        _watch.count_one(ctx, True)
        behaviour._joerl_sys_stats = (time.time(), ctx._received, ctx._sent)
        return None
    if flag is False:
        _watch.count_one(ctx, False)
        behaviour._joerl_sys_stats = None
        return None
    base = behaviour._joerl_sys_stats
    if base is None:
        return None
    started, received, sent = base
    return {
        "start_time": started,
        "current_time": time.time(),
        "messages_in": int(ctx._received - received),  # (floats: see ActorContext)
        "messages_out": int(ctx._sent - sent),
    }
