"""Waiting for the operating system's stop signals: the run-until-signal idiom.

:func:`wait_for_signal` blocks the calling greenlet until SIGINT (Ctrl+C) or
SIGTERM (what ``kill``, systemd and container runtimes send) arrives, or until
an event is set. ``ActorSystem.serve_forever``, ``DistributedSystem.serve_forever``
and :func:`joerl.run` are built on it; this module owns only the waiting.

Signals reach gevent's hub through ``gevent.signal_handler``, which only the
main thread may install; the handlers keep the hub running while they wait
(a process with nothing else to do still waits for its signal) and are
removed on return, with Python's own handlers put back (Ctrl+C raises
``KeyboardInterrupt`` again afterwards, as before).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any

import gevent
from gevent.event import AsyncResult, Event

__all__ = ["STOP_SIGNALS", "Serving", "StopSignals", "signal_name", "wait_for_signal"]

log = logging.getLogger("joerl.actor")

#: The signals that stop a server by default: Ctrl+C and ``kill``'s default.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Handlers for the stop signals, installed at construction, removed by :meth:`close`.

    Installing them before a program starts its work means a signal that
    arrives early is kept for :meth:`wait` rather than killing the process
    (``joerl.run`` installs them before it calls ``main``).

    Args:
        signals: the signal numbers to catch (default SIGINT and SIGTERM).

    Raises:
        RuntimeError: not in the main thread (only the main thread receives signals).
        ValueError: ``signals`` is empty.
    """

    def __init__(self, signals: Iterable[int] = STOP_SIGNALS) -> None:
        wanted = [signal.Signals(s) for s in signals]
        if not wanted:
            raise ValueError("at least one signal is needed to stop on")
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "serve_forever and joerl.run must run in the main thread: only it receives signals"
                f" (called from {threading.current_thread().name!r})"
            )
        self._arrived: AsyncResult = AsyncResult()
        self._previous = {s: signal.getsignal(s) for s in wanted}
        self._handlers: list[Any] = []
        try:
            for s in wanted:
                handler = gevent.signal_handler(s, self._arrived.set, int(s))
                handler.ref = True  # the wait holds the hub open, as a server's socket would
                self._handlers.append(handler)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> StopSignals:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def arrived(self) -> int | None:
        """The signal that arrived, or None (yet)."""
        number: int | None = self._arrived.get(block=False) if self._arrived.ready() else None
        return number

    def wait(self, until: Event | None = None) -> int | None:
        """Block the calling greenlet until a signal arrives (at once if one has), or ``until`` is set.

        Returns:
            The signal's number, or None when ``until`` was set first.
        """
        relay = gevent.spawn(_relay, until, self._arrived) if until is not None else None
        try:
            number: int | None = self._arrived.get()
            return number
        finally:
            if relay is not None:
                relay.kill(block=False)

    def close(self) -> None:
        """Remove the handlers and put Python's own back (idempotent)."""
        for handler in self._handlers:
            handler.cancel()
        self._handlers = []
        for s, python_handler in self._previous.items():
            # libev leaves the default disposition behind; put Python's handler back.
            signal.signal(s, python_handler if python_handler is not None else signal.SIG_DFL)
        self._previous = {}


def wait_for_signal(signals: Iterable[int] | StopSignals = STOP_SIGNALS, *, until: Event | None = None) -> int | None:
    """Block the calling greenlet until one of ``signals`` arrives, or ``until`` is set.

    Args:
        signals: the signal numbers to wait for (default SIGINT and SIGTERM),
            or :class:`StopSignals` installed already (left installed).
        until: an event that ends the wait too (a system that was shut down
            by one of its processes, for example).

    Returns:
        The number of the signal that arrived, or None when ``until`` was set first.

    Raises:
        RuntimeError: called from a thread other than the main thread.
        ValueError: ``signals`` is empty.
    """
    if isinstance(signals, StopSignals):
        return signals.wait(until)
    with StopSignals(signals) as installed:
        return installed.wait(until)


def signal_name(number: int) -> str:
    """``"SIGTERM"`` for 15: a signal's name for logs."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _relay(until: Event, arrived: AsyncResult) -> None:
    until.wait()
    if not arrived.ready():
        arrived.set(None)


class Serving:
    """``ActorSystem.serve_forever``: the run-until-signal idiom (a mixin of ActorSystem)."""

    name: str
    _stopped: Event

    def shutdown(self, timeout: float = 5.0) -> None:
        raise NotImplementedError  # ActorSystem's

    def serve_forever(
        self,
        signals: Iterable[int] | StopSignals = STOP_SIGNALS,
        *,
        timeout: float = 5.0,
        on_stop: Callable[[], object] | None = None,
    ) -> int | None:
        """Run until Ctrl+C (SIGINT) or SIGTERM arrives, then shut down cleanly.

        The run-until-signal idiom for a program whose actors do the work:
        the calling greenlet waits (every process keeps running), and when a
        signal arrives, or a process shuts the system down, the system is shut
        down (:meth:`shutdown`) and the call returns. :func:`joerl.run` wraps
        it for ``sys.exit``.

        Args:
            signals: the signals that stop the system (default SIGINT and
                SIGTERM), or handlers installed already (``joerl.run`` installs
                them before its ``main`` runs, so that no early signal is lost).
            timeout: seconds the processes get to stop (see :meth:`shutdown`).
            on_stop: called once the wait is over, before the shutdown: stop
                what feeds the actors there (an HTTP server's accepting, for
                example), so that no request meets a stopped actor (when a
                process shut the system down, it runs after that shutdown).

        Returns:
            The signal number that arrived, or None if the system was shut down otherwise.

        Raises:
            RuntimeError: not called from the main thread (only it receives signals).

        Example::

            system = ActorSystem()
            system.spawn(Worker())
            system.serve_forever()  # until Ctrl+C or `kill`
        """
        number = wait_for_signal(signals, until=self._stopped)
        if number is not None:
            log.info("%s: received %s, shutting down", self.name, signal_name(number))
        try:
            if on_stop is not None:
                on_stop()
        finally:
            self.shutdown(timeout)
        return number
