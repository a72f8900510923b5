"""asyncio beside joerl: await a call, send and cast from an asyncio loop in another thread.

An ASGI app (FastAPI, Starlette, ...) runs its asyncio loop in one OS thread
while a joerl node runs its gevent hub in another. From the asyncio side::

    from joerl import aio

    reply = await aio.call(system, "cache", ("get", key), timeout=2.0)
    aio.send(system, "audit", ("request", path))
    aio.cast(system, "stats", ("hit", path))

Nothing here blocks the asyncio loop: a call runs in a greenlet of the
system's thread (through the thread bridge, :mod:`joerl._threads`) and its
reply comes back to the loop with ``call_soon_threadsafe``; a send or cast
is queued for the system's thread and returns at once (the messages of one
thread keep their order). Use a system that is not monkey-patched into the
asyncio thread: asyncio's own loop must stay asyncio's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ._gen import CAST
from ._threads import CALL_GRACE
from .errors import CallTimeout, NotRegistered
from .system import ActorSystem

__all__ = ["call", "cast", "send"]


def _system_of(system: Any) -> ActorSystem:
    """The ActorSystem of ``system`` (an ActorSystem, or a node: its ``.system``)."""
    if isinstance(system, ActorSystem):
        return system
    inner = getattr(system, "system", None)
    if isinstance(inner, ActorSystem):
        return inner
    raise TypeError(f"expected an ActorSystem or a DistributedSystem, got {system!r}")


async def call(system: Any, server: Any, request: Any, timeout: float | None = 5.0) -> Any:
    """Call a GenServer from asyncio code and await its reply (``gen_server.call``'s semantics).

    Args:
        system: the ActorSystem (or DistributedSystem) the server is reached through.
        server: a GenServerRef, Pid, registered name or ``(name, node)``.
        request: passed to ``handle_call``.
        timeout: seconds; None waits as long as it takes.

    Returns:
        The server's reply.

    Raises:
        CallTimeout: no reply within ``timeout`` seconds (a late reply is dropped).
        CallError: the server is dead (``"noproc"``) or died during the call.
        TypeError: ``system`` is not a system.
    """
    actors = _system_of(system)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def done(ok: bool, value: Any) -> None:  # in the system's thread
        loop.call_soon_threadsafe(_settle, future, ok, value)

    actors.thread_bridge.start_call(server, actors.call, request, timeout, done)
    try:
        return await asyncio.wait_for(future, None if timeout is None else timeout + CALL_GRACE)
    except asyncio.TimeoutError:
        raise CallTimeout(server, timeout) from None  # type: ignore[arg-type]  # the system's thread never answered
    except CallTimeout:
        raise CallTimeout(server, timeout) from None  # type: ignore[arg-type]  # as the caller gave it


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # cancelled by the caller, or timed out
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def send(system: Any, dest: Any, msg: Any) -> None:
    """Send ``msg`` to ``dest`` from asyncio code; returns at once, never blocks the loop.

    The message is queued for the system's thread and sent from there, after
    the messages this thread sent before (a full bounded mailbox holds it, and
    those behind it, in the system's thread, not here).

    Args:
        system: the ActorSystem (or DistributedSystem).
        dest: a Pid, a registered name, ``(name, node)`` or an ActorRef.
        msg: the message.

    Raises:
        NotRegistered: ``dest`` is a local name nobody holds.
        TypeError: ``system`` is not a system.
    """
    actors = _system_of(system)
    if dest.__class__ is str and actors.whereis(dest) is None:
        raise NotRegistered(dest)
    actors.thread_bridge.submit(actors.send, dest, msg)


def cast(system: Any, server: Any, request: Any) -> None:
    """Cast ``request`` to a GenServer from asyncio code (``gen_server.cast``); returns at once.

    Like OTP's, a cast never fails: to a dead server it is dropped.

    Args:
        system: the ActorSystem (or DistributedSystem).
        server: a GenServerRef, Pid, registered name or ``(name, node)``.
        request: passed to ``handle_cast``.
    """
    actors = _system_of(system)
    actors.thread_bridge.submit(_cast, actors, server, request)


def _cast(system: ActorSystem, server: Any, request: Any) -> None:
    try:
        system.send(server, (CAST, request))
    except NotRegistered:
        pass
