"""Starting a machine (returning once ``init`` has run), its ref, and the
client functions: calls and casts in OTP's ``gen`` protocol, so that
``system.call``, ``gen_server.call`` and calls from other nodes reach a
machine exactly as they reach a GenServer.
"""

from __future__ import annotations

from typing import Any

from gevent import getcurrent

from .._gen import CAST, STOP, From, start_and_wait
from ..actor import ActorContext, ActorRef
from ..errors import CallError, NotRegistered
from ..message import NORMAL
from ..pid import Pid
from ..system import ActorSystem
from ._machine import GenStatem


class GenStatemRef(ActorRef):
    """A handle on a running machine: ``call``, ``cast``, ``stop``, ``pid``.

    Also accepted wherever a Pid is (send, link, monitor, ``system.call``).
    """

    __slots__ = ("_machine",)

    def __init__(self, system: ActorSystem, pid: Pid, machine: GenStatem | None = None) -> None:
        super().__init__(system, pid)
        self._machine = machine

    def __repr__(self) -> str:
        return f"<GenStatemRef {self.pid}>"

    def _calling_self(self) -> bool:
        machine = self._machine
        return machine is not None and getcurrent() is machine._gen_statem_greenlet

    def call(self, request: Any, timeout: float | None = 5.0) -> Any:
        """Send ``request`` as a ``("call", from_)`` event and wait for the ``Reply``.

        Raises:
            CallTimeout: no reply within ``timeout`` seconds (a later reply is dropped).
            CallError: the machine is dead, dies (or stops) before replying, or is the caller.
        """
        if self._calling_self():
            raise CallError(self.pid, "calling_self")
        return self.system.call(self.pid, request, timeout)

    def cast(self, request: Any) -> None:
        """Send ``request`` as a ``"cast"`` event; never fails (dropped if the machine is dead)."""
        self.system.send(self.pid, (CAST, request))

    def stop(self, reason: Any = NORMAL, timeout: float | None = 5.0) -> bool:
        """Stop the machine in order: after the messages already queued,
        ``terminate`` runs and it ends with ``reason``. True if it ended within
        ``timeout`` (or was already dead).

        Raises:
            CallError: called from the machine itself (``calling_self``).
        """
        if self._calling_self():
            raise CallError(self.pid, "calling_self")
        system = self.system
        if system.context_of(self.pid) is None:
            return True
        system.send(self.pid, (STOP, reason))
        return system.join(self.pid, timeout)


def start(
    system: ActorSystem,
    machine: GenStatem,
    args: Any = None,
    *,
    name: str | None = None,
    mailbox_size: int | None = None,
    timeout: float | None = 5.0,
) -> GenStatemRef:
    """Start ``machine`` in a new process; return once its ``init(args)`` has returned.

    Args:
        system: the system to run in.
        machine: a GenStatem instance (not the class).
        args: passed to ``init``.
        name: register the machine under this name (before ``init`` runs).
        mailbox_size: bound its mailbox.
        timeout: seconds ``init`` may take; after that the machine is killed.

    Returns:
        A GenStatemRef.

    Raises:
        StartError: ``init`` raised (chained; ``reason`` is the exception),
            returned ``Stop`` or a malformed result, or the machine's class is
            misdeclared (bad ``callback_mode``, a state without a state
            function); the name is taken (``("already_started", pid)``); the
            machine died while starting; ``init`` overran ``timeout``
            (``"timeout"``). No process is left behind.
        TypeError: ``machine`` is not a GenStatem instance.
        ValueError: the instance is already running.
    """
    return _start(system, None, machine, args, name, mailbox_size, timeout)


def start_link(
    ctx: ActorContext,
    machine: GenStatem,
    args: Any = None,
    *,
    name: str | None = None,
    mailbox_size: int | None = None,
    timeout: float | None = 5.0,
) -> GenStatemRef:
    """Like :func:`start`, linked to the calling actor (``ctx``) from the first moment.

    If the start fails the link is removed before the machine exits, so the
    caller survives and gets :class:`StartError`. A machine started this way
    that traps exits ends (``terminate`` runs) when its parent's Exit arrives.
    This is the start a supervisor's ``ChildSpec`` calls:
    ``ChildSpec("door", lambda ctx: gen_statem.start_link(ctx, Door()))``.

    Raises:
        StartError, TypeError, ValueError: as :func:`start`.
    """
    if not isinstance(ctx, ActorContext):
        raise TypeError(f"start_link links to the calling actor: pass its ActorContext, not {ctx!r}")
    return _start(ctx.system, ctx, machine, args, name, mailbox_size, timeout)


def _start(
    system: ActorSystem,
    parent: ActorContext | None,
    machine: GenStatem,
    args: Any,
    name: str | None,
    mailbox_size: int | None,
    timeout: float | None,
) -> GenStatemRef:
    if isinstance(machine, type):
        raise TypeError(
            f"start takes a GenStatem instance, not the class {machine.__name__}: start(system, {machine.__name__}())"
        )
    if not isinstance(machine, GenStatem):
        raise TypeError(f"cannot start {machine!r}: expected a GenStatem instance")
    old = machine.ctx
    if old is not None and old.system.is_process_alive(old.pid):
        raise ValueError(f"{machine!r} is already running as {old.pid}; start a new instance")
    pid = start_and_wait(
        system,
        parent,
        machine,
        lambda boot: setattr(machine, "_gen_statem_boot", boot),
        args,
        name,
        mailbox_size,
        timeout,
    )
    return GenStatemRef(system, pid, machine)


def call(
    machine: Any, request: Any, timeout: float | None = 5.0, *, system: ActorSystem | ActorContext | None = None
) -> Any:
    """Call a machine and wait for its reply (OTP's ``gen_statem:call``).

    Args:
        machine: a GenStatemRef, ActorRef, Pid, registered name or ``(name, node)``.
        request: the content of the ``("call", from_)`` event.
        timeout: seconds to wait; None waits forever.
        system: the system to call through, or (from an actor) the caller's
            ActorContext, which names the caller. Not needed for a ref.

    Returns:
        The value of the ``Reply(from_, value)`` the machine gave.

    Raises:
        CallTimeout: no reply in time (a late reply is dropped, never queued).
        CallError: the machine is dead (``"noproc"``), ends before replying
            (its exit reason), or is the caller (``"calling_self"``).
        TypeError: no system to call through.
    """
    if system is None:
        if isinstance(machine, GenStatemRef):
            return machine.call(request, timeout)
        if not isinstance(machine, ActorRef):
            raise TypeError(f"call({machine!r}, ...) needs system= (an ActorSystem or the caller's ActorContext)")
        system = machine.system
    if isinstance(system, ActorContext):
        return system.call(machine, request, timeout)
    return system.call(machine, request, timeout)


def cast(system: ActorSystem | ActorContext, machine: Any, request: Any) -> None:
    """Send ``request`` to the machine as a ``"cast"`` event and return at once.

    Like OTP's, a cast never fails: to a dead machine or an unregistered name
    it is dropped. From an actor, pass its ActorContext as ``system``.
    """
    sender = None
    if isinstance(system, ActorContext):
        sender = system.pid
        system = system.system
    try:
        system.send(machine, (CAST, request), sender=sender)
    except NotRegistered:
        pass


def reply(system: ActorSystem | ActorContext | ActorRef, from_: From, value: Any) -> None:
    """Answer a call from outside a transition (any greenlet, any timer).

    A reply to a call that already timed out is dropped. (OTP's
    ``gen_statem:reply(From, Reply)``; name the system: the system, any
    ActorContext or ref in it.)
    """
    if not isinstance(system, ActorSystem):
        system = system.system
    system.reply(from_, value)
