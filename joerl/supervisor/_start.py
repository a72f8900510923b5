"""How a supervisor is started: spawned, then called with READY, which it
answers once ``started()`` has started its children. The caller's
:func:`~joerl.supervisor.start_link` and the start behind
:meth:`ChildSpec.supervisor` both go through here, so that neither a spec
nor the caller's side needs the Supervisor module to start one."""

from __future__ import annotations

from ..actor import Actor, ActorContext
from ..errors import CallError, CallTimeout, ReceiveTimeout, StartError
from ..message import KILL, Exit
from ..pid import Pid
from ..system import ActorSystem

#: The call that returns once the children are started (``started`` has run).
READY = "$joerl_sup_ready"


class StartsReady(Actor):
    """An actor that answers the READY call once it has started (the base of
    :class:`~joerl.supervisor.Supervisor`)."""


def spawn_linked(ctx: ActorContext, actor: StartsReady, name: str | None, timeout: float | None) -> Pid:
    """Spawn ``actor`` linked to the calling actor and wait until it has started.

    Raises:
        StartError: it failed to start, or took longer than ``timeout`` (it is
            killed); the link is removed first.
    """
    pid = ctx.spawn_link(actor, name=name).pid
    try:
        await_started(ctx.system, pid, ctx.pid, timeout)
    except StartError:
        ctx.unlink(pid)
        if ctx.trapping_exits:
            try:
                ctx.receive(lambda m: m.__class__ is Exit and m.pid == pid, 0)
            except ReceiveTimeout:
                pass
        raise
    return pid


def await_started(system: ActorSystem, pid: Pid, caller: Pid | None, timeout: float | None) -> None:
    """Wait until ``pid`` answers READY (``started()`` runs before the first message).

    Raises:
        StartError: as :func:`spawn_linked`.
    """
    try:
        system.call(pid, (READY,), timeout, caller=caller)
    except CallTimeout:
        if caller is not None:
            system.unlink(caller, pid)
        system.exit(pid, KILL)
        raise StartError("timeout") from None
    except CallError as err:
        raise StartError(err.reason) from None
