"""A probe: a process whose mailbox plain test code reads, with deadlines.

Test code has no mailbox of its own. A :class:`Probe` lends it one: a process
on an :class:`~joerl.system.ActorSystem` (or on a node) that forwards every
message it receives to a queue the test reads with :meth:`Probe.receive`,
selectively and within a deadline, as Erlang's ``receive ... after``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gevent.event import Event
from gevent.queue import Empty, Queue

from ..actor import ActorContext, ActorRef
from ..pid import Pid
from ..system import ActorSystem

if TYPE_CHECKING:
    from ..node.node import DistributedSystem

#: What :meth:`Probe.receive` takes: None (any message), a type or a tuple of
#: types (``isinstance``), a str (a tuple whose first element is that tag), or
#: a predicate on the message.
Match = type | tuple[type, ...] | str | Callable[[Any], bool] | None

#: The default deadline of a probe's waits, in seconds.
DEFAULT_TIMEOUT = 5.0


def _matcher(match: Match) -> Callable[[Any], bool]:
    if match is None:
        return lambda msg: True
    if isinstance(match, str):
        tag = match
        return lambda msg: msg.__class__ is tuple and len(msg) > 0 and msg[0] == tag
    if isinstance(match, (type, tuple)):
        types = match
        return lambda msg: isinstance(msg, types)
    return match


class Probe:
    """A process whose messages (with their senders) a test reads.

    Link it, monitor with it, send to it, register it; then :meth:`receive`
    what arrived. :meth:`receive` is a selective receive: messages that do not
    match stay pending, in order, for later calls. Stop it with :meth:`stop`
    or use it as a context manager (the system's shutdown stops it too).

    Args:
        system: an :class:`~joerl.system.ActorSystem`, or a
            :class:`~joerl.node.node.DistributedSystem` to spawn it on that
            node's system (then :attr:`gpid` is how other nodes name it).
        trap_exit: trap exits: exit signals arrive as ``Exit`` messages (set
            before the constructor returns, so links made afterwards never kill it).
        name: register it under this name.
        timeout: the default deadline of :meth:`receive`, in seconds.

    Attributes:
        pid: its pid on ``system``.
        ref: its :class:`~joerl.actor.ActorRef`.
        ctx: its :class:`~joerl.actor.ActorContext`, to ``link``, ``monitor``
            or ``send`` as the probe (from the test's greenlet).

    Raises:
        AssertionError: the process did not start within ``timeout``.

    Example::

        probe = Probe(system, trap_exit=True)
        worker = system.spawn_link_fn(job, probe.pid)
        assert probe.receive(Exit, timeout=1.0).reason == "normal"
        probe.expect_nothing(0.05)
    """

    def __init__(
        self,
        system: ActorSystem | DistributedSystem,
        *,
        trap_exit: bool = False,
        name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.node: DistributedSystem | None = None if isinstance(system, ActorSystem) else system
        self.system: ActorSystem = system if isinstance(system, ActorSystem) else system.system
        self.timeout = timeout
        self._queue: Queue = Queue()
        self._stash: list[tuple[Any, Pid | None]] = []
        started = Event()
        contexts: list[ActorContext] = []

        def body(ctx: ActorContext) -> None:
            ctx.trap_exit(trap_exit)
            contexts.append(ctx)
            started.set()
            put = self._queue.put
            while True:
                msg = ctx.receive()
                put((msg, ctx.sender))

        self.ref: ActorRef = self.system.spawn_fn(body, name=name)
        self.pid: Pid = self.ref.pid
        if not started.wait(timeout):
            self.ref.stop("kill", timeout)
            raise AssertionError(f"probe {self.pid} did not start within {timeout}s")
        self.ctx: ActorContext = contexts[0]

    def __repr__(self) -> str:
        return f"<Probe {self.pid} pending={len(self.pending())}>"

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def gpid(self) -> Pid:
        """Its pid as other nodes name it (its :attr:`pid` if it runs on no node)."""
        if self.node is None:
            return self.pid
        gpid: Pid = Pid(self.node.node_id, self.pid.id, self.node.creation or 0)
        return gpid

    def receive(self, match: Match = None, *, timeout: float | None = None) -> Any:
        """The oldest message that matches, waiting for one.

        Args:
            match: None for any message; a type or a tuple of types; a str (a
                tuple tagged with it); or a predicate.
            timeout: seconds to wait (default: the constructor's).

        Returns:
            The message. Messages that did not match stay pending.

        Raises:
            AssertionError: nothing matched within ``timeout`` (the message
                lists what arrived meanwhile).

        Example::

            down = probe.receive(Down)                    # by type
            reply = probe.receive("reply", timeout=0.5)   # a tuple tagged "reply"
            big = probe.receive(lambda m: m > 100)        # by predicate
        """
        return self.receive_with_sender(match, timeout=timeout)[0]

    def receive_with_sender(self, match: Match = None, *, timeout: float | None = None) -> tuple[Any, Pid | None]:
        """As :meth:`receive`, but return ``(message, sender)`` (sender None: sent
        without one, e.g. from plain test code or by the runtime).

        Raises:
            AssertionError: nothing matched within ``timeout``.

        Example::

            msg, sender = probe.receive_with_sender("ping")
            system.send(sender, "pong")
        """
        fits = _matcher(match)
        for i, (msg, _sender) in enumerate(self._stash):
            if fits(msg):
                return self._stash.pop(i)
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg, sender = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except Empty:
                what = "" if match is None else f" matching {match!r}"
                raise AssertionError(
                    f"probe {self.pid}: no message{what} within {timeout}s; received meanwhile: {self.pending()!r}"
                ) from None
            if fits(msg):
                return msg, sender
            self._stash.append((msg, sender))

    def expect_nothing(self, timeout: float = 0.1, match: Match = None) -> None:
        """Check that no (matching) message is pending or arrives within ``timeout``.

        Args:
            timeout: seconds to watch (a window: prefer :meth:`sync` where the
                question is "did anything arrive before this point").
            match: watch for these messages only (see :meth:`receive`).

        Raises:
            AssertionError: one arrived (the message shows it and what else is pending).

        Example::

            system.cancel_timer(timer)
            probe.expect_nothing(0.2)
        """
        try:
            msg = self.receive(match, timeout=timeout)
        except AssertionError:
            return
        raise AssertionError(f"probe {self.pid}: expected no message, got {msg!r}; also pending: {self.pending()!r}")

    def sync(self, *, timeout: float | None = None) -> list[Any]:
        """Send the probe a marker and wait for it: whatever was sent to it
        before, from this greenlet or by the local runtime, has arrived.

        Returns:
            The messages pending (received and not taken), in order; they stay pending.

        Raises:
            AssertionError: the marker did not arrive within ``timeout`` (default: the constructor's).

        Example::

            system.exit(worker, "normal")   # a non-trapping process ignores it
            assert probe.sync() == []       # no Exit came before the marker
        """
        marker = _Marker()
        self.system.send(self.pid, marker)
        self.receive(lambda m: m is marker, timeout=timeout)
        return self.pending()

    def pending(self) -> list[Any]:
        """The messages received and not taken yet, oldest first (does not wait)."""
        return [m for m, _ in self._stash] + [m for m, _ in list(self._queue.queue)]

    def stop(self, reason: Any = "normal") -> None:
        """Stop the probe's process (if it still runs) within the probe's timeout.

        Args:
            reason: its exit reason (links and monitors see it).

        Raises:
            AssertionError: it did not end within the timeout.

        Example::

            with Probe(system) as probe:
                ...
            # stopped here
        """
        if self.ref.is_alive() and not self.ref.stop(reason, self.timeout):
            raise AssertionError(f"probe {self.pid} did not stop within {self.timeout}s")


class _Marker:
    """A message only :meth:`Probe.sync` sends (compared by identity)."""

    def __repr__(self) -> str:
        return "<sync marker>"
