"""The thread bridge: how other OS threads reach an actor system that lives in one.

An :class:`~joerl.system.ActorSystem` and its node live in the thread that
runs their gevent hub. Code in other OS threads (a thread-pool worker, a WSGI
server thread, a library callback, an asyncio loop) must not touch the hub's
structures that are not thread-safe (timers, watchers, sockets, waiters), so
what it asks for travels as a *job*: appended to a deque (atomic in CPython)
and run in the hub's thread, woken through gevent's thread-safe loop wake-up
(``loop.run_callback_threadsafe``, an ``async`` watcher). One greenlet drains
the jobs in order, so the messages of one thread keep their order; a call runs
in a greenlet of its own and the thread waits on a real (never monkey-patched)
lock, with the call's timeout, so it blocks that thread only.

What needs no job: a send to a local, unbounded mailbox is an append (atomic)
plus, when the reader is parked, a wake-up that :class:`~joerl.mailbox.Mailbox`
sends through the same thread-safe loop wake-up.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from gevent import monkey, spawn_raw

from .errors import CallTimeout

__all__ = ["Outcome", "ThreadBridge", "get_ident", "settle"]

log = logging.getLogger("joerl.threads")

#: The OS thread's id, never gevent's patched (per-greenlet) one.
get_ident: Callable[[], int] = monkey.get_original("_thread", "get_ident")
_allocate_lock: Callable[[], Any] = monkey.get_original("_thread", "allocate_lock")

#: How much longer than a call's timeout a thread waits before it gives up on
#: the hub's answer (the hub's own timeout normally answers first; this only
#: matters when the hub's thread is not running its loop at all).
CALL_GRACE = 0.5


class Outcome:
    """A result a thread waits for: set once in the hub's thread, read in another.

    ``on_done(ok, value)``, if given, runs in the hub's thread when it is set
    (the asyncio bridge hands the result to its loop from there).
    """

    __slots__ = ("_lock", "ok", "value", "_on_done")

    def __init__(self, on_done: Callable[[bool, Any], None] | None = None) -> None:
        self._lock = _allocate_lock()
        self._lock.acquire()
        self.ok = False
        self.value: Any = None
        self._on_done = on_done

    def set(self, ok: bool, value: Any) -> None:
        """Record the result and release the waiting thread (the hub's thread calls this)."""
        self.ok = ok
        self.value = value
        self._lock.release()
        if self._on_done is not None:
            self._on_done(ok, value)

    def wait(self, timeout: float | None) -> bool:
        """Block this OS thread until the result is set; False after ``timeout`` seconds."""
        got: bool = self._lock.acquire(True, -1 if timeout is None else max(timeout, 0.0))
        return got


class ThreadBridge:
    """Runs jobs from other OS threads in the thread of ``hub``, in order.

    Args:
        hub: the gevent hub of the system's thread.
    """

    __slots__ = ("_loop", "thread_ident", "_jobs", "_scheduled", "_draining")

    def __init__(self, hub: Any) -> None:
        self._loop = hub.loop
        #: The id of the OS thread the hub runs in.
        self.thread_ident: int = hub.thread_ident
        self._jobs: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._scheduled = False  # a wake-up is on its way (a hint; any thread writes it)
        self._draining = False  # the drain greenlet runs (only the hub's thread writes it)

    def foreign(self) -> bool:
        """True when the caller runs in another OS thread than the hub's."""
        return get_ident() != self.thread_ident

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in a greenlet of the hub's thread, after the jobs submitted before.

        Safe from any thread. An exception ``fn`` raises is logged (nobody
        waits for it); a job that blocks holds back the jobs behind it.
        """
        self._jobs.append((fn, args))
        if not self._scheduled:
            self._scheduled = True
            self._loop.run_callback_threadsafe(self._wake)

    def _wake(self) -> None:
        # In the hub (a loop callback): start the drain unless it runs already.
        if not self._draining:
            self._draining = True
            spawn_raw(self._drain)

    def _drain(self) -> None:
        jobs = self._jobs
        try:
            while True:
                while jobs:
                    fn, args = jobs.popleft()
                    try:
                        fn(*args)
                    except Exception:  # noqa: BLE001 - nobody waits for a job's result
                        log.exception("a job from another thread failed: %r", fn)
                # Clear the hint before the last look: a thread that saw it set
                # appended before this look; one that sees it clear wakes us again.
                self._scheduled = False
                if not jobs:
                    return
        finally:
            self._draining = False

    def start(self, fn: Callable[..., Any], args: tuple[Any, ...], outcome: Outcome) -> None:
        """Run ``fn(*args)`` in a new greenlet of the hub's thread; its result or exception sets ``outcome``.

        Safe from any thread; the greenlet starts after the jobs submitted before.
        """
        self.submit(spawn_raw, settle, outcome, fn, args)

    def start_call(
        self,
        server: Any,
        fn: Callable[..., Any],
        request: Any,
        timeout: float | None,
        on_done: Callable[[bool, Any], None] | None = None,
    ) -> Outcome:
        """Start ``fn(server, request, timeout)`` (a call) for this thread, without waiting.

        Safe from any thread. The call runs in a greenlet of the hub's thread
        with the time that is left of ``timeout`` when it starts.

        Args:
            server: the server, as the call takes it.
            fn: the call (``ActorSystem.call``).
            request: the request.
            timeout: seconds, from now; None: no limit.
            on_done: run in the hub's thread with ``(True, reply)`` or
                ``(False, exception)`` when the call ends.

        Returns:
            The outcome to wait on.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        outcome = Outcome(on_done)
        self.start(_call_until, (fn, server, request, deadline), outcome)
        return outcome

    def call(self, server: Any, fn: Callable[..., Any], request: Any, timeout: float | None) -> Any:
        """``fn(server, request, timeout)`` (a call) run for this thread, which blocks until it ends.

        The call runs in a greenlet of the hub's thread with the time that is
        left of ``timeout`` when it starts, so its timeout, ``CallError`` and
        late replies behave as for a call made there.

        Raises:
            CallTimeout: no answer within ``timeout`` seconds (with a grace of
                :data:`CALL_GRACE` when the hub's thread does not answer at all).
            Exception: whatever the call raised (``CallError``, ``NotRegistered``, ...).
        """
        outcome = self.start_call(server, fn, request, timeout)
        if not outcome.wait(None if timeout is None else timeout + CALL_GRACE):
            raise CallTimeout(server, timeout)  # type: ignore[arg-type]
        if outcome.ok:
            return outcome.value
        if isinstance(outcome.value, CallTimeout):
            raise CallTimeout(server, timeout) from None  # type: ignore[arg-type]  # the caller's timeout
        raise outcome.value


def settle(outcome: Outcome, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Run ``fn(*args)`` and set ``outcome`` with its result or exception.

    The body of a greenlet started in the hub's thread for another thread.
    """
    try:
        value = fn(*args)
    except BaseException as exc:  # noqa: BLE001 - the waiting thread re-raises it
        outcome.set(False, exc)
        if not isinstance(exc, Exception):
            raise
    else:
        outcome.set(True, value)


def _call_until(fn: Callable[..., Any], server: Any, request: Any, deadline: float | None) -> Any:
    timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
    return fn(server, request, timeout)
