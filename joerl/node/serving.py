"""``DistributedSystem.serve_forever``: the run-until-signal idiom for a node (a mixin of the node)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the node layer reaches the runtime through its system only (see joerl/_router.py)
    from ..system import ActorSystem, StopSignals

__all__ = ["Serving"]


class Serving:
    """What a node adds to its system's ``serve_forever``: its own shutdown afterwards."""

    system: ActorSystem

    def shutdown(self, timeout: float = 5.0) -> None:
        raise NotImplementedError  # DistributedSystem's

    def serve_forever(
        self,
        signals: Iterable[int] | StopSignals = (signal.SIGINT, signal.SIGTERM),
        *,
        timeout: float = 5.0,
        on_stop: Callable[[], object] | None = None,
    ) -> int | None:
        """Serve until SIGINT or SIGTERM (or until a process shuts the system down), then shut the node down.

        The run-until-signal idiom: the calling greenlet waits while the node
        serves its peers; then the node shuts down (its actors, links and port
        mapper registration: :meth:`~joerl.DistributedSystem.shutdown`) and
        the call returns. ``sys.exit(joerl.run(main, node))`` wraps it.

        Args:
            signals: the signals that stop the node (default SIGINT and SIGTERM),
                or handlers installed already (as ``joerl.run`` does).
            timeout: seconds the processes get to stop.
            on_stop: called once the wait is over, before the shutdown.

        Returns:
            The signal number that arrived, or None if the node was shut down otherwise.

        Raises:
            RuntimeError: not called from the main thread (only it receives signals).
        """
        number = self.system.serve_forever(signals, timeout=timeout, on_stop=on_stop)
        self.shutdown(timeout)
        return number
