"""Links, monitors and exit signals between processes, and the entry a node applies them through.

Exit semantics are Erlang's:

* a process that ends sends an exit signal with its reason to every linked
  process; ``normal`` is ignored by non-trapping receivers, anything else
  kills them with the same reason;
* a process that traps exits receives ``Exit(pid, reason)`` instead;
* ``exit(pid, "kill")`` cannot be trapped and ends the process with reason
  ``"killed"``;
* a monitor delivers exactly one ``Down(ref, pid, reason)``, with ``"noproc"``
  at once when the process was already gone (a pid of an earlier incarnation
  of this node included) or, monitored by name, when nobody holds the name;
* a link to a process that is gone delivers ``Exit(pid, "noproc")`` at once
  to a caller that traps exits and raises ``NoProcError`` in one that does not.

:class:`Signals` is the part of :class:`~joerl.system.ActorSystem` that
carries them; :class:`NodeInbound` is the :class:`~joerl._router.Inbound`
a node gets from ``ActorSystem.attach_router``: the one way signals from
other nodes reach the process table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gevent import getcurrent

from ._router import RemoteName, Router
from .actor import DEAD, EXITING, NEW, RUNNING, ActorContext
from .errors import DistributionError, NoProcError, NotRegistered
from .message import KILL, KILLED, NOPROC, NORMAL, Down, Exit
from .pid import SYSTEM_PID, Pid, Ref

if TYPE_CHECKING:
    from .mailbox import Mailbox

log = logging.getLogger("joerl.actor")

#: A monitor's watcher: a pid, or a runtime-internal callback ``(ref, pid, reason)``.
Watcher = Pid | Callable[[Ref, Pid, Any], None]


class ExitSignal(BaseException):
    """Thrown into an actor's greenlet to end it with ``reason`` (not an error)."""

    def __init__(self, reason: Any, run_stopped: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.run_stopped = run_stopped


class Signals:
    """Links, monitors and exit signals (a part of ActorSystem; see the module docstring)."""

    _hub: Any
    _procs: dict[int, ActorContext]
    _router: Router | None

    if TYPE_CHECKING:

        def _resolve(self, dest: Any) -> Pid: ...
        def make_ref(self) -> Ref: ...
        def join(self, pid: Any, timeout: float | None = None) -> bool: ...

    def _local(self, pid: Pid) -> ActorContext | None:
        """The context of the live local process ``pid``, or None."""
        ctx = self._procs.get(pid.id)
        if ctx is not None and (ctx.pid is pid or ctx.pid == pid):
            return ctx
        return None  # dead, or another node's pid with the same id

    def _here(self, pid: Pid) -> Pid | None:
        """``pid`` as this runtime names it, for a link or a monitor.

        A pid of this node as peers name it (``<node_id.id.creation>``) is
        the local one; None for a pid of an earlier incarnation of this node
        (another creation): that process is gone. Any other pid is returned
        as it is.
        """
        router = self._router
        if router is None or pid.__class__ is not Pid or pid.node == 0 or pid.node != router.node_id:
            return pid
        local = router.local_pid(pid)
        return local if local.node == 0 else None

    def _node(self, pid: Pid | RemoteName) -> Router:
        router = self._router
        if router is None:
            raise DistributionError(f"{pid} is on another node but this system is not distributed")
        return router

    # -- links -----------------------------------------------------------------

    def link(self, a: Any, b: Any) -> None:
        """Link two processes (``a`` is usually the caller's own pid).

        Raises:
            NoProcError: ``b`` is a local process that is gone (a pid of an
                earlier incarnation of this node included) and ``a`` does not
                trap exits (one that does gets ``Exit(b, "noproc")`` at once);
                or ``a`` is gone.
            NotRegistered: a name nobody holds.
        """
        a, b = self._resolve(a), self._resolve(b)
        here = self._here(b)
        if here is not None:
            b = here
        if a == b:
            return
        actx = self._local(a) if a.node == 0 else None
        if here is not None and b.node != 0:
            if actx is None:
                raise NoProcError(a)
            self._node(b).route_link(a, b)
            add_link(actx, b)
            return
        bctx = self._local(b) if here is not None else None
        if bctx is None or bctx._state >= EXITING:
            if actx is not None and actx._trap_exit:
                actx._mailbox.put_signal((Exit(b, NOPROC), b))
                return
            raise NoProcError(b)
        if actx is None:
            raise NoProcError(a)
        add_link(actx, b)
        add_link(bctx, a)

    def unlink(self, a: Any, b: Any) -> None:
        """Remove the link between ``a`` and ``b``, at once, both ways."""
        a, b = self._resolve(a), self._resolve(b)
        for x, y in ((a, b), (b, a)):
            if x.node == 0:
                ctx = self._local(x)
                if ctx is not None and ctx._links is not None:
                    ctx._links.discard(y)
        if b.node != 0 and self._router is not None:
            self._router.route_unlink(a, b)

    # -- exit signals ----------------------------------------------------------

    def exit(self, pid: Any, reason: Any, *, sender: Pid | None = None) -> None:
        """Send an exit signal with ``reason`` to ``pid`` (``"kill"`` is untrappable)."""
        pid = self._resolve(pid)
        sender = sender or SYSTEM_PID
        if pid.node != 0:
            self._node(pid).route_exit(sender, pid, reason)
            return
        self._exit_signal(pid, sender, reason, False)

    def _exit_signal(self, pid: Pid, sender: Pid, reason: Any, from_link: bool) -> None:
        """Deliver an exit signal to a local process (from a link or from exit/2)."""
        ctx = self._local(pid)
        if ctx is None:
            return
        if reason == KILL and not from_link:
            self._end(ctx, KILLED, run_stopped=False)  # even while it is stopping
        elif ctx._state >= EXITING:
            return
        elif ctx._trap_exit:
            ctx._mailbox.put_signal((Exit(sender, reason), sender))
        elif reason == NORMAL and not (sender == pid):
            return
        else:
            self._end(ctx, reason)

    def _end(self, ctx: ActorContext, reason: Any, run_stopped: bool = True) -> None:
        """End a local process with ``reason`` as soon as it next runs.

        Only a kill (``run_stopped=False``) interrupts a process that is already
        in its ``stopped`` hook, as ``kill`` always kills in Erlang.
        """
        if ctx._state >= EXITING and (run_stopped or ctx._state == DEAD):
            return
        signal = ExitSignal(reason, run_stopped)
        if ctx._state == NEW:
            if ctx._pending_exit is None or not run_stopped:
                ctx._pending_exit = signal
            return
        g = ctx._greenlet
        if getcurrent() is g:
            raise signal
        self._hub.loop.run_callback(_throw, ctx, signal)

    def stop(self, pid: Any, reason: Any = NORMAL, timeout: float | None = 5.0) -> bool:
        """End ``pid`` with ``reason`` whatever it is doing (its ``stopped`` hook runs),
        and wait up to ``timeout`` for it; True if it ended."""
        pid = self._resolve(pid)
        ctx = self._local(pid)
        if ctx is None:
            return True
        self._end(ctx, reason)  # raises ExitSignal when a process stops itself
        return self.join(pid, timeout)

    # -- monitors --------------------------------------------------------------

    def monitor(self, watcher: Any, target: Any) -> Ref:
        """``watcher`` monitors ``target``; returns the monitor's ref.

        ``Down(ref, target, reason)`` arrives exactly once, with ``"noproc"``
        at once if the target is already gone (a pid of an earlier
        incarnation of this node included). A registered name that nobody
        holds gets ``Down(ref, name, "noproc")`` (the name as given), as
        ``erlang:monitor(process, Name)`` does.

        Raises:
            TypeError: ``target`` is no process.
        """
        watcher = self._resolve(watcher)
        ref = self.make_ref()
        try:
            resolved = self._resolve(target)
        except NotRegistered:
            self._deliver_down(watcher, ref, target, NOPROC)
            return ref
        here = self._here(resolved)
        if here is None:
            self._deliver_down(watcher, ref, resolved, NOPROC)
        else:
            self._add_monitor(watcher, here, ref)
        return ref

    def _add_monitor(self, watcher: Watcher, target: Pid | RemoteName, ref: Ref) -> None:
        wctx = self._local(watcher) if watcher.__class__ is Pid else None
        if target.__class__ is RemoteName or target.node != 0:
            if watcher.__class__ is not Pid:
                raise DistributionError("internal monitors of remote processes are not supported")
            if wctx is not None:
                if wctx._monitors is None:
                    wctx._monitors = {}
                wctx._monitors[ref] = target
            self._node(target).route_monitor(watcher, target, ref)
            return
        tctx = self._local(target)
        if tctx is None or tctx._state >= EXITING:
            self._deliver_down(watcher, ref, target, NOPROC)
            return
        add_watcher(tctx, ref, watcher)
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

    def _drop_monitor(self, watcher: Pid | None, ref: Ref, target: Pid | RemoteName) -> None:
        if target.__class__ is RemoteName or target.node != 0:
            if self._router is not None and watcher is not None:
                self._router.route_demonitor(watcher, target, ref)
            return
        remove_watcher(self._local(target), ref)

    def _deliver_down(self, watcher: Watcher, ref: Ref, pid: Pid, reason: Any) -> None:
        if watcher.__class__ is Pid:
            if watcher.node != 0:
                if self._router is not None:
                    self._router.route_down(watcher, ref, pid, reason)
                return
            wctx = self._local(watcher)
            if wctx is not None:
                if wctx._monitors is not None:
                    wctx._monitors.pop(ref, None)
                wctx._mailbox.put_signal((Down(ref, pid, reason), pid))
        else:
            try:
                watcher(ref, pid, reason)  # type: ignore[operator]
            except Exception:
                log.exception("monitor callback failed")


class NodeInbound:
    """The :class:`~joerl._router.Inbound` of one ActorSystem: signals from other nodes.

    Created by ``ActorSystem.attach_router``; the node holds it and calls
    nothing else of the runtime's internals.
    """

    __slots__ = ("_system", "_procs")

    def __init__(self, system: Signals) -> None:
        self._system = system
        self._procs = system._procs

    def mailbox(self, local_id: int) -> Mailbox | None:
        ctx = self._procs.get(local_id)
        return ctx._mailbox if ctx is not None else None

    def signal(self, pid: Pid, msg: Any, sender: Pid | None = None) -> bool:
        ctx = self._system._local(pid)
        if ctx is None:
            return False
        ctx._mailbox.put_signal((msg, sender))
        return True

    def add_link(self, local: Pid, remote: Pid) -> bool:
        ctx = self._system._local(local)
        if ctx is None or ctx._state >= EXITING:
            return False
        add_link(ctx, remote)
        return True

    def record_link(self, local: Pid, remote: Pid) -> bool:
        return self.add_link(local, remote)

    def remove_link(self, local: Pid, remote: Pid) -> None:
        ctx = self._system._local(local)
        if ctx is not None and ctx._links is not None:
            ctx._links.discard(remote)

    def exit(self, sender: Pid, local: Pid, reason: Any, from_link: bool) -> None:
        if from_link:
            ctx = self._system._local(local)
            if ctx is None or ctx._links is None or sender not in ctx._links:
                return
            ctx._links.discard(sender)
        self._system._exit_signal(local, sender, reason, from_link)

    def add_monitor(self, watcher: Pid, local: Pid, ref: Ref) -> bool:
        # (every remote call's path: _local and add_watcher inline)
        tctx = self._procs.get(local.id)
        if tctx is None or tctx._state >= EXITING or not (tctx.pid is local or tctx.pid == local):
            return False
        watchers = tctx._monitored_by
        if watchers is None:
            tctx._monitored_by = {ref: watcher}
        else:
            watchers[ref] = watcher
        return True

    def record_monitor(self, watcher: Pid, ref: Ref, remote: Pid) -> bool:
        ctx = self._system._local(watcher)
        if ctx is None:
            return False
        if ctx._monitors is None:
            ctx._monitors = {}
        ctx._monitors[ref] = remote
        return True

    def remove_monitor(self, local: Pid, ref: Ref) -> None:
        # (every remote call's path: _local and remove_watcher inline)
        tctx = self._procs.get(local.id)
        if tctx is not None and tctx._monitored_by is not None and (tctx.pid is local or tctx.pid == local):
            tctx._monitored_by.pop(ref, None)

    def down(self, watcher: Pid, ref: Ref, pid: Pid, reason: Any) -> None:
        wctx = self._system._local(watcher)
        if wctx is None or wctx._monitors is None or wctx._monitors.pop(ref, None) is None:
            return
        wctx._mailbox.put_signal((Down(ref, pid, reason), pid))

    def node_down(self, node_id: int, name: str, reason: Any) -> None:
        system = self._system

        def across(target: Any) -> bool:
            if target.__class__ is RemoteName:
                return bool(target.node == name)
            return bool(target.node == node_id)

        for ctx in list(self._procs.values()):
            if ctx._links:
                for other in [p for p in ctx._links if p.node == node_id]:
                    ctx._links.discard(other)
                    system._exit_signal(ctx.pid, other, reason, True)
            if ctx._monitors:
                for ref, target in [(r, t) for r, t in ctx._monitors.items() if across(t)]:
                    del ctx._monitors[ref]
                    ctx._mailbox.put_signal((Down(ref, target, reason), target))
            if ctx._monitored_by:
                for ref in [r for r, w in ctx._monitored_by.items() if w.__class__ is Pid and w.node == node_id]:
                    del ctx._monitored_by[ref]

    def reply(self, ref: Ref, value: Any) -> bool:
        """Resolve the local call waiting under ``ref`` (its reply came from another node)."""
        system: Any = self._system  # an ActorSystem: its table of pending calls
        return bool(system._calls.resolve(ref, (True, value)))


def _throw(ctx: ActorContext, signal: ExitSignal) -> None:
    # Runs in the hub; switches into the actor with the exception.
    if ctx._state != RUNNING and not (ctx._state == EXITING and not signal.run_stopped):
        return
    g = ctx._greenlet
    if g is not None and not g.dead:
        g.throw(signal)


def add_link(ctx: ActorContext, pid: Pid) -> None:
    if ctx._links is None:
        ctx._links = {pid}
    else:
        ctx._links.add(pid)


def add_watcher(tctx: ActorContext, ref: Ref, watcher: Watcher) -> None:
    """Record that ``watcher`` (a pid or a callback) monitors ``tctx``'s process under ``ref``."""
    if tctx._monitored_by is None:
        tctx._monitored_by = {ref: watcher}
    else:
        tctx._monitored_by[ref] = watcher


def remove_watcher(tctx: ActorContext | None, ref: Ref) -> None:
    """Forget monitor ``ref`` of ``tctx``'s process (None, or no such monitor: nothing to do)."""
    if tctx is not None and tctx._monitored_by is not None:
        tctx._monitored_by.pop(ref, None)
