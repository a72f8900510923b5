"""ActorSystem: the process table, spawn, send, links, monitors and exit signals.

Every actor is a greenlet with a mailbox. The system routes messages (local
pids directly, remote pids through the node layer it is given), carries exit
signals along links, delivers ``Down`` to monitors, frees registered names of
dead processes, and shuts everything down in order.

Exit semantics are Erlang's:

* a process that ends sends an exit signal with its reason to every linked
  process; ``normal`` is ignored by non-trapping receivers, anything else
  kills them with the same reason;
* a process that traps exits receives ``Exit(pid, reason)`` instead;
* ``exit(pid, "kill")`` cannot be trapped and ends the process with reason
  ``"killed"``;
* a monitor delivers exactly one ``Down(ref, pid, reason)``, with ``"noproc"``
  when the process was already gone.

The system is not thread-safe: use it from the thread that created it (any
greenlet of that thread, the main one included).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import gevent
from gevent import get_hub, getcurrent
from gevent.event import Event
from gevent.hub import Waiter

from .actor import Actor, ActorContext, ActorRef, StopActor
from .errors import (
    CallError,
    CallTimeout,
    DistributionError,
    MailboxFull,
    NoProcError,
    NotRegistered,
    SystemShutdown,
)
from .mailbox import Mailbox
from .message import KILL, KILLED, NOPROC, NORMAL, SHUTDOWN, Down, Exit
from .pid import Pid, Ref
from .registry import Registry
from .timer import TimerRef

log = logging.getLogger("joerl.actor")

_tuple_new = tuple.__new__

#: The pid that plain (non-actor) code sends from: ``<0.0.0>``; never a process.
SYSTEM_PID = Pid(0, 0, 0)

_NEW, _RUNNING, _EXITING, _DEAD = 0, 1, 2, 3


class ExitSignal(BaseException):
    """Thrown into an actor's greenlet to end it with ``reason`` (not an error)."""

    def __init__(self, reason: Any, run_stopped: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.run_stopped = run_stopped


class _FnActor:
    """Adapter that runs ``fn(ctx, *args)`` as a process body."""

    __slots__ = ("fn", "args")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args

    def __repr__(self) -> str:
        return f"<fn {getattr(self.fn, '__qualname__', self.fn)!r}>"


class From(NamedTuple):
    """Where a GenServer reply goes: the caller's pid and the call's ref.

    A plain tuple, so that it crosses nodes as one (and a ``(pid, ref)`` pair
    that arrives from another node works wherever a From does).
    """

    pid: Pid
    ref: Ref


class RemoteName(NamedTuple):
    """A ``(name, node)`` destination on another node: only that node can resolve it."""

    name: str
    node: str


class ActorSystem:
    """A local actor runtime. Use as a context manager, or call :meth:`shutdown`.

    Args:
        name: a label for logs (the node layer sets its node name here).
    """

    def __init__(self, name: str = "local") -> None:
        self.name = name
        self._hub = get_hub()
        #: Live local processes by ``pid.id`` (an int key hashes in C, a Pid in
        #: Python); look them up with :meth:`_local`, which also checks the pid.
        self._procs: dict[int, ActorContext] = {}
        self._ids = itertools.count(1)
        self._ref_ids = itertools.count(1)
        self._registry = Registry()
        self._timers: set[TimerRef] = set()
        self._calls: dict[Ref, Waiter] = {}
        self._empty = Event()
        self._empty.set()
        self._closing = False
        self._closed = False
        #: The node layer (set by DistributedSystem); None for a local system.
        self.remote: Any = None

    def __enter__(self) -> ActorSystem:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"<ActorSystem {self.name} processes={len(self._procs)}>"

    def _local(self, pid: Pid) -> ActorContext | None:
        """The context of the live local process ``pid``, or None."""
        ctx = self._procs.get(pid.id)
        if ctx is not None and (ctx.pid is pid or ctx.pid == pid):
            return ctx
        return None  # dead, or another node's pid with the same id

    # -- identities ------------------------------------------------------------

    def make_ref(self) -> Ref:
        """A reference unique within this system."""
        return Ref._unchecked(0, next(self._ref_ids), 0)

    # -- spawning --------------------------------------------------------------

    def spawn(self, actor: Any, *, mailbox_size: int | None = None, name: str | None = None) -> ActorRef:
        """Start ``actor`` (an :class:`Actor` instance) in a new process.

        Args:
            actor: the Actor instance that will run (one process per instance).
            mailbox_size: bound the mailbox (``send`` then waits while full).
            name: register the process under this name before it runs.

        Returns:
            An ActorRef for the new process.
        """
        return self._spawn(actor, (), mailbox_size, name, None, False)

    def spawn_fn(
        self, fn: Callable[..., Any], *args: Any, mailbox_size: int | None = None, name: str | None = None
    ) -> ActorRef:
        """Start ``fn(ctx, *args)`` in a new process; it ends when ``fn`` returns."""
        return self._spawn(fn, args, mailbox_size, name, None, False)

    def _spawn(
        self,
        actor: Any,
        args: tuple[Any, ...],
        mailbox_size: int | None,
        name: str | None,
        parent: Pid | None,
        link: bool,
    ) -> ActorRef:
        if self._closed or self._closing and parent is None:
            raise SystemShutdown(f"actor system {self.name!r} is shut down")
        if isinstance(actor, type) and issubclass(actor, Actor):
            raise TypeError(f"spawn takes an Actor instance, not the class {actor.__name__}: spawn({actor.__name__}())")
        if isinstance(actor, Actor):
            if args:
                raise TypeError("arguments are only for spawning functions; give them to the Actor's constructor")
            body = actor
        elif callable(actor):
            body = _FnActor(actor, args)
        else:
            raise TypeError(f"cannot spawn {actor!r}: expected an Actor instance or a function")
        pid = Pid._unchecked(0, next(self._ids), 0)
        ctx = ActorContext(self, pid, Mailbox(mailbox_size), parent)
        ctx._actor = body
        ctx._supervisor = bool(getattr(body, "_joerl_supervisor", False))
        self._procs[pid.id] = ctx
        self._empty.clear()
        if name is not None:
            try:
                self._registry.register(name, pid)
            except BaseException:
                del self._procs[pid.id]
                if not self._procs:
                    self._empty.set()
                raise
        if link and parent is not None:
            pctx = self._local(parent)
            if pctx is not None:
                _add_link(pctx, pid)
                _add_link(ctx, parent)
        g = gevent.Greenlet(self._run, ctx)
        ctx._greenlet = g
        g.start()
        return ActorRef(self, pid)

    # -- the process body ------------------------------------------------------

    def _run(self, ctx: ActorContext) -> None:
        body = ctx._actor
        reason: Any = NORMAL
        run_stopped = True
        crashed = False
        try:
            ctx._state = _RUNNING
            pending = ctx._pending_exit
            if pending is not None:
                # Ended before it first ran: a kill runs no hook at all; any
                # other exit runs started() so that stopped() never runs alone.
                if pending.run_stopped and body.__class__ is not _FnActor:
                    body.started(ctx)
                raise pending
            if body.__class__ is _FnActor:
                body.fn(ctx, *body.args)
            else:
                body.started(ctx)
                handle = body.handle_message
                mailbox = ctx._mailbox
                q = mailbox._q
                while True:
                    if q:
                        msg = q.popleft()
                        if msg.__class__ is tuple:  # a (message, sender) pair: see mailbox._queued()
                            msg, ctx.sender = msg
                        else:
                            ctx.sender = None
                        if mailbox._putters:
                            mailbox._release_putter()
                    else:
                        msg, ctx.sender = mailbox.get()
                    handle(msg, ctx)
        except StopActor as stop:
            reason = stop.reason
        except ExitSignal as sig:
            reason = sig.reason
            run_stopped = sig.run_stopped
        except gevent.GreenletExit:
            reason = KILLED
            run_stopped = False
        except BaseException as exc:  # noqa: BLE001 - a crash is an exit reason
            reason = exc
            crashed = True
            log.error("actor %s (%r) crashed", ctx.pid, body, exc_info=exc)
        ctx._state = _EXITING
        if run_stopped and body.__class__ is not _FnActor:
            try:
                body.stopped(reason, ctx)
            except ExitSignal as sig:
                if not sig.run_stopped:
                    reason = KILLED  # killed while stopping
            except (StopActor, gevent.GreenletExit):
                pass
            except BaseException as exc:  # noqa: BLE001
                if not crashed:
                    reason = exc
                log.error("actor %s (%r) crashed in stopped()", ctx.pid, body, exc_info=exc)
        self._terminate(ctx, reason)

    def _terminate(self, ctx: ActorContext, reason: Any) -> None:
        """Tear down a process that has ended: names, links, monitors, waiters."""
        pid = ctx.pid
        ctx._state = _DEAD
        self._procs.pop(pid.id, None)
        self._registry.drop_pid(pid)
        ctx._mailbox.close()
        links, ctx._links = ctx._links, None
        monitors, ctx._monitors = ctx._monitors, None
        watchers, ctx._monitored_by = ctx._monitored_by, None
        if monitors:
            for ref, target in monitors.items():
                self._drop_monitor(pid, ref, target)
        if links:
            for other in links:
                if other.node == 0:
                    octx = self._local(other)
                    if octx is not None and octx._links is not None:
                        octx._links.discard(pid)
                    self._exit_signal(other, pid, reason, True)
                elif self.remote is not None:
                    self.remote.link_exit(pid, other, reason)
        if watchers:
            for ref, watcher in watchers.items():
                self._deliver_down(watcher, ref, pid, reason)
        done = ctx._done
        if done is not None:
            done.set()
        ctx._actor = None
        if not self._procs:
            self._empty.set()

    # -- messages --------------------------------------------------------------

    def send(self, dest: Any, msg: Any, *, sender: Pid | None = None) -> None:
        """Send ``msg`` to ``dest``: a Pid, a registered name, ``(name, node)`` or an ActorRef.

        A message to a dead pid is dropped, as in Erlang. Waits cooperatively
        while the destination's bounded mailbox is full.

        Raises:
            NotRegistered: ``dest`` is a name nobody holds.
        """
        if dest.__class__ is Pid:
            if dest.node == 0:
                # The hot path of the runtime, so _local() and the unbounded case
                # of Mailbox.put() are written out here. (A subscript is cheaper
                # than get() for live pids; a send to a dead one is the rare case.)
                try:
                    ctx = self._procs[dest.id]
                except KeyError:
                    return
                if ctx.pid is dest or ctx.pid == dest:
                    mailbox = ctx._mailbox
                    if mailbox._maxsize is None:
                        # Never closed: a mailbox closes after its process has left the
                        # table. What is queued follows mailbox._queued().
                        mailbox._q.append(msg if sender is None and msg.__class__ is not tuple else (msg, sender))
                        if mailbox._reader is not None:
                            mailbox._wake_reader()
                    elif sender == dest:
                        mailbox.put_signal((msg, sender))  # never wait on our own mailbox
                    else:
                        mailbox.put((msg, sender))
                return
            remote = self.remote
            if remote is None:
                remote = self._remote_or_fail(dest)  # raises
            remote.send_remote(sender, dest, msg)
            return
        target = self._resolve(dest)
        if target.__class__ is RemoteName:
            self.remote.send_named(sender, target.name, target.node, msg)
            return
        self.send(target, msg, sender=sender)

    def try_send(self, dest: Any, msg: Any, *, sender: Pid | None = None) -> None:
        """Send without waiting.

        Raises:
            MailboxFull: the destination's bounded mailbox is full.
        """
        pid = self._resolve(dest)
        if pid.node != 0:
            self._remote_or_fail(pid).send(sender, pid, msg)
            return
        ctx = self._local(pid)
        if ctx is not None and not ctx._mailbox.try_put((msg, sender)):
            raise MailboxFull(pid)

    def _send_from_hub(self, dest: Any, msg: Any, sender: Pid | None) -> None:
        """Send from the hub (timers): never waits, never raises."""
        try:
            pid = self._resolve(dest)
        except Exception:  # noqa: BLE001 - a timer to a vanished name is dropped
            return
        if pid.node == 0:
            ctx = self._local(pid)
            if ctx is not None:
                ctx._mailbox.put_signal((msg, sender))
        elif self.remote is not None:
            try:
                self.remote.send_remote(sender, pid, msg)
            except Exception:  # noqa: BLE001
                log.exception("timer could not send to %s", pid)

    def send_after(self, delay: float, dest: Any, msg: Any, *, sender: Pid | None = None) -> TimerRef:
        """Send ``msg`` to ``dest`` after ``delay`` seconds; ``cancel()`` the result to stop it."""
        return TimerRef(self, delay, dest, msg, sender)

    def _resolve(self, dest: Any) -> Pid:
        cls = dest.__class__
        if cls is Pid:
            return dest
        if cls is ActorRef or isinstance(dest, ActorRef):
            return dest.pid
        if cls is str:
            pid = self._registry.whereis(dest)
            if pid is None:
                raise NotRegistered(dest)
            return pid
        if cls is tuple and len(dest) == 2:
            name, node = dest
            remote = self.remote
            if remote is None or node == remote.node_name:
                return self._resolve(name)
            return RemoteName(name, node)  # type: ignore[return-value]  # resolved by that node
        if isinstance(dest, Pid):
            return dest
        raise TypeError(f"cannot send to {dest!r}: expected a Pid, a name, (name, node) or an ActorRef")

    def _remote_or_fail(self, pid: Pid) -> Any:
        if self.remote is None:
            raise DistributionError(f"{pid} is on another node but this system is not distributed")
        return self.remote

    # -- the registry ----------------------------------------------------------

    def register(self, name: str, pid: Any) -> None:
        """Register ``pid`` under ``name`` until it dies.

        Raises:
            NameTaken: the name is in use. NoProcError: the process is dead.
        """
        pid = self._resolve(pid)
        if self._local(pid) is None:
            raise NoProcError(pid)
        self._registry.register(name, pid)

    def unregister(self, name: str) -> None:
        """Free ``name``. Raises NotRegistered when nobody holds it."""
        self._registry.unregister(name)

    def whereis(self, name: str) -> Pid | None:
        """The pid registered as ``name``, or None."""
        return self._registry.whereis(name)

    def registered(self) -> list[str]:
        """All registered names, sorted."""
        return self._registry.registered()

    # -- introspection ---------------------------------------------------------

    def is_process_alive(self, pid: Any) -> bool:
        """True while the process runs (a round trip to its node for a remote pid)."""
        pid = self._resolve(pid)
        if pid.node != 0:
            return bool(self._remote_or_fail(pid).is_process_alive(pid))
        ctx = self._local(pid)
        return ctx is not None and ctx._state < _EXITING

    def processes(self) -> list[Pid]:
        """The pids of all live processes, oldest first."""
        return [ctx.pid for ctx in self._procs.values()]

    def context_of(self, pid: Pid) -> ActorContext | None:
        """The context of a live local process (for the runtime's own modules)."""
        return self._local(pid) if isinstance(pid, Pid) else None

    def join(self, pid: Any, timeout: float | None = None) -> bool:
        """Wait until ``pid`` has ended; True if it did within ``timeout``."""
        pid = self._resolve(pid)
        ctx = self._local(pid)
        if ctx is None:
            return True
        if ctx._done is None:
            ctx._done = Event()
        return bool(ctx._done.wait(timeout))

    # -- links -----------------------------------------------------------------

    def link(self, a: Any, b: Any) -> None:
        """Link two processes (``a`` is usually the caller's own pid)."""
        a, b = self._resolve(a), self._resolve(b)
        if a == b:
            return
        actx = self._local(a) if a.node == 0 else None
        if b.node != 0:
            if actx is None:
                raise NoProcError(a)
            self._remote_or_fail(b).link(a, b)
            _add_link(actx, b)
            return
        bctx = self._local(b)
        if bctx is None or bctx._state >= _EXITING:
            if actx is not None and actx._trap_exit:
                actx._mailbox.put_signal((Exit(b, NOPROC), b))
                return
            raise NoProcError(b)
        if actx is None:
            raise NoProcError(a)
        _add_link(actx, b)
        _add_link(bctx, a)

    def unlink(self, a: Any, b: Any) -> None:
        """Remove the link between ``a`` and ``b``, at once, both ways."""
        a, b = self._resolve(a), self._resolve(b)
        for x, y in ((a, b), (b, a)):
            if x.node == 0:
                ctx = self._local(x)
                if ctx is not None and ctx._links is not None:
                    ctx._links.discard(y)
        if b.node != 0 and self.remote is not None:
            self.remote.unlink(a, b)

    def add_remote_link(self, local: Pid, remote: Pid) -> bool:
        """Node layer: a remote process linked to ``local``. False if ``local`` is dead."""
        ctx = self._local(local)
        if ctx is None or ctx._state >= _EXITING:
            return False
        _add_link(ctx, remote)
        return True

    def remove_remote_link(self, local: Pid, remote: Pid) -> None:
        """Node layer: a remote process unlinked from ``local``."""
        ctx = self._local(local)
        if ctx is not None and ctx._links is not None:
            ctx._links.discard(remote)

    # -- exit signals ----------------------------------------------------------

    def exit(self, pid: Any, reason: Any, *, sender: Pid | None = None) -> None:
        """Send an exit signal with ``reason`` to ``pid`` (``"kill"`` is untrappable)."""
        pid = self._resolve(pid)
        sender = sender or SYSTEM_PID
        if pid.node != 0:
            self._remote_or_fail(pid).exit(sender, pid, reason)
            return
        self._exit_signal(pid, sender, reason, False)

    def _exit_signal(self, pid: Pid, sender: Pid, reason: Any, from_link: bool) -> None:
        """Deliver an exit signal to a local process (from a link or from exit/2)."""
        ctx = self._local(pid)
        if ctx is None:
            return
        if reason == KILL and not from_link:
            self._end(ctx, KILLED, run_stopped=False)  # even while it is stopping
        elif ctx._state >= _EXITING:
            return
        elif ctx._trap_exit:
            ctx._mailbox.put_signal((Exit(sender, reason), sender))
        elif reason == NORMAL and not (sender == pid):
            return
        else:
            self._end(ctx, reason)

    def remote_exit(self, sender: Pid, pid: Pid, reason: Any, from_link: bool) -> None:
        """Node layer: an exit signal from a remote process to local ``pid``."""
        if from_link:
            ctx = self._local(pid)
            if ctx is None or ctx._links is None or sender not in ctx._links:
                return
            ctx._links.discard(sender)
        self._exit_signal(pid, sender, reason, from_link)

    def _end(self, ctx: ActorContext, reason: Any, run_stopped: bool = True) -> None:
        """End a local process with ``reason`` as soon as it next runs.

        Only a kill (``run_stopped=False``) interrupts a process that is already
        in its ``stopped`` hook, as ``kill`` always kills in Erlang.
        """
        if ctx._state >= _EXITING and (run_stopped or ctx._state == _DEAD):
            return
        signal = ExitSignal(reason, run_stopped)
        if ctx._state == _NEW:
            if ctx._pending_exit is None or not run_stopped:
                ctx._pending_exit = signal
            return
        g = ctx._greenlet
        if getcurrent() is g:
            raise signal
        self._hub.loop.run_callback(self._throw, ctx, signal)

    @staticmethod
    def _throw(ctx: ActorContext, signal: ExitSignal) -> None:
        # Runs in the hub; switches into the actor with the exception.
        if ctx._state != _RUNNING and not (ctx._state == _EXITING and not signal.run_stopped):
            return
        g = ctx._greenlet
        if g is not None and not g.dead:
            g.throw(signal)

    def stop(self, pid: Any, reason: Any = NORMAL, timeout: float | None = 5.0) -> bool:
        """End ``pid`` with ``reason`` whatever it is doing (its ``stopped`` hook runs),
        and wait up to ``timeout`` for it; True if it ended."""
        pid = self._resolve(pid)
        ctx = self._local(pid)
        if ctx is None:
            return True
        self._end(ctx, reason)
        if getcurrent() is ctx._greenlet:
            return False  # unreachable: _end raised
        return self.join(pid, timeout)

    # -- monitors --------------------------------------------------------------

    def monitor(self, watcher: Any, target: Any) -> Ref:
        """``watcher`` monitors ``target``; returns the monitor's ref.

        ``Down(ref, target, reason)`` arrives exactly once, with ``"noproc"``
        if the target is already gone.
        """
        watcher = self._resolve(watcher)
        target = self._resolve(target)
        ref = self.make_ref()
        self._add_monitor(watcher, target, ref)
        return ref

    def _add_monitor(self, watcher: Any, target: Pid, ref: Ref) -> None:
        wctx = self._local(watcher) if watcher.__class__ is Pid else None
        if target.node != 0:
            if wctx is not None:
                if wctx._monitors is None:
                    wctx._monitors = {}
                wctx._monitors[ref] = target
            self._remote_or_fail(target).monitor(watcher, target, ref)
            return
        tctx = self._local(target)
        if tctx is None or tctx._state >= _EXITING:
            self._deliver_down(watcher, ref, target, NOPROC)
            return
        _add_watcher(tctx, ref, watcher)
        if wctx is not None:
            if wctx._monitors is None:
                wctx._monitors = {}
            wctx._monitors[ref] = target

    def monitor_callback(self, target: Pid, callback: Callable[[Ref, Pid, Any], None]) -> Ref:
        """Runtime-internal monitor: ``callback(ref, pid, reason)`` instead of a Down message.

        The callback runs in whichever greenlet ends the target; it must not block.
        """
        ref = self.make_ref()
        self._add_monitor(callback, target, ref)
        return ref

    def demonitor(self, watcher: Any, ref: Ref) -> bool:
        """Cancel monitor ``ref`` held by ``watcher``; True if it was active."""
        watcher = self._resolve(watcher) if watcher is not None else None
        wctx = self._local(watcher) if watcher is not None else None
        target = None
        if wctx is not None and wctx._monitors is not None:
            target = wctx._monitors.pop(ref, None)
        if target is None:
            return False
        self._drop_monitor(watcher, ref, target)
        return True

    def demonitor_callback(self, ref: Ref, target: Pid) -> None:
        """Cancel a :meth:`monitor_callback`."""
        self._drop_monitor(None, ref, target)

    def _drop_monitor(self, watcher: Any, ref: Ref, target: Pid) -> None:
        if target.node != 0:
            if self.remote is not None:
                self.remote.demonitor(watcher, target, ref)
            return
        _remove_watcher(self._local(target), ref)

    def add_remote_monitor(self, watcher: Pid, target: Pid, ref: Ref) -> bool:
        """Node layer: remote ``watcher`` monitors local ``target``. False if it is dead."""
        tctx = self._local(target)
        if tctx is None or tctx._state >= _EXITING:
            return False
        _add_watcher(tctx, ref, watcher)
        return True

    def remove_remote_monitor(self, target: Pid, ref: Ref) -> None:
        """Node layer: a remote watcher cancelled its monitor of local ``target``."""
        _remove_watcher(self._local(target), ref)

    def remote_down(self, watcher: Pid, ref: Ref, pid: Pid, reason: Any) -> None:
        """Node layer: a remote process that local ``watcher`` monitored has ended."""
        wctx = self._local(watcher)
        if wctx is None or wctx._monitors is None or wctx._monitors.pop(ref, None) is None:
            return
        wctx._mailbox.put_signal((Down(ref, pid, reason), pid))

    def _deliver_down(self, watcher: Any, ref: Ref, pid: Pid, reason: Any) -> None:
        if watcher.__class__ is Pid:
            if watcher.node != 0:
                if self.remote is not None:
                    self.remote.down(watcher, ref, pid, reason)
                return
            wctx = self._local(watcher)
            if wctx is not None:
                if wctx._monitors is not None:
                    wctx._monitors.pop(ref, None)
                wctx._mailbox.put_signal((Down(ref, pid, reason), pid))
        else:
            try:
                watcher(ref, pid, reason)
            except Exception:  # noqa: BLE001 - internal callbacks must not break teardown
                log.exception("monitor callback failed")

    def node_down(self, node_id: int, reason: Any, name: str | None = None) -> None:
        """Node layer: the link to node ``node_id`` (called ``name``) is gone; fire
        every link and monitor across it with ``reason`` (``"noconnection"``),
        monitors of ``(registered_name, name)`` included."""

        def across(target: Any) -> bool:
            if target.__class__ is RemoteName:
                return target.node == name
            return bool(target.node == node_id)

        for ctx in list(self._procs.values()):
            if ctx._links:
                for other in [p for p in ctx._links if p.node == node_id]:
                    ctx._links.discard(other)
                    self._exit_signal(ctx.pid, other, reason, True)
            if ctx._monitors:
                for ref, target in [(r, t) for r, t in ctx._monitors.items() if across(t)]:
                    del ctx._monitors[ref]
                    ctx._mailbox.put_signal((Down(ref, target, reason), target))
            if ctx._monitored_by:
                for ref in [r for r, w in ctx._monitored_by.items() if w.__class__ is Pid and w.node == node_id]:
                    del ctx._monitored_by[ref]

    # -- calls (the machinery under GenServer) ---------------------------------

    def call(self, server: Any, request: Any, timeout: float | None = 5.0, *, caller: Pid | None = None) -> Any:
        """Send ``request`` to a GenServer and wait for its reply.

        Works from an actor or from plain code. The server is monitored for
        the duration of the call, so a dead server fails the call at once; a
        reply that comes after the timeout is dropped, never queued.

        Raises:
            CallTimeout: no reply within ``timeout`` seconds.
            CallError: the server was dead or died during the call.
        """
        try:
            pid = self._resolve(server)
        except NotRegistered:
            raise CallError(server, NOPROC) from None
        if caller is not None and pid == caller:
            raise CallError(server, "calling_self")
        if pid.__class__ is RemoteName or pid.node != 0:
            return self._remote_or_fail(pid).call(pid, request, timeout, caller)
        tctx = self._local(pid)
        if tctx is None or tctx._state >= _EXITING:
            raise CallError(server, NOPROC)
        # One ref both tags the request and monitors the server, as in OTP's
        # gen:call: the server's Down fails the call waiting under that ref.
        ref = self.make_ref()
        waiter = Waiter(self._hub)
        self._calls[ref] = waiter
        _add_watcher(tctx, ref, self._call_target_down)
        timer = None
        try:
            from_ = _tuple_new(From, (caller or SYSTEM_PID, ref))  # From(...) without its Python-level __new__
            self.send(pid, ("$gen_call", from_, request), sender=caller)
            if timeout is not None:
                timer = self._hub.loop.timer(timeout)
                timer.start(waiter.switch, None)
            result = waiter.get()
        finally:
            if timer is not None:
                timer.close()
            self._calls.pop(ref, None)
            _remove_watcher(tctx, ref)
        if result is None:
            raise CallTimeout(server, timeout)  # type: ignore[arg-type]
        ok, value = result
        if ok:
            return value
        raise CallError(server, value)

    def reply(self, from_: From, value: Any) -> None:
        """Answer a call: deliver ``value`` to the caller waiting on ``from_``.

        A reply to a call that has already ended (timed out) is dropped.
        """
        ref = from_[1]
        if ref.node != 0:
            if self.remote is not None:
                self.remote.reply(from_, value)
            return
        self.complete_call(ref, value)

    def _call_target_down(self, ref: Ref, _pid: Pid, reason: Any) -> None:
        # The monitor callback of a local call: its server ended.
        self.fail_call(ref, reason)

    def complete_call(self, ref: Ref, value: Any) -> None:
        """Deliver a reply to the local call waiting on ``ref`` (dropped if none)."""
        waiter = self._calls.pop(ref, None)
        if waiter is not None:
            self._hub.loop.run_callback(waiter.switch, (True, value))

    def fail_call(self, ref: Ref, reason: Any) -> None:
        """Fail the local call waiting on ``ref`` with ``reason`` (node layer)."""
        waiter = self._calls.pop(ref, None)
        if waiter is not None:
            self._hub.loop.run_callback(waiter.switch, (False, reason))

    # -- shutdown --------------------------------------------------------------

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every process and return when all are gone.

        Top-level supervisors go first (they stop their children in order),
        then every other process, newest first, each with reason
        ``"shutdown"``; what is still alive after ``timeout`` is killed.
        Pending timers are cancelled. Safe to call twice.
        """
        if self._closed:
            return
        self._closing = True
        try:
            deadline = self._hub.loop.now() + timeout
            roots = [c for c in self._procs.values() if c._supervisor and not self._is_supervised(c)]
            self._stop_all(roots, deadline)
            self._stop_all(reversed(list(self._procs.values())), deadline)
            for ctx in list(self._procs.values()):
                self._end(ctx, KILLED, run_stopped=False)
            self._empty.wait(max(1.0, timeout))
            for ctx in list(self._procs.values()):  # never started or wedged in the hub
                g = ctx._greenlet
                if g is not None:
                    g.kill(block=False)
                self._terminate(ctx, KILLED)
        finally:
            for timer in list(self._timers):
                timer.cancel()
            for ref in list(self._calls):
                self.fail_call(ref, SHUTDOWN)
            self._closed = True

    def _is_supervised(self, ctx: ActorContext) -> bool:
        parent = self._local(ctx._parent) if ctx._parent is not None else None
        return parent is not None and parent._supervisor

    def _stop_all(self, ctxs: Iterable[ActorContext], deadline: float) -> None:
        ctxs = [c for c in ctxs if c._state < _EXITING]
        current = getcurrent()
        for ctx in ctxs:
            if ctx._greenlet is not current:
                self._end(ctx, SHUTDOWN)
        for ctx in ctxs:
            remaining = deadline - self._hub.loop.now()
            if remaining <= 0:
                return
            if ctx._greenlet is not current and ctx.pid.id in self._procs:
                self.join(ctx.pid, remaining)

    @property
    def closed(self) -> bool:
        return self._closed


def _add_link(ctx: ActorContext, pid: Pid) -> None:
    if ctx._links is None:
        ctx._links = {pid}
    else:
        ctx._links.add(pid)


def _add_watcher(tctx: ActorContext, ref: Ref, watcher: Any) -> None:
    """Record that ``watcher`` (a pid or a callback) monitors ``tctx``'s process under ``ref``."""
    if tctx._monitored_by is None:
        tctx._monitored_by = {ref: watcher}
    else:
        tctx._monitored_by[ref] = watcher


def _remove_watcher(tctx: ActorContext | None, ref: Ref) -> None:
    """Forget monitor ``ref`` of ``tctx``'s process (None, or no such monitor: nothing to do)."""
    if tctx is not None and tctx._monitored_by is not None:
        tctx._monitored_by.pop(ref, None)
