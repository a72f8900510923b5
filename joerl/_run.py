"""``joerl.run``: run a program's actors until Ctrl+C or SIGTERM, for ``sys.exit``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ._serve import STOP_SIGNALS, StopSignals
from .system import ActorSystem

__all__ = ["run"]


class Servable(Protocol):
    """What :func:`run` serves: an :class:`~joerl.ActorSystem` or a :class:`~joerl.DistributedSystem`."""

    def serve_forever(
        self, signals: Iterable[int] | StopSignals = ..., *, timeout: float = ..., on_stop: Any = ...
    ) -> int | None: ...

    def shutdown(self, timeout: float = ...) -> None: ...


def run(
    main: Callable[[Any], Any],
    system: Servable | None = None,
    *,
    signals: Iterable[int] = STOP_SIGNALS,
    timeout: float = 5.0,
) -> int:
    """Start a program with ``main(system)``, serve until a stop signal, shut down: exit status 0.

    The idiom for a long-running program: ``main`` spawns its actors and
    returns; ``run`` then waits in the main thread until Ctrl+C (SIGINT) or
    SIGTERM arrives, or until a process shuts the system down, shuts the
    system down cleanly (every actor stopped, a node's links closed and its
    port mapper registration removed) and returns 0 for ``sys.exit``.

    Args:
        main: called once with the system; it starts the program and
            returns None, or a function to call when the wait is over, before
            the system shuts down (stop an HTTP server there, so that no
            request meets a stopped actor).
        system: an :class:`~joerl.ActorSystem` or a
            :class:`~joerl.DistributedSystem`; default: a new ``ActorSystem()``.
        signals: the signals that stop the program (default SIGINT and SIGTERM).
        timeout: seconds the processes get to stop.

    Returns:
        0, the exit status of a clean shutdown.

    Raises:
        RuntimeError: not called from the main thread.
        Exception: whatever ``main`` raises, after the system was shut down.

    Example::

        import sys
        import joerl

        def main(system: joerl.ActorSystem) -> None:
            system.spawn(Worker())

        if __name__ == "__main__":
            sys.exit(joerl.run(main))
    """
    served: Servable = system if system is not None else ActorSystem()
    try:
        # Installed before main runs: a signal that arrives while it starts
        # the program waits for serve_forever instead of killing the process.
        with StopSignals(signals) as installed:
            on_stop = main(served)
            if on_stop is not None and not callable(on_stop):
                raise TypeError(f"main returned {on_stop!r}: return None, or a function to call before the shutdown")
            served.serve_forever(installed, timeout=timeout, on_stop=on_stop)
    finally:
        served.shutdown(timeout)
    return 0
