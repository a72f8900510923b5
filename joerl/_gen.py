"""OTP's ``gen``: the call/cast protocol every behaviour shares, and the one pending-call table.

The wire shapes are OTP's: a call is ``(CALL, From(pid, ref), request)``, a
cast ``(CAST, request)``, an orderly stop ``(STOP, reason)``. The caller
waits under the call's ref in a :class:`Pending` table; the reply, the
server's ``Down`` or the timeout resolves it, whichever comes first, and
anything later is dropped. Local calls, remote calls, ``is_process_alive``
across nodes, remote spawn, supervisors and cluster-wide names all wait
through the same table.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from gevent import get_hub
from gevent.hub import Waiter

from .pid import Pid, Ref

#: The tag of a call: ``(CALL, From, request)``.
CALL = "$gen_call"
#: The tag of a cast: ``(CAST, request)``.
CAST = "$gen_cast"
#: The tag of an orderly stop request: ``(STOP, reason)``.
STOP = "$gen_stop"

_tuple_new = tuple.__new__


class From(NamedTuple):
    """Where a reply goes: the caller's pid and the call's ref.

    Plain data: a server may keep it, hand it to another process (on this
    node or another) and reply from there with ``gen_server.reply``.
    """

    pid: Pid
    ref: Ref


def make_from(pid: Pid, ref: Ref) -> From:
    """``From(pid, ref)`` without NamedTuple's Python-level ``__new__`` (the call hot path)."""
    return _tuple_new(From, (pid, ref))  # type: ignore[no-any-return, unused-ignore]


def as_call(msg: Any) -> Any:
    """A message as a server must see it: a call from another node arrives with
    its ``From`` as a plain ``(pid, ref)`` pair (the codec keeps no NamedTuple
    types); make it a ``From`` again. Anything else is returned unchanged."""
    if msg.__class__ is tuple and len(msg) == 3 and msg[0] == CALL:
        from_ = msg[1]
        if from_.__class__ is tuple and len(from_) == 2 and from_[0].__class__ is Pid and from_[1].__class__ is Ref:
            return (msg[0], make_from(from_[0], from_[1]), msg[2])
    return msg


def is_call(msg: Any) -> bool:
    """True for ``(CALL, From, request)``."""
    return msg.__class__ is tuple and len(msg) == 3 and msg[0] == CALL


class Pending:
    """Waiters by ref: one greenlet waits under each ref until it is resolved or times out.

    ``add(ref)`` before the request leaves (so that an answer can never come
    too early), ``wait(ref, timeout)`` to block, ``resolve(ref, value)`` from
    anywhere (the hub included) to wake it. A ref resolved before its
    ``wait`` starts (the request failed on the spot) keeps its value for that
    ``wait``. A ref resolved twice, or after its wait ended, is ignored: late
    answers are dropped, never queued.
    """

    __slots__ = ("_hub", "_waiters", "_early")

    def __init__(self) -> None:
        self._hub = get_hub()
        self._waiters: dict[Ref, Waiter] = {}
        self._early: dict[Ref, Waiter] = {}  # resolved before their wait started

    def __contains__(self, ref: object) -> bool:
        return ref in self._waiters

    def __len__(self) -> int:
        return len(self._waiters) + len(self._early)

    def refs(self) -> list[Ref]:
        """The refs waited on now (not yet resolved)."""
        return list(self._waiters)

    def add(self, ref: Ref) -> None:
        """Open a wait under ``ref`` (the waiting greenlet calls :meth:`wait` next)."""
        self._waiters[ref] = Waiter(self._hub)

    def wait(self, ref: Ref, timeout: float | None) -> Any:
        """Block until ``ref`` is resolved; its value, or None after ``timeout`` seconds.

        The wait under ``ref`` is closed when this returns, however it ends.

        Raises:
            KeyError: no wait was opened under ``ref``.
        """
        waiter = self._waiters.get(ref) or self._early.pop(ref, None)
        if waiter is None:
            raise KeyError(ref)
        timer = None
        try:
            if timeout is not None:
                timer = self._hub.loop.timer(timeout)
                timer.start(waiter.switch, None)
            return waiter.get()
        finally:
            if timer is not None:
                timer.close()
            self._waiters.pop(ref, None)

    def discard(self, ref: Ref) -> None:
        """Close the wait under ``ref`` without waking anyone (the waiter gave up)."""
        self._waiters.pop(ref, None)
        self._early.pop(ref, None)

    def resolve(self, ref: Ref, value: Any) -> bool:
        """Wake the greenlet waiting under ``ref`` with ``value``; False if none waits."""
        waiter = self._waiters.pop(ref, None)
        if waiter is None:
            return False
        self._early[ref] = waiter  # until its wait() takes it (at once, if it is parked)
        self._hub.loop.run_callback(self._wake, ref, waiter, value)
        return True

    def _wake(self, ref: Ref, waiter: Waiter, value: Any) -> None:
        self._early.pop(ref, None)
        waiter.switch(value)
