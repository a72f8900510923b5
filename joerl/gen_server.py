"""GenServer: the client/server behaviour (OTP's ``gen_server``) on the local runtime.

A server is an :class:`Actor` whose loop this module owns. A subclass writes
the callbacks, all of which run in the server's own greenlet:

* ``init(args) -> state`` (raising, or returning ``Stop(reason)``, fails the start);
* ``handle_call(request, from_, state)`` returns ``Reply(value, state)``,
  ``NoReply(state)`` (answer later, from any greenlet, with ``reply``) or
  ``Stop(reason, state, reply=value)``;
* ``handle_cast(request, state)`` and ``handle_info(msg, state)`` return the
  new state, or ``Stop(reason, state)``;
* ``terminate(reason, state)`` runs when the server ends (not when it is killed).

The wire shapes are OTP's: a call is ``("$gen_call", From, request)`` (made and
answered by the system's call machinery, :meth:`ActorSystem.call`, which
monitors the server and drops late replies), a cast is ``("$gen_cast",
request)``, ``("$gen_stop", reason)`` is an orderly stop, and anything else is
info. :func:`start` / :func:`start_link` return once ``init`` has finished.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from gevent import getcurrent
from gevent.event import AsyncResult

from . import sys_calls
from ._gen import CALL as _CALL
from ._gen import CAST as _CAST
from ._gen import STOP as _STOP
from ._gen import From, start_and_wait
from ._stats import DROP_UNREGISTERED
from ._traced import Traced
from ._traced import handle_call as handle_traced_call
from .actor import Actor, ActorContext, ActorRef, StopActor
from .errors import CallError, NotRegistered
from .message import NORMAL, Exit
from .pid import Pid
from .sys_calls import SYSTEM as _SYSTEM
from .system import ActorSystem
from .timer import TimerRef

__all__ = [
    "From",
    "GenServer",
    "GenServerRef",
    "NoReply",
    "Reply",
    "Stop",
    "call",
    "cast",
    "reply",
    "start",
    "start_link",
]

log = logging.getLogger(__name__)


class _Keep:
    """The default ``state`` of Reply / NoReply / Stop: keep the state as it is."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unchanged>"


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<no reply>"


_KEEP: Any = _Keep()
_NO_REPLY: Any = _Unset()


class Reply(NamedTuple):
    """``handle_call`` result: answer ``value`` now; ``state`` becomes the new state
    (left out: the state stays as it is)."""

    value: Any
    state: Any = _KEEP


class NoReply(NamedTuple):
    """``handle_call`` result: answer later with :func:`reply` (or ``self.reply``)."""

    state: Any = _KEEP


class Stop(NamedTuple):
    """Any callback's result: end the server with ``reason``.

    ``terminate(reason, state)`` runs first; then, from ``handle_call``, the
    caller gets ``reply`` if one is given, or else a ``CallError`` carrying
    ``reason``. From ``init`` it fails the start with ``StartError(reason)``.
    """

    reason: Any
    state: Any = _KEEP
    reply: Any = _NO_REPLY


class GenServer(Actor):
    """Base class of a generic server. Override the callbacks you need.

    The server's :class:`ActorContext` is ``self.ctx`` from ``init`` on, for
    timers (:meth:`send_after`), spawning, links, monitors and calls to other
    servers. Start a server with :func:`start` or :func:`start_link`; one
    instance runs one process at a time. A server started with ``start_link``
    that traps exits ends (``terminate`` runs) when its parent's ``Exit``
    arrives; other ``Exit`` messages go to ``handle_info``.
    """

    #: The server's context; set as its process starts (None before).
    ctx: ActorContext = None  # type: ignore[assignment]

    # Class-level defaults, so a subclass __init__ need not call super().
    __state: Any = None
    __running = False
    __boot: tuple[Any, AsyncResult | None, Pid | None] | None = None
    __parent: Pid | None = None
    __pending: tuple[From, Any] | None = None
    __reply: Any = None

    # -- callbacks (run in the server's greenlet) -------------------------------

    def init(self, args: Any) -> Any:
        """Make the initial state from ``args`` (default: ``args`` itself).

        Raise, or return ``Stop(reason)``, to fail the start: the caller of
        :func:`start` gets :class:`StartError` and no process is left behind.
        """
        return args

    def handle_call(self, request: Any, from_: From, state: Any) -> Reply | NoReply | Stop:
        """Answer a call. The default crashes the server: it expects no calls."""
        raise NotImplementedError(
            f"{type(self).__name__} got a call it does not handle: {request!r} (define handle_call)"
        )

    def handle_cast(self, request: Any, state: Any) -> Any:
        """Handle a cast; return the new state or ``Stop``. The default logs it."""
        log.warning("%s %s got an unexpected cast: %r", type(self).__name__, self.ctx.pid, request)
        return state

    def handle_info(self, msg: Any, state: Any) -> Any:
        """Handle any other message (timers, Down, Exit, raw sends); return the new
        state or ``Stop``. The default logs it, as OTP does."""
        log.warning("%s %s got an unexpected message: %r", type(self).__name__, self.ctx.pid, msg)
        return state

    def terminate(self, reason: Any, state: Any) -> None:
        """Runs as the server ends (stopped, crashed, shut down; not when killed)."""

    # -- helpers for callbacks -------------------------------------------------

    def reply(self, from_: From, value: Any) -> None:
        """Answer a deferred call; safe from any greenlet (or a timer callback)."""
        self.ctx.system.reply(from_, value)

    def send_after(self, delay: float, msg: Any) -> TimerRef:
        """Send ``msg`` to this server (to ``handle_info``) after ``delay`` seconds."""
        return self.ctx.send_after(delay, self.ctx.pid, msg)

    # -- the loop (Actor hooks; the runtime calls these) -----------------------

    def started(self, ctx: ActorContext) -> None:
        """Runs ``init``, then tells the starter (the process is already registered)."""
        self.ctx = ctx
        self.__reply = ctx.system.reply
        self.__pending = None
        self.__running = False
        boot, self.__boot = self.__boot, None
        args, done, parent = boot if boot is not None else (None, None, None)
        self.__parent = parent
        try:
            state = self.init(args)
        except StopActor as stop:
            reason = stop.reason
        except Exception as exc:  # noqa: BLE001 - a failed init is the starter's error
            reason = exc
        else:
            if state.__class__ is not Stop:
                self.__state = state
                self.__running = True
                if done is not None:
                    done.set(None)
                return
            reason = state.reason
        self.__fail(ctx, parent, reason)

    @staticmethod
    def __fail(ctx: ActorContext, parent: Pid | None, reason: Any) -> None:
        # Unlink first, so the caller of start_link survives our exit.
        if parent is not None:
            ctx.unlink(parent)
        log.debug("%s failed to start: %r", ctx.pid, reason)
        raise StopActor(reason, report=False)  # the starter gets the error

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        """Dispatch one message to handle_call / handle_cast / handle_info."""
        if msg.__class__ is tuple:
            n = len(msg)
            if n == 3 and msg[0] == _CALL:
                from_, request = msg[1], msg[2]
                if request.__class__ is Traced:  # a call made under a trace context (joerl.otel)
                    handle_traced_call(ctx, msg, self.handle_message)
                    return
                if request.__class__ is tuple and len(request) == 2 and request[0] == _SYSTEM:
                    sys_calls.handle(self, ctx, from_, request[1], self.__parent)
                    return
                result: Any = self.handle_call(request, from_, self.__state)
                cls = result.__class__
                if cls is Reply:
                    state = result[1]
                    if state is not _KEEP:
                        self.__state = state
                    self.__reply(from_, result[0])
                elif cls is NoReply:
                    state = result[0]
                    if state is not _KEEP:
                        self.__state = state
                elif cls is Stop:
                    if result[2] is not _NO_REPLY:
                        self.__pending = (from_, result[2])
                    self.__stop(result)
                else:
                    raise TypeError(
                        f"{type(self).__name__}.handle_call must return Reply, NoReply or Stop, not {result!r}"
                    )
                return
            if n == 2:
                tag = msg[0]
                if tag == _CAST:
                    self.__apply(self.handle_cast(msg[1], self.__state), "handle_cast")
                    return
                if tag == _STOP:
                    raise StopActor(msg[1])
        elif msg.__class__ is Exit and self.__parent is not None and msg.pid == self.__parent:
            # Trapping exits and the parent went: end with its reason (as OTP does).
            raise StopActor(msg.reason, report=False)  # the parent's failure is reported where it happened
        self.__apply(self.handle_info(msg, self.__state), "handle_info")

    def __apply(self, result: Any, hook: str) -> None:
        cls = result.__class__
        if cls is Stop:
            self.__stop(result)
        elif cls is Reply or cls is NoReply:
            raise TypeError(f"{type(self).__name__}.{hook} must return the new state or Stop, not {result!r}")
        self.__state = result

    def __stop(self, result: Stop) -> None:
        if result.state is not _KEEP:
            self.__state = result.state
        raise StopActor(result.reason)

    _joerl_sys_stats: Any = None  # sys_calls.statistics

    def _joerl_sys_state(self) -> Any:
        return self.__state

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        """Runs ``terminate`` (only if ``init`` succeeded), then a pending Stop reply."""
        if not self.__running:
            return
        self.__running = False
        pending, self.__pending = self.__pending, None
        try:
            self.terminate(reason, self.__state)
        finally:
            if pending is not None:
                ctx.system.reply(pending[0], pending[1])


class GenServerRef(ActorRef):
    """A handle on a running GenServer: ``call``, ``cast``, ``stop``, ``pid``.

    Also accepted wherever a Pid is (send, link, monitor, ``system.call``).
    """

    __slots__ = ("_greenlet",)

    def __init__(self, system: ActorSystem, pid: Pid) -> None:
        super().__init__(system, pid)
        self._greenlet = self._ctx._greenlet if self._ctx is not None else None

    def __repr__(self) -> str:
        return f"<GenServerRef {self.pid}>"

    def call(self, request: Any, timeout: float | None = 5.0) -> Any:
        """Call the server and wait for its reply (from an actor, ``ctx.call(ref, ...)``
        also names the caller).

        Raises:
            CallTimeout: no reply within ``timeout`` seconds (a later reply is dropped).
            CallError: the server is dead, dies during the call, or is the caller.
        """
        if getcurrent() is self._greenlet:
            raise CallError(self.pid, "calling_self")
        return self.system.call(self.pid, request, timeout)

    def cast(self, request: Any) -> None:
        """Send ``request`` to ``handle_cast``; never fails (dropped and counted in
        ``system.stats`` if the server is dead)."""
        self.system.send(self.pid, (_CAST, request))

    def stop(self, reason: Any = NORMAL, timeout: float | None = 5.0) -> bool:
        """Stop the server in order: after the messages already queued, ``terminate``
        runs and the server ends with ``reason``. True if it ended within ``timeout``
        (or was already dead). For an immediate end use ``system.stop(pid)``.

        Raises:
            CallError: called from the server itself (``calling_self``).
        """
        if getcurrent() is self._greenlet:
            raise CallError(self.pid, "calling_self")
        system = self.system
        if system.context_of(self.pid) is None:
            return True
        system.send(self.pid, (_STOP, reason))
        return system.join(self.pid, timeout)


# -- starting ------------------------------------------------------------------


def start(
    system: ActorSystem,
    server: GenServer,
    args: Any = None,
    *,
    name: str | None = None,
    mailbox_size: int | None = None,
    timeout: float | None = 5.0,
) -> GenServerRef:
    """Start ``server`` in a new process and return once its ``init(args)`` is done.

    Args:
        system: the system to run in.
        server: a GenServer instance (not the class).
        args: passed to ``init``.
        name: register the server under this name (before ``init`` runs).
        mailbox_size: bound its mailbox.
        timeout: seconds ``init`` may take; after that the server is killed.

    Returns:
        A GenServerRef.

    Raises:
        StartError: ``init`` raised (chained; ``reason`` is the exception) or
            returned ``Stop``; the name is taken (``("already_started", pid)``);
            the server died while starting; ``init`` overran ``timeout``
            (``"timeout"``). No process is left behind.
    """
    return _start(system, None, server, args, name, mailbox_size, timeout)


def start_link(
    ctx: ActorContext,
    server: GenServer,
    args: Any = None,
    *,
    name: str | None = None,
    mailbox_size: int | None = None,
    timeout: float | None = 5.0,
) -> GenServerRef:
    """Like :func:`start`, linked to the calling actor (``ctx``) from the first moment.

    If the start fails the link is removed before the server exits, so the
    caller survives and gets :class:`StartError`. A server started this way
    that traps exits ends (via ``terminate``) when it gets its parent's Exit.
    """
    if not isinstance(ctx, ActorContext):
        raise TypeError(f"start_link links to the calling actor: pass its ActorContext, not {ctx!r}")
    return _start(ctx.system, ctx, server, args, name, mailbox_size, timeout)


def _start(
    system: ActorSystem,
    parent: ActorContext | None,
    server: GenServer,
    args: Any,
    name: str | None,
    mailbox_size: int | None,
    timeout: float | None,
) -> GenServerRef:
    if isinstance(server, type):
        raise TypeError(
            f"start takes a GenServer instance, not the class {server.__name__}: start(system, {server.__name__}())"
        )
    if not isinstance(server, GenServer):
        raise TypeError(f"cannot start {server!r}: expected a GenServer instance")
    old = server.ctx
    if old is not None and old.system.is_process_alive(old.pid):
        raise ValueError(f"{server!r} is already running as {old.pid}; start a new instance")
    pid = start_and_wait(
        system,
        parent,
        server,
        lambda boot: setattr(server, "_GenServer__boot", boot),
        args,
        name,
        mailbox_size,
        timeout,
    )
    return GenServerRef(system, pid)


# -- client functions ----------------------------------------------------------


def call(
    server: Any, request: Any, timeout: float | None = 5.0, *, system: ActorSystem | ActorContext | None = None
) -> Any:
    """Call a GenServer and wait for its reply (OTP's ``gen_server:call``).

    Args:
        server: a GenServerRef, ActorRef, Pid, registered name or ``(name, node)``.
        request: passed to ``handle_call``.
        timeout: seconds to wait; None waits forever.
        system: the system to call through, or (from an actor) the caller's
            ActorContext, which names the caller. Not needed for a ref.

    Raises:
        CallTimeout: no reply in time (a late reply is dropped, never queued).
        CallError: the server is dead (``"noproc"``), dies during the call
            (its exit reason), or is the caller (``"calling_self"``).
    """
    if system is None:
        if server.__class__ is GenServerRef:
            return server.call(request, timeout)
        if not isinstance(server, ActorRef):
            raise TypeError(f"call({server!r}, ...) needs system= (an ActorSystem or the caller's ActorContext)")
        system = server.system
    return system.call(server, request, timeout)


def cast(system: ActorSystem | ActorContext, server: Any, request: Any) -> None:
    """Send ``request`` to the server's ``handle_cast`` and return at once.

    Like OTP's, a cast never fails: to a dead server or an unregistered name it
    is dropped, and counted in ``system.stats`` (reasons ``"noproc"`` and
    ``"unregistered"``). From an actor, pass its ActorContext as ``system``.

    Args:
        system: the system, or (from an actor) the caller's ActorContext.
        server: anything ``send`` takes: a GenServerRef or ActorRef, a Pid, a
            registered name or ``(name, node)``.
        request: passed to ``handle_cast``.

    Raises:
        TypeError: ``server`` is no destination.
    """
    sender = None
    if isinstance(system, ActorContext):
        sender = system.pid
        system = system.system
    try:
        system.send(server, (_CAST, request), sender=sender)
    except NotRegistered:
        system.stats.drop(DROP_UNREGISTERED)


def reply(system: ActorSystem | ActorContext | ActorRef, from_: From, value: Any) -> None:
    """Answer a call that ``handle_call`` deferred with ``NoReply``.

    Safe from any greenlet or timer. A reply to a call that already timed out
    is dropped. (OTP's ``gen_server:reply(From, Reply)``; joerl has no global
    system, so name one: the system, any ActorContext or ref in it.)

    Args:
        system: the server's system, or any ActorContext or ActorRef of it.
        from_: the ``From`` that ``handle_call`` was given.
        value: what the caller's ``call`` returns.

    Example::

        def handle_call(self, request, from_, state):
            self.send_after(1.0, ("answer", from_))  # reply later, from handle_info
            return NoReply()

        def handle_info(self, msg, state):
            gen_server.reply(self.ctx, msg[1], "done")
            return state
    """
    if not isinstance(system, ActorSystem):
        system = system.system
    system.reply(from_, value)
