"""Actor hooks, the ActorContext an actor acts through, and ActorRef handles.

An actor is either a subclass of :class:`Actor` (hooks ``started``,
``handle_message``, ``stopped``), or a plain function ``fn(ctx, *args)``
spawned with ``spawn_fn`` that calls the blocking ``ctx.receive()`` as an
Erlang process would. Every hook and every function body runs in the actor's
own greenlet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from gevent.event import AsyncResult

from . import _watch
from ._traced import Traced, unwrap_match
from .message import KILL, NORMAL, Down
from .pid import Pid, Ref

if TYPE_CHECKING:
    from .system import ActorSystem
    from .timer import TimerRef


class Actor:
    """Base class for class-based actors. Override the hooks you need."""

    def started(self, ctx: ActorContext) -> None:
        """Runs in the actor's greenlet before the first message."""

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        """Runs in the actor's greenlet for each message, in arrival order."""

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        """Runs in the actor's greenlet as it ends (not when it is killed)."""


class StopActor(BaseException):
    """Raised by ``ctx.stop(reason)`` inside an actor to end it; not an error.

    An abnormal ``reason`` (not ``normal``, ``shutdown`` nor ``("shutdown", x)``)
    leaves a crash report, as in Erlang, unless ``report`` is False (a
    behaviour whose start failed: its starter gets the error).
    """

    def __init__(self, reason: Any = NORMAL, *, report: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.report = report


#: A process's life, in ``ActorContext._state``: created, running, ending, gone.
NEW, RUNNING, EXITING, DEAD = 0, 1, 2, 3


class ActorContext:
    """What an actor uses to act: its pid, its mailbox, links, monitors, timers.

    One context per process; the runtime keeps its bookkeeping here too (the
    underscored slots), so a process costs one small object beside its
    greenlet and mailbox.
    """

    __slots__ = (
        "pid",
        "system",
        "sender",
        "_mailbox",
        "_q",
        "_greenlet",
        "_links",
        "_monitors",
        "_monitored_by",
        "_trap_exit",
        "_name",
        "_parent",
        "_state",
        "_pending_exit",
        "_done",
        "_actor",
        "_supervisor",
        "_timers",
        "_exit_reason",
        "_trace",
        "_otel",
        "_watched",
        "_counting",
        "_count_only",
        "_received",
        "_sent",
    )

    def __init__(self, system: ActorSystem, pid: Pid, mailbox: Any, parent: Pid | None) -> None:
        self.pid = pid
        self.system = system
        #: The sender of the message being handled, when one is known.
        self.sender: Pid | None = None
        self._mailbox = mailbox
        self._q = mailbox._q  # its deque (receive's common case reads it per message)
        self._greenlet: Any = None
        self._links: set[Pid] | None = None
        self._monitors: dict[Ref, Any] | None = None  # monitors I hold: ref -> target
        self._monitored_by: dict[Ref, Any] | None = None  # ref -> watcher pid or callable
        self._trap_exit = False
        self._name: str | None = None
        self._parent = parent
        self._state = NEW
        self._pending_exit: Any = None
        self._done: Any = None
        self._actor: Any = None
        self._supervisor = False
        self._timers: set[TimerRef] | None = None  # pending timers addressed to this process
        self._exit_reason: Any = None  # set as the process ends (ActorRef.wait)
        self._trace: Any = None  # the joerl.trace.Tracer tracing this process, if any
        self._otel: Any = None  # the trace context a function actor's receive attached (joerl.otel)
        #: Whether the hot paths take the slow path of joerl._watch (counted,
        #: traced, or trace-context envelopes exist): the one test they make.
        self._watched = False
        self._counting = False  # message counts on (joerl._watch)
        self._count_only = False  # counted, and watched for nothing else: counted inline
        #: Messages taken from the mailbox and sent through this context,
        #: while ``_counting`` (joerl.introspect). Floats on purpose: CPython
        #: keeps freed floats for reuse, so ``+= 1.0`` takes nothing from the
        #: allocator, where an int above 256 is a new object at every
        #: increment; exact up to 2**53. Read them with int().
        self._received = 0.0
        self._sent = 0.0

    def __repr__(self) -> str:
        return f"<ActorContext {self.pid}>"

    # -- messaging -------------------------------------------------------------

    def send(self, dest: Any, msg: Any) -> None:
        """Send ``msg`` to a Pid, a registered name, ``(name, node)`` or an ActorRef."""
        if self._watched:
            if self._count_only:
                self._sent += 1.0
            else:
                _watch.sent(self, dest, msg)
        self.system.send(dest, msg, self.pid)  # positionally: a call with keywords is never specialized

    def receive(
        self, match: Callable[[Any], bool] | type | tuple[type, ...] | None = None, timeout: float | None = None
    ) -> Any:
        """Take the next message (the next one that ``match``es), waiting for it.

        Args:
            match: None for any message; a predicate; or a type / tuple of
                types (``isinstance``). Messages that don't match stay queued,
                in order.
            timeout: seconds to wait; None waits forever; 0 only looks.

        Raises:
            ReceiveTimeout: nothing matched in time.
        """
        if match is None:
            # The common case, kept short: take the head of the queue here, as
            # the Actor loop does, and go through the mailbox only to park
            # (what Mailbox.get does: a timeout ends the wait with ReceiveTimeout).
            q = self._q
            while not q:
                self._mailbox._wait(timeout)
            msg = q.popleft()
            if msg.__class__ is tuple:  # queueing rule: inline copy of mailbox._pair()
                msg, self.sender = msg
            else:
                self.sender = None
            # (Unbounded: no writer ever waits for room. See _BoundedContext.)
            if self._watched:  # counted, traced, or a Traced may come
                if not self._count_only:
                    return _watch.received(self, msg)
                self._received += 1.0
            return msg
        return self._receive(match, timeout)

    def _receive(self, match: Callable[[Any], bool] | type | tuple[type, ...], timeout: float | None) -> Any:
        """:meth:`receive` with a pattern (apart: its closure would cost the common case a cell)."""
        if isinstance(match, (type, tuple)):
            types = match
            match = lambda m: isinstance(m.msg if m.__class__ is Traced else m, types)  # noqa: E731
        else:
            match = unwrap_match(match)
        msg, self.sender = self._mailbox.receive(match, timeout)
        if self._watched:
            return _watch.received(self, msg)
        return msg

    def send_after(self, delay: float, dest: Any, msg: Any) -> TimerRef:
        """Send ``msg`` to ``dest`` after ``delay`` seconds; returns a cancellable timer.

        ``dest`` is anything :meth:`send` takes; a timer to a pid is cancelled
        when that process ends (see :meth:`ActorSystem.send_after`).
        """
        return self.system.send_after(delay, dest, msg, sender=self.pid)

    def send_interval(self, interval: float, dest: Any, msg: Any) -> TimerRef:
        """Send ``msg`` to ``dest`` every ``interval`` seconds, from this process, until cancelled.

        The timer stops when ``dest`` ends (a local pid) or, for any other
        destination, when this process ends (OTP links an interval timer to
        the process that set it). See :meth:`ActorSystem.send_interval`.

        Returns:
            The repeating timer; ``cancel()`` stops it.
        """
        return self.system.send_interval(interval, dest, msg, sender=self.pid)

    def apply_after(self, delay: float, fn: Callable[..., Any], *args: Any) -> TimerRef:
        """Run ``fn(*args)`` in a new process after ``delay`` seconds (see :meth:`ActorSystem.apply_after`).

        Returns:
            The timer; ``cancel()`` it to run nothing.
        """
        return self.system.apply_after(delay, fn, *args)

    @overload
    def exit_after(self, delay: float, reason: Any, /) -> TimerRef: ...

    @overload
    def exit_after(self, delay: float, dest: Any, reason: Any, /) -> TimerRef: ...

    def exit_after(self, delay: float, *args: Any) -> TimerRef:
        """An exit signal from this process after ``delay`` seconds: ``exit_after(delay, reason)``
        to this process itself, ``exit_after(delay, dest, reason)`` to ``dest`` (OTP's two arities).

        The signal is sent as :meth:`exit` sends it, with this process as the
        sender: to itself, any reason ends it (``"normal"`` too, as
        ``exit(self(), normal)`` does in Erlang) unless it traps exits, and
        then it receives ``Exit(self, reason)``. See :meth:`ActorSystem.exit_after`.

        Returns:
            The timer; ``cancel()`` it to send nothing.

        Raises:
            TypeError: neither one nor two arguments after ``delay``, or ``dest`` is no process.
        """
        if len(args) == 1:
            dest, reason = self.pid, args[0]
        elif len(args) == 2:
            dest, reason = args
        else:
            raise TypeError(f"exit_after(delay, reason) or exit_after(delay, dest, reason), got {len(args)} arguments")
        return self.system.exit_after(delay, dest, reason, sender=self.pid)

    def kill_after(self, delay: float, dest: Any = None) -> TimerRef:
        """Kill ``dest`` (this process when None) after ``delay`` seconds: ``exit_after(delay, dest, "kill")``.

        Returns:
            The timer; ``cancel()`` it to kill nothing.
        """
        return self.system.kill_after(delay, self.pid if dest is None else dest, sender=self.pid)

    # -- processes -------------------------------------------------------------

    def spawn(self, actor: Any, *args: Any, mailbox_size: int | None = None, name: str | None = None) -> ActorRef:
        """Spawn an actor (an Actor instance, or a function ``fn(ctx, *args)``).

        Args:
            actor: an :class:`Actor` instance, or a function called as ``fn(ctx, *args)``.
            *args: the function's arguments after ``ctx``.
            mailbox_size: bound the mailbox (a full one makes ``send`` wait).
            name: register the new process under this name.

        Returns:
            Its :class:`ActorRef` (``.pid`` is its Pid); this process is its parent.
        """
        return self.system._spawn(actor, args, mailbox_size, name, self.pid, False)

    def spawn_link(self, actor: Any, *args: Any, mailbox_size: int | None = None, name: str | None = None) -> ActorRef:
        """Spawn and link in one step: the child cannot die unlinked."""
        return self.system._spawn(actor, args, mailbox_size, name, self.pid, True)

    def link(self, pid: Any) -> None:
        """Link to ``pid`` (both ways). Linking to a dead process raises NoProcError,
        or delivers ``Exit(pid, "noproc")`` when trapping exits."""
        self.system.link(self.pid, pid)

    def unlink(self, pid: Any) -> None:
        """Remove the link to ``pid``, at once, both ways."""
        self.system.unlink(self.pid, pid)

    def monitor(self, pid: Any) -> Ref:
        """Monitor ``pid``: exactly one ``Down(ref, pid, reason)`` will arrive."""
        return self.system.monitor(self.pid, pid)

    def demonitor(self, ref: Ref, flush: bool = False) -> None:
        """Cancel a monitor; with ``flush`` also drop its Down if already queued."""
        self.system.demonitor(self.pid, ref)
        if flush:
            self._mailbox.remove_if(lambda m: m.__class__.__name__ == "Down" and getattr(m, "ref", None) == ref)

    def trap_exit(self, flag: bool = True) -> bool:
        """Turn exit signals into ``Exit`` messages; returns the previous setting."""
        old = self._trap_exit
        self._trap_exit = bool(flag)
        return old

    def exit(self, pid: Any, reason: Any) -> None:
        """Send an exit signal to ``pid`` (``"kill"`` cannot be trapped)."""
        self.system.exit(pid, reason, sender=self.pid)

    def stop(self, reason: Any = NORMAL) -> None:
        """End this actor with ``reason`` (runs ``stopped``)."""
        raise StopActor(reason)

    def register(self, name: str) -> None:
        """Register this process under ``name`` (freed when it dies)."""
        self.system.register(name, self.pid)

    def whereis(self, name: str) -> Pid | None:
        """The pid registered as ``name`` on this system, or None."""
        return self.system.whereis(name)

    def call(self, server: Any, request: Any, timeout: float | None = 5.0) -> Any:
        """Call a GenServer (see :func:`joerl.gen_server.call`)."""
        if self._watched:
            _watch.called(self, server, request)
        return self.system.call(server, request, timeout, caller=self.pid)

    @property
    def parent(self) -> Pid | None:
        """The pid of the process that spawned this one (None for top-level ones)."""
        return self._parent

    @property
    def trapping_exits(self) -> bool:
        """Whether this process traps exits (see :meth:`trap_exit`)."""
        return self._trap_exit

    @property
    def mailbox_len(self) -> int:
        """How many messages wait in this process's mailbox."""
        return len(self._mailbox)


class _BoundedContext(ActorContext):
    """The context of a process whose mailbox has a bound (or a ``max_mailbox``
    limit): taking a message may let in a writer that waits for room.

    Only such processes get this class, so that :meth:`ActorContext.receive`
    pays nothing for the bound.
    """

    __slots__ = ()

    def receive(
        self, match: Callable[[Any], bool] | type | tuple[type, ...] | None = None, timeout: float | None = None
    ) -> Any:
        """As :meth:`ActorContext.receive`."""
        if match is None:
            mailbox = self._mailbox
            q = mailbox._q
            while not q:
                mailbox._wait(timeout)
            msg = q.popleft()
            if msg.__class__ is tuple:  # queueing rule: inline copy of mailbox._pair()
                msg, self.sender = msg
            else:
                self.sender = None
            if mailbox._putters:
                mailbox._release_putter()  # a slot is free: let a blocked writer in
            if self._watched:  # counted, traced, or a Traced may come
                if not self._count_only:
                    return _watch.received(self, msg)
                self._received += 1.0
            return msg
        return self._receive(match, timeout)


def context_class(mailbox: Any) -> type[ActorContext]:
    """The class of the context of a process with ``mailbox``."""
    return ActorContext if mailbox._maxsize is None else _BoundedContext


class ActorRef:
    """A handle on a spawned process: its pid plus convenience methods."""

    __slots__ = ("pid", "system", "_ctx")

    def __init__(self, system: ActorSystem, pid: Pid) -> None:
        self.pid = pid
        self.system = system
        # A live local process's context: it keeps the exit reason for wait().
        self._ctx = system.context_of(pid) if pid.node == 0 else None

    def __repr__(self) -> str:
        return f"<ActorRef {self.pid}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and other.pid == self.pid

    def __hash__(self) -> int:
        return hash(self.pid)

    def send(self, msg: Any) -> None:
        """Send ``msg``; waits cooperatively while a bounded mailbox is full."""
        self.system.send(self.pid, msg)

    def try_send(self, msg: Any) -> None:
        """Send without waiting. Raises MailboxFull when the bounded mailbox is full."""
        self.system.try_send(self.pid, msg)

    def is_alive(self) -> bool:
        """True while the process runs (a round trip to its node for a remote pid)."""
        return self.system.is_process_alive(self.pid)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the process has ended; True if it did within ``timeout``
        (:meth:`wait` also gives the exit reason)."""
        return self.system.join(self.pid, timeout)

    def wait(self, timeout: float | None = None) -> Any:
        """Wait until the process has ended and return its exit reason.

        The reason is what a monitor's ``Down`` carries: ``"normal"``,
        ``"shutdown"``, ``"killed"``, the exception it crashed with, any
        ``ctx.stop(reason)``. A handle made for a process that had already
        ended, or for another node's process that has, gives ``"noproc"``
        (Erlang's monitor of a dead pid); ``"noconnection"`` when that node
        is lost.

        Raises:
            TimeoutError: still running after ``timeout`` seconds.
        """
        ctx = self._ctx
        if ctx is not None:
            if not self.system.join(self.pid, timeout):
                raise TimeoutError(f"process {self.pid} still running after {timeout}s")
            return ctx._exit_reason
        return _wait_by_monitor(self.system, self.pid, timeout)

    @property
    def exit_reason(self) -> Any:
        """The exit reason once the process has ended (None while it runs, or
        when this handle cannot know it: see :meth:`wait`)."""
        ctx = self._ctx
        return ctx._exit_reason if ctx is not None and ctx._state == DEAD else None

    def stop(self, reason: Any = NORMAL, timeout: float | None = 5.0) -> bool:
        """Ask the process to end with ``reason`` (its ``stopped`` hook runs); wait for it."""
        return self.system.stop(self.pid, reason, timeout)


def _wait_by_monitor(system: ActorSystem, pid: Pid, timeout: float | None) -> Any:
    """The exit reason of ``pid`` (any node's), through a monitor held by a short-lived process."""
    result: AsyncResult = AsyncResult()

    def watcher(ctx: ActorContext) -> None:
        ref = ctx.monitor(pid)
        result.set(ctx.receive(lambda m: m.__class__ is Down and m.ref == ref).reason)

    ref = system.spawn_fn(watcher)
    try:
        if not result.wait(timeout):
            raise TimeoutError(f"process {pid} still running after {timeout}s")
        return result.value
    finally:
        system.exit(ref.pid, KILL)
