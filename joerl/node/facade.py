"""The ``ActorSystem`` calls a node offers for convenience (a mixin of the node).

Each one is its system's call: ``node.spawn(...)`` is ``node.system.spawn(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the node layer reaches the runtime through its system only (see joerl/_router.py)
    from ..actor import ActorRef
    from ..pid import Pid
    from ..system import ActorSystem

__all__ = ["SystemFacade"]


class SystemFacade:
    """Spawn, register, look up and call through the node's :class:`~joerl.ActorSystem`."""

    system: ActorSystem

    def spawn(self, actor: Any, **kw: Any) -> ActorRef:
        """Start ``actor`` (an :class:`~joerl.Actor`) on this node: :meth:`joerl.ActorSystem.spawn`.

        Returns:
            its :class:`~joerl.ActorRef`; ``ref.pid`` is what other nodes send to.
        """
        return self.system.spawn(actor, **kw)

    def spawn_fn(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> ActorRef:
        """Start ``fn(ctx, *args)`` as a process on this node: :meth:`joerl.ActorSystem.spawn_fn`."""
        return self.system.spawn_fn(fn, *args, **kw)

    def register(self, name: str, pid: Any) -> None:
        """Register ``pid`` as ``name`` on this node, so that other nodes reach it as
        ``(name, node_name)``: :meth:`joerl.ActorSystem.register`.

        Raises:
            AlreadyRegistered: the name is taken (or the process has a name).
        """
        self.system.register(name, pid)

    def whereis(self, name: str) -> Pid | None:
        """The pid registered as ``name`` on this node, or None: :meth:`joerl.ActorSystem.whereis`."""
        return self.system.whereis(name)

    def call(self, server: Any, request: Any, timeout: float | None = 5.0) -> Any:
        """A GenServer call from plain code, local or remote: :meth:`joerl.ActorSystem.call`.

        Raises:
            CallTimeout: no reply within ``timeout`` seconds.
            CallError: the server died or its node went down before replying.
        """
        return self.system.call(server, request, timeout)
