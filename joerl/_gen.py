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

import itertools
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from time import monotonic as _monotonic
from typing import TYPE_CHECKING, Any, NamedTuple

from gevent import get_hub
from gevent.event import AsyncResult
from gevent.hub import Waiter

from .errors import NameTaken, StartError
from .message import KILL
from .pid import Pid, Ref, make_ref

if TYPE_CHECKING:
    from .actor import ActorContext
    from .system import ActorSystem

#: The tag of a call: ``(CALL, From, request)``.
CALL = "$gen_call"
#: The tag of a cast: ``(CAST, request)``.
CAST = "$gen_cast"
#: The tag of an orderly stop request: ``(STOP, reason)``.
STOP = "$gen_stop"

_tuple_new = tuple.__new__
_NAN = float("nan")


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

    ``waiter = add(ref)`` before the request leaves (so that an answer can
    never come too early), ``wait(waiter, ref, timeout)`` to block, and
    ``resolve(ref, value)`` from anywhere (the hub included) to wake it; or
    :meth:`request`, all three in one call. A ref resolved before its wait
    starts (the request failed on the spot) keeps its value for that wait.
    A ref resolved twice, or after its wait ended, is ignored: late answers
    are dropped, never queued.

    A ref of this node (``node`` 0: every ref its ``make_ref`` makes, and
    those are unique by id; or, for a node's table, the same ref as peers
    name it, ``<node_id.id.creation>``) is kept under its id, an int, whose
    hash and comparison cost no Python call (Ref's do); any other ref under
    itself. :meth:`open` and :meth:`wait_id` wait by that id alone, for a
    caller that never needs the Ref object.

    The timeouts share one libev timer per table, armed at the earliest
    deadline of the waits in flight (a heap of ``(deadline, seq, key,
    waiter)``; an entry whose wait ended is skipped when it comes due). A new
    wait re-arms it only when its deadline is earlier; when it fires, the
    expired waits time out (their value None) and it is armed again for the
    earliest left; when no timed wait is left it is stopped. Deadlines are
    ``time.monotonic()``: a wait never times out before its ``timeout``.

    Args:
        node_id, creation: how peers name this node's refs (a node's table);
            0 for a table that sees only local refs.
    """

    __slots__ = (
        "_hub",
        "_loop",
        "_waiters",
        "_node",
        "_creation",
        "_due",
        "_seq",
        "_timed",
        "_timer",
        "_after",
        "_armed",
    )

    def __init__(self, node_id: int = 0, creation: int = 0) -> None:
        self._hub = get_hub()
        self._loop = self._hub.loop
        self._waiters: dict[Any, Waiter] = {}  # ref.id (a ref of this node) or ref -> its waiter
        self._node = node_id or -1  # (never a ref's node)
        self._creation = creation
        self._due: list[tuple[float, int, Any, Waiter]] = []  # the heap of deadlines (see the class docstring)
        self._seq = itertools.count().__next__  # (orders equal deadlines: keys need not compare)
        self._timed = 0  # timed waits in flight
        self._timer: Any = None  # the shared timer (kept while stopped: a wait of the same timeout restarts it)
        self._after = _NAN  # its delay (NaN: equal to no timeout)
        self._armed: float | None = None  # the deadline it is armed for; None: stopped

    def _key(self, ref: Ref) -> Any:
        node = ref.node
        return ref.id if not node or (node == self._node and ref.creation == self._creation) else ref

    def __contains__(self, ref: Any) -> bool:
        return self._key(ref) in self._waiters

    def __len__(self) -> int:
        return len(self._waiters)

    def refs(self) -> list[Ref]:
        """The refs waited on now (not yet resolved)."""
        return [key if key.__class__ is Ref else make_ref(0, key, 0) for key in self._waiters]

    def add(self, ref: Ref) -> Waiter:
        """Open a wait under ``ref``; pass what it returns to :meth:`wait`."""
        node = ref.node  # (_key, inline: this is every call's path)
        key = ref.id if not node or (node == self._node and ref.creation == self._creation) else ref
        waiter = self._waiters[key] = Waiter(self._hub)
        return waiter

    def open(self, ref_id: int) -> Waiter:
        """:meth:`add` for a ref of this node named by its id alone (no Ref made); then :meth:`wait_id`."""
        waiter = self._waiters[ref_id] = Waiter(self._hub)
        return waiter

    def wait(self, waiter: Waiter, ref: Ref, timeout: float | None) -> Any:
        """Block until ``ref`` is resolved; its value, or None after ``timeout`` seconds.

        The wait under ``ref`` is closed when this returns, however it ends.
        """
        node = ref.node  # (_key, inline: every call's path)
        key = ref.id if not node or (node == self._node and ref.creation == self._creation) else ref
        return self.wait_id(waiter, key, timeout)

    def wait_id(self, waiter: Waiter, key: Any, timeout: float | None) -> Any:
        """:meth:`wait` under ``key``: a ref's id (a ref of this node) or the ref."""
        if timeout is None:
            try:
                return waiter.get()  # a value resolved already is queued behind this get()
            finally:
                self._waiters.pop(key, None)
        self._timed += 1
        try:
            # The deadline, on the shared timer (see the class docstring).
            at = _monotonic() + timeout
            heappush(self._due, (at, self._seq(), key, waiter))
            armed = self._armed
            if armed is None and self._after == timeout:  # (the usual: the timer stopped, made for this timeout)
                self._armed = at
                self._timer.start(self._fire)
            elif armed is None or at < armed:
                self._arm(at, timeout, armed)
            return waiter.get()
        finally:
            self._waiters.pop(key, None)
            self._timed -= 1
            if not self._timed and self._armed is not None:  # no timed wait left: stop the timer
                self._armed = None
                self._timer.stop()
                self._due.clear()
            elif len(self._due) > 2 * self._timed + 64:  # (calls always in flight: the heap stays bounded)
                self._trim()

    def _trim(self) -> None:
        """Drop the heap's entries of ended waits (amortized: when they outnumber the live ones)."""
        waiters = self._waiters
        due = self._due
        due[:] = [entry for entry in due if waiters.get(entry[2]) is entry[3]]
        heapify(due)

    def _arm(self, at: float, timeout: float, armed: float | None) -> None:
        """(Re-)arm the shared timer for the deadline ``at``, ``timeout`` seconds from now."""
        timer = self._timer
        if timer is not None:
            if armed is not None:
                timer.stop()
            if self._after != timeout:  # (a libev timer's delay is fixed when it is made)
                timer.close()
                timer = None
        if timer is None:
            timer = self._timer = self._loop.timer(max(timeout, 0.0))
            self._after = timeout
        self._armed = at
        timer.start(self._fire)

    def _fire(self) -> None:
        """The shared timer fired (in the hub): time out the expired waits, re-arm for the earliest left."""
        self._armed = None
        now = _monotonic()
        due = self._due
        waiters = self._waiters
        run = self._loop.run_callback
        while due and due[0][0] <= now:
            _at, _seq, key, waiter = heappop(due)
            if waiters.get(key) is waiter:  # (else its wait ended: resolved, or closed)
                del waiters[key]  # (a late answer finds no waiter: dropped)
                run(waiter.switch, None)  # type: ignore[union-attr, unused-ignore]
        if len(due) > 2 * len(waiters) + 64:
            self._trim()
        if due:
            at = due[0][0]
            # (a new timer: this one is still in its callback)
            self._timer = self._loop.timer(max(at - now, 0.0))
            self._after = _NAN  # (a remainder: no wait's timeout)
            self._armed = at
            self._timer.start(self._fire)

    def request(
        self, ref: Ref, timeout: float | None, send: Callable[..., Any], dest: Any, msg: Any, sender: Pid | None
    ) -> Any:
        """Open a wait under ``ref``, ``send(dest, msg, sender=sender)``, and wait: a call in one call.

        The same as ``add(ref)``, the send, ``wait(...)``, with the wait
        closed however it ends (the send raising included).
        """
        waiter = Waiter(self._hub)
        waiters = self._waiters
        key = ref.id if not ref.node else self._key(ref)
        waiters[key] = waiter
        try:
            send(dest, msg, sender=sender)
        except BaseException:
            waiters.pop(key, None)
            raise
        return self.wait_id(waiter, key, timeout)

    def discard(self, ref: Ref) -> None:
        """Close the wait under ``ref`` without waking anyone (the waiter gave up)."""
        self._waiters.pop(self._key(ref), None)

    def discard_id(self, key: Any) -> None:
        """:meth:`discard` by key (see :meth:`wait_id`)."""
        self._waiters.pop(key, None)

    def resolve(self, ref: Ref, value: Any) -> bool:
        """Wake the greenlet waiting under ``ref`` with ``value``; False if none waits."""
        node = ref.node  # (_key, inline)
        key = ref.id if not node or (node == self._node and ref.creation == self._creation) else ref
        waiter = self._waiters.pop(key, None)
        if waiter is None:
            return False
        self._loop.run_callback(waiter.switch, value)
        return True

    def resolve_id(self, key: Any, value: Any) -> bool:
        """:meth:`resolve` by key (see :meth:`wait_id`)."""
        waiter = self._waiters.pop(key, None)
        if waiter is None:
            return False
        self._loop.run_callback(waiter.switch, value)
        return True


def start_and_wait(
    system: ActorSystem,
    parent: ActorContext | None,
    actor: Any,
    set_boot: Callable[[Any], None],
    args: Any,
    name: str | None,
    mailbox_size: int | None,
    timeout: float | None,
) -> Pid:
    """Start a behaviour's process and return once its ``init`` is done (OTP's ``gen:start``).

    ``set_boot((args, done, parent_pid))`` hands the behaviour what its
    process needs to run ``init``; the process sets ``done`` to None when
    ``init`` succeeded or to ``(reason,)`` when it failed. The process is
    monitored meanwhile, so a death before ``done`` fails the start too.

    Args:
        system: where to spawn.
        parent: link the process to this actor from the first moment (start_link).
        actor: the behaviour instance to run.
        set_boot: stores the boot tuple on ``actor`` (None clears it).
        args: passed to ``init``.
        name: register the process under this name before ``init`` runs.
        mailbox_size: bound its mailbox.
        timeout: seconds ``init`` may take; then the process is killed.

    Returns:
        The new process's pid.

    Raises:
        StartError: ``init`` failed (``reason``, chained when an exception),
            the name is taken (``("already_started", pid)``), the process died
            while starting, or ``init`` overran ``timeout`` (``"timeout"``). No
            process is left behind.
    """
    done = AsyncResult()
    set_boot((args, done, parent.pid if parent is not None else None))
    try:
        if parent is None:
            ref = system.spawn(actor, mailbox_size=mailbox_size, name=name)
        else:
            ref = parent.spawn_link(actor, mailbox_size=mailbox_size, name=name)
    except NameTaken as exc:
        set_boot(None)
        raise StartError(("already_started", exc.owner)) from exc
    except BaseException:
        set_boot(None)
        raise
    pid = ref.pid

    def on_down(_ref: Any, _pid: Pid, reason: Any) -> None:
        if not done.ready():
            done.set((reason,))

    mref = system.monitor_callback(pid, on_down)
    try:
        done.wait(timeout)
    finally:
        system.demonitor_callback(mref, pid)
    if not done.ready():
        if parent is not None:
            parent.unlink(pid)
        system.exit(pid, KILL)
        system.join(pid, 5.0)
        raise StartError("timeout")
    failed = done.value
    if failed is not None:
        reason = failed[0]
        if isinstance(reason, BaseException):
            raise StartError(reason) from reason
        raise StartError(reason)
    return pid
