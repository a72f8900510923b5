"""Mailbox: a one-reader message queue with selective receive and an optional bound.

Items go in and come out as ``(message, sender)`` pairs. One greenlet (the
owning actor) reads; any greenlet, or the hub (timers), writes. A bounded
mailbox makes ``put`` wait cooperatively while full (backpressure);
``put_signal`` (exit and down signals, timer messages) never waits. When the
owner dies the mailbox is closed: blocked writers are released and later puts
are dropped, as messages to a dead Erlang process are.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from itertools import islice, repeat
from typing import Any

from gevent import get_hub, getcurrent, spawn_raw
from gevent.hub import Waiter

from ._threads import Outcome, get_ident, settle
from .errors import ReceiveTimeout

_TIMEOUT = object()
_WAKE = object()


# How the deque holds an item: a message without a sender (what plain code
# sends) is queued bare, sparing a tuple per message, unless it is itself
# exactly a tuple; anything else is queued as its ``(message, sender)`` tuple.
# So a queued object whose class is exactly ``tuple`` is a pair, and any other
# is a message whose sender is None. _queued() and _pair() are the definition;
# the hot paths that cannot afford a call (ActorSystem.send, Mailbox.deliver and
# deliver_all, the Actor loop in _process.py, ActorContext.receive) keep inline
# copies, each marked "queueing rule: inline copy", and
# tests/unit/test_queueing_rule.py checks every marked copy against the definition
# and that no unmarked copy exists.


def _queued(item: tuple[Any, Any]) -> Any:
    """What the deque holds for the pair ``item``."""
    msg = item[0]
    return msg if item[1] is None and msg.__class__ is not tuple else item


def _pair(queued: Any) -> tuple[Any, Any]:
    """The ``(message, sender)`` pair of a queued object."""
    return queued if queued.__class__ is tuple else (queued, None)


def _message(queued: Any) -> Any:
    """The message of a queued object."""
    return queued[0] if queued.__class__ is tuple else queued


class Mailbox:
    """A deque with a single waiting reader (the fastest one-reader primitive)."""

    __slots__ = ("_q", "_reader", "_maxsize", "maxsize", "_putters", "_hub", "_callback", "closed", "_timer", "_after")

    def __init__(self, maxsize: int | None = None) -> None:
        if maxsize is not None and maxsize < 1:
            raise ValueError(f"mailbox_size must be a positive int or None, got {maxsize!r}")
        self._q: deque[Any] = deque()  # see _queued()
        self._reader: Waiter | None = None
        self._maxsize = maxsize
        #: The bound (``mailbox_size``), or None; a plain attribute: read per message.
        self.maxsize = maxsize
        self._putters: deque[Waiter] | None = None
        self._hub = get_hub()
        self._callback = self._hub.loop.run_callback
        self.closed = False
        self._timer: Any = None  # the reader's timed waits' libev timer, kept stopped between them
        self._after: float | None = None  # its delay

    def __len__(self) -> int:
        return len(self._q)

    def full(self) -> bool:
        return self._maxsize is not None and len(self._q) >= self._maxsize

    @property
    def waiting_writers(self) -> int:
        """How many writers (and :meth:`on_room` hooks) wait for room in this full mailbox (read-only)."""
        return len(self._putters) if self._putters else 0

    # -- writers ---------------------------------------------------------------

    def put(self, item: tuple[Any, Any], timeout: float | None = None) -> bool:
        """Append ``item``; wait while a bounded mailbox is full (never in the hub).

        Args:
            item: the ``(message, sender)`` pair.
            timeout: seconds to wait for room at most; None waits as long as it takes.

        Returns:
            True if the item was queued; False if no room came within
            ``timeout`` or the mailbox is closed (then it is not queued).
        """
        if self._maxsize is not None and len(self._q) >= self._maxsize:
            if get_ident() != self._hub.thread_ident:
                return self._put_from_thread(item, timeout)
            if getcurrent() is not self._hub and not self._wait_for_room(timeout):
                return False
        if self.closed:
            return False
        self.put_signal(item)
        return True

    def deliver(self, msg: Any, sender: Any) -> None:
        """``put((msg, sender))`` in one call: the node layer's per-message path."""
        if self._maxsize is None and not self.closed:
            # queueing rule: inline copy of _queued()
            self._q.append(msg if sender is None and msg.__class__ is not tuple else (msg, sender))
            if self._reader is not None:
                self._wake_reader()
        else:
            self.put((msg, sender))

    def deliver_all(self, msgs: tuple[Any, ...], sender: Any) -> None:
        """``deliver(msg, sender)`` for each of ``msgs``, in order."""
        if self._maxsize is None and not self.closed:
            # queueing rule: inline copy of _queued() (always pairs: a pair is always a valid form)
            if len(msgs) == 1:  # (a read of one message, a round trip's: zip and repeat cost ~2.4k instructions)
                self._q.append((msgs[0], sender))
            else:
                self._q.extend(zip(msgs, repeat(sender)))
            if self._reader is not None:
                self._wake_reader()
        else:
            for m in msgs:
                self.put((m, sender))

    def try_put(self, item: tuple[Any, Any]) -> bool:
        """Append ``item`` unless the mailbox is full; False when full."""
        if self._maxsize is not None and len(self._q) >= self._maxsize:
            return False
        self.put_signal(item)
        return True

    def put_signal(self, item: tuple[Any, Any]) -> None:
        """Append ``item`` regardless of the bound (signals are never held back)."""
        if self.closed:
            return
        self._q.append(_queued(item))
        if self._reader is not None:
            self._wake_reader()

    def _wake_reader(self) -> None:
        """Wake the parked reader, through the hub (``Waiter.switch`` may only run there).

        Writers call this after appending, when ``_reader`` is set. Each park
        uses a fresh Waiter and clears ``_reader`` when it ends, so a wake-up
        that comes late lands on a Waiter nobody waits on: it never reaches a
        reader that is blocked on something else.
        """
        reader = self._reader
        if get_ident() != self._hub.thread_ident:
            # Another OS thread: only the hub's thread may touch the reader.
            self._hub.loop.run_callback_threadsafe(self._wake_from_thread, reader)
            return
        self._reader = None
        self._callback(reader.switch, _WAKE)  # type: ignore[union-attr]

    def _wake_from_thread(self, reader: Waiter | None) -> None:
        # In the hub: wake ``reader`` unless it woke already (then it saw the message).
        current = self._reader
        if current is not None and current is reader:
            self._reader = None
            current.switch(_WAKE)  # type: ignore[union-attr]

    def _put_from_thread(self, item: tuple[Any, Any], timeout: float | None) -> bool:
        # put() from another OS thread into a full mailbox: a greenlet of the hub's
        # thread waits for room; this thread blocks until it is done.
        outcome = Outcome()
        self._hub.loop.run_callback_threadsafe(spawn_raw, settle, outcome, self.put, (item, timeout))
        outcome.wait(None)  # the put ends by itself: queued, timed out, or closed
        if not outcome.ok:
            raise outcome.value
        return bool(outcome.value)

    def _wait_for_room(self, timeout: float | None = None) -> bool:
        """Wait until there is room or the mailbox closes; False if ``timeout`` seconds passed first."""
        loop = self._hub.loop
        deadline = None if timeout is None else loop.now() + timeout
        while not self.closed and self._maxsize is not None and len(self._q) >= self._maxsize:
            timer = None
            if deadline is not None:
                remaining = deadline - loop.now()
                if remaining <= 0:
                    return False
            waiter = Waiter(self._hub)
            if self._putters is None:
                self._putters = deque()
            self._putters.append(waiter)
            try:
                if deadline is not None:
                    timer = loop.timer(remaining)
                    timer.start(waiter.switch, _TIMEOUT)
                if waiter.get() is _TIMEOUT:
                    return False
            finally:
                if timer is not None:
                    timer.close()
                try:
                    self._putters.remove(waiter)
                except ValueError:
                    # We were woken for a free slot; if we leave without taking
                    # it (killed), pass the wake-up on to the next writer.
                    if not self.closed and not self.full():
                        self._release_putter()
        return True

    def _release_putter(self) -> None:
        putters = self._putters
        if putters:
            self._callback(putters.popleft().switch, _WAKE)

    def on_room(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` once, from the hub, when a slot frees or the mailbox closes.

        The hook takes its turn among the blocked writers (first come, first
        served): a node's flow control waits for room this way, without a
        greenlet. The hook runs in the hub: it must not block.

        An unbounded mailbox always has room: the hook runs at the hub's next
        turn (its reader never looks for waiting writers).

        Args:
            hook: called with no arguments; it may register itself again.
        """
        if self._maxsize is None:
            self._callback(hook)
            return
        if self._putters is None:
            self._putters = deque()
        self._putters.append(_RoomHook(hook))

    def close(self) -> None:
        """Drop what is queued and release every blocked writer."""
        self.closed = True
        self._q.clear()
        putters = self._putters
        while putters:
            self._callback(putters.popleft().switch, _WAKE)

    # -- the reader ------------------------------------------------------------

    def get(self, timeout: float | None = None) -> tuple[Any, Any]:
        """Take the oldest item, waiting for one (raises ReceiveTimeout)."""
        q = self._q
        while not q:
            self._wait(timeout)
        queued = q.popleft()
        if self._putters:
            self._release_putter()
        return _pair(queued)

    def receive(self, match: Callable[[Any], bool] | None, timeout: float | None = None) -> tuple[Any, Any]:
        """Take the oldest item whose message satisfies ``match``.

        Items that don't match stay where they are, in order. ``timeout=0``
        looks at what is queued without waiting.

        Raises:
            ReceiveTimeout: nothing matched within ``timeout`` seconds.
        """
        if match is None:
            if timeout == 0 and not self._q:
                raise ReceiveTimeout(0)
            return self.get(timeout)
        q = self._q
        scanned = 0
        deadline = None
        if timeout is not None:
            deadline = self._hub.loop.now() + timeout
        while True:
            n = len(q)
            for i in range(scanned, n):
                queued = q[i]
                if match(_message(queued)):
                    del q[i]
                    if self._putters:
                        self._release_putter()
                    return _pair(queued)
            scanned = n
            if deadline is None:
                self._wait(None, scanned)
            else:
                remaining = deadline - self._hub.loop.now()
                if remaining <= 0:
                    raise ReceiveTimeout(timeout)  # type: ignore[arg-type]
                try:
                    self._wait(remaining, scanned)
                except ReceiveTimeout:
                    raise ReceiveTimeout(timeout) from None  # type: ignore[arg-type]

    def _wait(self, timeout: float | None, seen: int = 0) -> None:
        # Park until a writer wakes us (or ``timeout``). ``seen``: how many items
        # the reader has looked at; a writer of another OS thread may have
        # appended after that look, without waking us (``_reader`` was not set
        # yet): look again once ``_reader`` is set, or that item would wait for the next.
        waiter = Waiter(self._hub)
        self._reader = waiter
        if len(self._q) > seen:
            self._reader = None
            return
        if timeout is None:
            try:
                waiter.get()
            finally:
                self._reader = None
            return
        if timeout <= 0:
            self._reader = None
            raise ReceiveTimeout(timeout)
        # One timer per mailbox, stopped (not closed) as each wait ends: a wait
        # of the same timeout as the last (a receive loop's) restarts it, as a
        # new timer would start (from the loop's time), without making one.
        timer = self._timer
        if timer is None or self._after != timeout:
            if timer is not None:
                timer.close()
            timer = self._timer = self._hub.loop.timer(timeout)
            self._after = timeout
        timer.start(waiter.switch, _TIMEOUT)
        try:
            result = waiter.get()
        finally:
            timer.stop()
            self._reader = None
        if result is _TIMEOUT and not self._q:
            raise ReceiveTimeout(timeout)

    def remove_if(self, pred: Callable[[Any], bool]) -> int:
        """Remove every queued message satisfying ``pred``; return how many."""
        keep = [queued for queued in self._q if not pred(_message(queued))]
        removed = len(self._q) - len(keep)
        if removed:
            self._q.clear()
            self._q.extend(keep)
        return removed

    def messages(self, limit: int | None = None) -> list[Any]:
        """A snapshot of the queued messages, the first ``limit`` of them (None: all), for debugging and tests."""
        return [_message(queued) for queued in (self._q if limit is None else islice(self._q, max(0, limit)))]


class _RoomHook:
    """A :meth:`Mailbox.on_room` hook, waiting among the blocked writers (it quacks like their Waiter)."""

    __slots__ = ("hook",)

    def __init__(self, hook: Callable[[], None]) -> None:
        self.hook = hook

    def switch(self, value: Any) -> None:
        self.hook()


#: What a LimitedMailbox without a bound holds as its ``_maxsize``: never
#: reached, it turns the unbounded hot paths (which test ``_maxsize is None``) to ``put``.
_UNBOUNDED = 1 << 62


class LimitedMailbox(Mailbox):
    """A mailbox whose owner is killed once it holds more than ``limit`` messages (``max_mailbox``).

    Like Erlang's ``max_heap_size`` process flag: past the limit,
    ``on_overflow()`` runs once (the runtime kills the process with reason
    ``("max_mailbox", limit)``). Only mailboxes with a limit are of this
    class, so the plain :class:`Mailbox` hot paths pay nothing for it.

    Args:
        maxsize: the bound (``mailbox_size``), or None.
        limit: the most messages it may hold (a positive int).
        on_overflow: called once, by whoever queued the message past the limit.

    Raises:
        ValueError: ``limit`` or ``maxsize`` is not a positive int.
    """

    __slots__ = ("limit", "_bound", "_on_overflow", "_tripped")

    def __init__(self, maxsize: int | None, limit: int, on_overflow: Callable[[], None]) -> None:
        if type(limit) is not int or limit < 1:
            raise ValueError(f"max_mailbox must be a positive int or None, got {limit!r}")
        super().__init__(maxsize)
        self.limit = limit
        self._bound = maxsize
        self._on_overflow = on_overflow
        self._tripped = False
        if maxsize is None:
            self._maxsize = _UNBOUNDED

    def full(self) -> bool:
        return self._bound is not None and len(self._q) >= self._bound

    def put_signal(self, item: tuple[Any, Any]) -> None:
        """Append ``item`` regardless of the bound; past the limit, ``on_overflow()`` runs once."""
        super().put_signal(item)
        if len(self._q) > self.limit and not self._tripped and not self.closed:
            self._tripped = True
            self._on_overflow()
