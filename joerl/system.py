"""ActorSystem: the process table and the local runtime's public API.

Every actor is a greenlet with a mailbox. The system routes messages (local
pids directly, pids of other nodes through the :class:`~joerl._router.Router`
a node attaches), carries exit signals along links, delivers ``Down`` to
monitors, frees registered names of dead processes, and shuts everything
down in order. Its parts live in their own modules: spawning and a
process's life in :mod:`joerl._process`, links, monitors and exit signals
in :mod:`joerl._signals`, the call protocol in :mod:`joerl._gen`.

The system lives in the thread that created it. Other OS threads may send,
try_send and call (:mod:`joerl._threads` carries those to this thread; see
docs/threads.md); everything else belongs to this thread's greenlets.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from gevent import get_hub, getcurrent
from gevent.event import Event

from . import _watch
from ._budget import DEFAULT_SEND_BUDGET, BudgetedSends, SendBudget
from ._gen import CALL, From, Pending
from ._process import Processes, check_max_mailbox
from ._router import Inbound, RemoteName, Router
from ._serve import STOP_SIGNALS, Serving, StopSignals
from ._signals import ExitSignal, NodeInbound, add_watcher, remove_watcher
from ._stats import (
    DROP_NOPROC,
    DROP_NOT_DISTRIBUTED,
    DROP_ROUTE_FAILED,
    DROP_UNREGISTERED,
    RuntimeStats,
)
from ._threads import ThreadBridge, get_ident
from ._via import via_resolve
from .actor import EXITING, ActorContext, ActorRef
from .errors import CallError, CallTimeout, MailboxFull, NoProcError, NotRegistered
from .introspect import ProcessInfo, process_info
from .message import NOPROC
from .pid import SYSTEM_PID, Pid, Ref
from .pid import make_ref as _new_ref
from .registry import Registry
from .timer import TimerRef, Timers

__all__ = [
    "STOP_SIGNALS",
    "SYSTEM_PID",
    "ActorSystem",
    "StopSignals",
    "ExitSignal",
    "From",
    "RemoteName",
    "check_max_mailbox",
]

log = logging.getLogger("joerl.actor")

_tuple_new = tuple.__new__


# ActorSystem.send's rare local cases, out of its hot block (see there).


def _put_bounded(system: ActorSystem, mailbox: Any, dest: Pid, msg: Any, sender: Pid | None) -> None:
    """A send to a bounded mailbox (or one with a ``max_mailbox`` limit)."""
    if sender == dest:
        mailbox.put_signal((msg, sender))  # never wait on our own mailbox
    elif not mailbox.put((msg, sender)):  # its process ended while we waited for room
        system.stats.drop(DROP_NOPROC)


def _noproc(system: ActorSystem) -> None:
    """A send to a dead local pid."""
    system.stats.drop(DROP_NOPROC)


class ActorSystem(Processes, BudgetedSends, Timers, Serving):
    """A local actor runtime. Use as a context manager, or call :meth:`shutdown`.

    Args:
        name: a label for logs (a node sets its node name here).
        send_budget: fairness: after this many sends from greenlets of its
            thread, the sending greenlet yields to the hub once, so that no
            loop of sends holds up other greenlets, timers and sockets (see
            :attr:`send_budget`); 0 or None: never yield.
        max_mailbox: the default ``max_mailbox`` of processes spawned here
            (:meth:`spawn`; settable later); None (the default): no limit.
        count_messages: count each process's messages in and out (introspection,
            metrics, the rates of ``joerl top``); settable later. Off by default:
            it costs local messaging about 5% (see :mod:`joerl._watch`).

    Raises:
        ValueError: ``send_budget`` is not an int >= 0 nor None; ``max_mailbox`` not an int >= 1 nor None.
    """

    def __init__(
        self,
        name: str = "local",
        *,
        send_budget: int | None = DEFAULT_SEND_BUDGET,
        max_mailbox: int | None = None,
        count_messages: bool = False,
    ) -> None:
        self.max_mailbox = check_max_mailbox(max_mailbox)  # (see Processes.spawn)
        self.name = name
        self._hub = get_hub()
        self._budget_rule = SendBudget(self._hub, send_budget)
        self._ticks = self._budget_rule.refill()  # sends left before the sender yields (next() each)
        #: What other OS threads ask of this system runs in its thread through this.
        self.thread_bridge = ThreadBridge(self._hub)
        self._thread = self.thread_bridge.thread_ident
        #: Live local processes by ``pid.id`` (an int key hashes in C, a Pid in
        #: Python); look them up with :meth:`_local`, which also checks the pid.
        self._procs: dict[int, ActorContext] = {}
        self._ids = itertools.count(1)
        self.ref_ids = itertools.count(1)  # what make_ref draws from (a node's calls take bare ids)
        self._registry = Registry()
        self._timers: set[TimerRef] = set()
        self._calls = Pending()
        self._empty = Event()
        self._empty.set()
        self._closing = False
        self._closed = False
        self._stopped = Event()  # set when a shutdown has ended (serve_forever waits on it)
        self._router: Router | None = None
        #: Counters: messages dropped, by reason (see :class:`~joerl._stats.RuntimeStats`).
        self.stats = RuntimeStats()
        self._count_messages = bool(count_messages)
        _watch.register(self)

    def __enter__(self) -> ActorSystem:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"<ActorSystem {self.name} processes={len(self._procs)}>"

    def attach_router(self, router: Router) -> Inbound:
        """Make this system a node's: signals to other nodes go to ``router``.

        Called once, by the node that owns this system; returns the
        :class:`~joerl._router.Inbound` through which that node applies
        signals from its peers.

        Raises:
            RuntimeError: a router is attached already.
        """
        if self._router is not None:
            raise RuntimeError(f"actor system {self.name!r} already belongs to a node")
        self._router = router
        return NodeInbound(self)

    @property
    def node_name(self) -> str | None:
        """The name of the node this system belongs to (None for a local system)."""
        return self._router.node_name if self._router is not None else None

    # -- identities ------------------------------------------------------------

    def make_ref(self) -> Ref:
        """A reference unique within this system."""
        ref: Ref = _new_ref(0, next(self.ref_ids), 0)
        return ref

    # -- messages --------------------------------------------------------------

    def send(self, dest: Any, msg: Any, sender: Pid | None = None) -> None:
        """Send ``msg`` to ``dest``: a Pid, a registered name, ``(name, node)`` or an ActorRef.

        A message to a dead pid is dropped, as in Erlang. Waits cooperatively
        while the destination's bounded mailbox is full.

        Args:
            dest: where to: a Pid (of this node or another), a registered
                name, ``(name, node)``, an ActorRef or ``("via", registry, name)``.
            msg: any value locally; what may cross nodes: docs/serialization.md.
            sender: what the receiver sees as ``ctx.sender`` (default: none).

        Raises:
            NotRegistered: ``dest`` is a name nobody holds.
        """
        if dest.__class__ is Pid:
            if dest.node == 0:
                # The hot path of the runtime, so _local() and the unbounded case
                # of Mailbox.put() are written out here. (A subscript is cheaper
                # than get() for live pids; a send to a dead one is the rare case.)
                # The rare cases call out: a block this short (under 256 code
                # units) needs no long jump, so that CPython 3.11 specializes
                # the test above it.
                try:
                    ctx = self._procs[dest.id]
                except KeyError:
                    _noproc(self)
                    return
                if ctx.pid is dest or ctx.pid == dest:
                    mailbox = ctx._mailbox
                    if mailbox._maxsize is None:
                        # Never closed: a mailbox closes after its process has left the table.
                        # queueing rule: inline copy of mailbox._queued()
                        mailbox._q.append(msg if sender is None and msg.__class__ is not tuple else (msg, sender))
                        if mailbox._reader is not None:
                            mailbox._wake_reader()
                    else:
                        _put_bounded(self, mailbox, dest, msg, sender)
            else:
                router = self._router
                if router is None:
                    router = self._node(dest)  # raises
                if get_ident() != self._thread:  # another OS thread: in order, in the hub's
                    self.thread_bridge.submit(router.route_send, sender, dest, msg)
                    return
                router.route_send(sender, dest, msg)
            try:
                next(self._ticks)
            except StopIteration:
                self._ticks = self._budget_rule.spent()  # yields to the hub
            return
        target: Any = self._resolve(dest)  # a Pid, or a RemoteName for (name, other node)
        if target.__class__ is RemoteName:
            router = self._node(target)
            if get_ident() != self._thread:
                self.thread_bridge.submit(router.route_send_named, sender, target.name, target.node, msg)
            else:
                router.route_send_named(sender, target.name, target.node, msg)
            return
        self.send(target, msg, sender=sender)

    def try_send(self, dest: Any, msg: Any, *, sender: Pid | None = None) -> None:
        """Send without waiting.

        Raises:
            MailboxFull: the destination's bounded mailbox is full (another node's: no credit left for it).
        """
        pid = self._resolve(dest)
        if pid.__class__ is RemoteName or pid.node != 0:
            if get_ident() != self._thread:  # another OS thread: in order, in the hub's
                self._node(pid)  # raises here when not distributed
                self.thread_bridge.submit(self._send_remote, sender, pid, msg)
                return
            self._send_remote(sender, pid, msg, True)
            return
        ctx = self._local(pid)
        if ctx is None:
            self.stats.drop(DROP_NOPROC)
        elif not ctx._mailbox.try_put((msg, sender)):
            raise MailboxFull(pid)

    def _send_remote(self, sender: Pid | None, dest: Pid | RemoteName, msg: Any, try_only: bool = False) -> None:
        """A message to another node: to one of its pids, or to ``(name, node)``; ``try_only``: as try_send."""
        if dest.__class__ is RemoteName:
            self._node(dest).route_send_named(sender, dest.name, dest.node, msg)
        elif try_only:
            if not self._node(dest).route_try_send(sender, dest, msg):  # type: ignore[arg-type]
                raise MailboxFull(dest)  # flow control: no credit left for that bounded mailbox
        else:
            self._node(dest).route_send(sender, dest, msg)  # type: ignore[arg-type]

    def _send_from_hub(self, dest: Any, msg: Any, sender: Pid | None) -> None:
        """Send from the hub (a timer firing): never waits, never raises; a drop is counted."""
        try:
            pid: Any = self._resolve(dest)
        except NotRegistered:
            self.stats.drop(DROP_UNREGISTERED)
            return
        except Exception:  # noqa: BLE001 - a via registry failed; the hub must not raise
            self.stats.drop(DROP_ROUTE_FAILED)
            log.exception("timer could not resolve %r", dest)
            return
        if pid.__class__ is not RemoteName and pid.node == 0:
            ctx = self._local(pid)
            if ctx is None:
                self.stats.drop(DROP_NOPROC)
            else:
                ctx._mailbox.put_signal((msg, sender))
        elif self._router is None:
            self.stats.drop(DROP_NOT_DISTRIBUTED)
        else:
            try:
                self._send_remote(sender, pid, msg)
            except Exception:  # noqa: BLE001 - the hub must not raise
                self.stats.drop(DROP_ROUTE_FAILED)
                log.exception("timer could not send to %s", pid)

    def _resolve(self, dest: Any) -> Pid:
        cls = dest.__class__
        if cls is Pid:
            pid: Pid = dest
            return pid
        if cls is ActorRef or isinstance(dest, ActorRef):
            ref_pid: Pid = dest.pid
            return ref_pid
        if cls is str:
            found = self._registry.whereis(dest)
            if found is None:
                raise NotRegistered(dest)
            return found
        if cls is tuple and len(dest) == 2:
            name, node = dest
            router = self._router
            if router is None or node == router.node_name:
                return self._resolve(name)
            if isinstance(node, str) and "@" not in node:  # no host: this node's (joerl.node.names)
                alive, _, host = router.node_name.partition("@")
                if node == alive:
                    return self._resolve(name)
                node = f"{node}@{host}" if host else node
            return RemoteName(name, node)  # type: ignore[return-value]  # resolved by that node
        if cls is tuple and len(dest) == 3 and dest[0] == "via":
            return via_resolve(dest)  # ("via", registry, name): the registry's whereis_name
        if isinstance(dest, Pid):
            return dest  # a subclass of Pid
        raise TypeError(f"cannot send to {dest!r}: expected a Pid, a name, (name, node) or an ActorRef")

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
            return self._node(pid).is_alive(pid)
        ctx = self._local(pid)
        return ctx is not None and ctx._state < EXITING

    def processes(self) -> list[Pid]:
        """The pids of all live processes, oldest first."""
        return [ctx.pid for ctx in self._procs.values()]

    def process_info(self, pid: Any) -> ProcessInfo | None:
        """What process ``pid`` (a Pid, ActorRef or name) is doing, or None if it is not alive.

        Erlang's ``process_info``: see :mod:`joerl.introspect` (and
        :func:`~joerl.introspect.processes_info` for every process at once).
        """
        return process_info(self, pid)

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

    # -- calls (the machinery under GenServer) ---------------------------------

    def call(self, server: Any, request: Any, timeout: float | None = 5.0, *, caller: Pid | None = None) -> Any:
        """Send ``request`` to a GenServer and wait for its reply.

        Works from an actor or from plain code. The server is monitored for
        the duration of the call, so a dead server fails the call at once; a
        reply that comes after the timeout is dropped, never queued. The
        timeout bounds the whole call, the wait for room in the server's full
        bounded mailbox included: a request that found no room in time is
        never queued.

        Args:
            server: the server: a Pid, name, ``(name, node)``, ActorRef or via name.
            request: what its ``handle_call`` gets.
            timeout: seconds to wait for the reply; None waits forever.
            caller: the calling process, when it is not the calling greenlet's.

        Returns:
            What the server's ``handle_call`` replied.

        Raises:
            CallTimeout: no reply within ``timeout`` seconds.
            CallError: the server was dead or died during the call
                (``"noproc"``, its exit reason), or is the calling process
                itself (``"calling_self"``, whether named by ``caller`` or
                found by the greenlet that calls).
        """
        if get_ident() != self._thread:  # another OS thread: it blocks, the call runs here
            return self.thread_bridge.call(server, self.call, request, timeout)
        try:
            pid = self._resolve(server)
        except NotRegistered:
            raise CallError(server, NOPROC) from None
        if caller is not None and pid == caller:
            raise CallError(server, "calling_self")
        if pid.__class__ is RemoteName or pid.node != 0:
            return (self._router or self._node(pid)).call(pid, request, timeout, caller)
        tctx = self._local(pid)
        if tctx is None or tctx._state >= EXITING:
            raise CallError(server, NOPROC)
        if tctx._greenlet is getcurrent():
            raise CallError(server, "calling_self")
        # One ref both tags the request and monitors the server, as in OTP's
        # gen:call: the server's Down fails the call waiting under that ref.
        ref = self.make_ref()
        add_watcher(tctx, ref, self._call_target_down)
        try:
            msg = (CALL, _tuple_new(From, (caller or SYSTEM_PID, ref)), request)  # make_from(), inline
            if tctx._mailbox._maxsize is None:
                result = self._calls.request(ref, timeout, self.send, pid, msg, caller)
            else:
                result = self._call_bounded(tctx, ref, msg, timeout, caller)
        finally:
            remove_watcher(tctx, ref)
        if result is None:
            raise CallTimeout(server, timeout)  # type: ignore[arg-type]
        ok, value = result
        if ok:
            return value
        raise CallError(server, value)

    def _call_bounded(self, tctx: ActorContext, ref: Ref, msg: Any, timeout: float | None, caller: Pid | None) -> Any:
        """A call's request into a bounded mailbox and the wait for its answer, both within ``timeout``.

        Returns what :meth:`Pending.wait` does: the answer, or None when the
        time ran out (waiting for room or for the reply). A request that
        found no room in time is not queued.
        """
        calls = self._calls
        waiter = calls.add(ref)
        try:
            loop = self._hub.loop
            start = loop.now()
            mailbox = tctx._mailbox
            if not mailbox.put((msg, caller), timeout) and not mailbox.closed:
                return None  # no room in time (a closed mailbox: the server's Down answers)
            if timeout is not None:
                timeout = max(0.0, timeout - (loop.now() - start))
            return calls.wait(waiter, ref, timeout)
        finally:
            calls.discard(ref)

    def reply(self, from_: From, value: Any) -> None:
        """Answer a call: deliver ``value`` to the caller waiting on ``from_``.

        A reply to a call that has already ended (timed out) is dropped.
        """
        ref = from_[1]
        if ref.node != 0:
            if self._router is not None:
                self._router.route_reply(from_, value)
            return
        self._calls.resolve(ref, (True, value))

    def _call_target_down(self, ref: Ref, _pid: Pid, reason: Any) -> None:
        # The monitor callback of a local call: its server ended.
        self._calls.resolve(ref, (False, reason))
