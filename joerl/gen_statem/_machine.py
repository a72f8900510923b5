"""GenStatem: the state machine behaviour's callbacks and its event loop.

The loop, per OTP's "state transition": an event is handed to the state
callback; its result's actions are taken in order (replies sent at once,
postpone and inserted events noted, timeouts collected); on a state change
the postponed events are queued again (oldest first), the state timeout is
cancelled and the state enter call runs (if ``state_enter``); inserted events
go to the front of the queue, in order; then the collected timeouts start.
The next event is the queue's head, else a live time-zero timeout, else the
next message of the mailbox. Any event cancels the event timeout.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, NoReturn

from gevent import getcurrent
from gevent.event import AsyncResult

from .. import sys_calls
from .._gen import CALL as _CALL_TAG
from .._gen import CAST as _CAST_TAG
from .._gen import STOP as _STOP_TAG
from .._gen import From
from .._traced import Traced
from .._traced import handle_call as handle_traced_call
from ..actor import Actor, ActorContext, StopActor
from ..message import Exit
from ..pid import Pid
from ..sys_calls import SYSTEM as _SYSTEM
from ..timer import TimerRef
from . import _diagram
from ._actions import ENTER_CALL, EVENT, INIT, start_timeouts, take
from ._timeouts import Fired, Timeouts
from ._types import (
    ACTION_TYPES,
    CALL,
    ENTER,
    EVENT_TIMEOUT,
    HANDLE_EVENT_FUNCTION,
    STATE_FUNCTIONS,
    STATE_TIMEOUT,
    KeepState,
    NextState,
    RepeatState,
    Reply,
    Stop,
    StopAndReply,
    TransitionError,
)
from ._types import KEEP as KEEP

log = logging.getLogger("joerl.gen_statem")


class GenStatem(Actor):
    """Base class of a state machine (OTP's ``gen_statem``). Override the callbacks.

    Class attributes:
        callback_mode: ``"state_functions"`` (default): the state is a str and
            each event goes to the method of that name,
            ``state(event_type, event_content, data)``. ``"handle_event_function"``:
            the state may be any value and every event goes to
            ``handle_event(event_type, event_content, state, data)``.
        state_enter: True to get a state enter call, ``event_type == "enter"``
            with the old state as content, after each state change (and
            ``RepeatState``), and once for the initial state (old state = itself).
        transitions: optional ``{(state, event_label): next_state or [states]}``;
            then every state change must be declared (else the machine crashes
            with :class:`TransitionError`) and :meth:`to_mermaid` draws them.
        initial_state: optional; the start of the diagram, and the state the
            default ``init`` starts in.
        check_transitions: set False to draw ``transitions`` without enforcing them.

    Callbacks run in the machine's greenlet; ``self.ctx`` is its ActorContext
    from ``init`` on. Start a machine with :func:`~joerl.gen_statem.start` or
    :func:`~joerl.gen_statem.start_link`; one instance runs one process at a time.
    """

    callback_mode: ClassVar[str] = STATE_FUNCTIONS
    state_enter: ClassVar[bool] = False
    transitions: ClassVar[Any] = None
    initial_state: ClassVar[Any] = None
    check_transitions: ClassVar[bool] = True

    #: The machine's context; set as its process starts (None before).
    ctx: ActorContext = None  # type: ignore[assignment]

    # Class-level defaults, so a subclass __init__ need not call super().
    _gen_statem_boot: tuple[Any, AsyncResult | None, Pid | None] | None = None
    _gen_statem_greenlet: Any = None
    __running = False
    __state: Any = None
    __data: Any = None
    __parent: Pid | None = None

    # -- callbacks (run in the machine's greenlet) ------------------------------

    def init(self, args: Any) -> Any:
        """Return ``(state, data)`` or ``(state, data, actions)``.

        Raise, or return ``Stop(reason)``, to fail the start with StartError.
        The default starts in :attr:`initial_state` with ``args`` as the data.
        """
        if self.initial_state is None:
            raise NotImplementedError(f"{type(self).__name__} must define init(args) or initial_state")
        return (self.initial_state, args)

    def handle_event(self, event_type: Any, event_content: Any, state: Any, data: Any) -> Any:
        """The one callback of ``callback_mode = "handle_event_function"``.

        Returns:
            NextState, KeepState, RepeatState, Stop or StopAndReply.
        """
        raise NotImplementedError(f"{type(self).__name__} must define handle_event (handle_event_function mode)")

    def terminate(self, reason: Any, state: Any, data: Any) -> None:
        """Runs as the machine ends (stopped, crashed, shut down; not when killed)."""

    # -- helpers ---------------------------------------------------------------

    def reply(self, from_: From, value: Any) -> None:
        """Answer a call now, from any greenlet (the ``Reply`` action does it as
        a transition is taken)."""
        self.ctx.system.reply(from_, value)

    def send_after(self, delay: float, msg: Any) -> TimerRef:
        """Send ``msg`` to this machine (an ``"info"`` event) after ``delay`` seconds."""
        return self.ctx.send_after(delay, self.ctx.pid, msg)

    def running_timeouts(self) -> list[Any]:
        """The event types of the timeouts running now (``"timeout"``,
        ``"state_timeout"``, ``("timeout", name)``), oldest first."""
        return self.__timeouts.kinds()

    @property
    def dropped_timeouts(self) -> int:
        """Timer messages dropped because their timeout was cancelled or
        restarted after its timer had already fired."""
        return self.__timeouts.stale

    @classmethod
    def to_mermaid(cls) -> str:
        """The declared :attr:`transitions` as a Mermaid ``stateDiagram-v2``.

        Raises:
            TypeError: ``transitions`` is missing or malformed.
        """
        if cls.transitions is None:
            raise TypeError(f"{cls.__name__} declares no transitions to draw")
        return _diagram.to_mermaid(cls.__name__, cls.transitions, cls.initial_state)

    @classmethod
    def declared_states(cls) -> list[Any]:
        """Every state of :attr:`transitions` (the initial one first), or []."""
        if cls.transitions is None:
            return [] if cls.initial_state is None else [cls.initial_state]
        return _diagram.states(cls.__name__, cls.transitions, cls.initial_state)

    # -- the Actor hooks --------------------------------------------------------

    def started(self, ctx: ActorContext) -> None:
        """Runs ``init`` and checks its result and actions, tells the starter, then
        runs the initial state enter call and the events ``init`` inserted."""
        self.ctx = ctx
        self._gen_statem_greenlet = getcurrent()
        boot, self._gen_statem_boot = self._gen_statem_boot, None
        args, done, parent = boot if boot is not None else (None, None, None)
        self.__parent = parent
        self.__reply = ctx.system.reply
        self.__queue: deque[tuple[Any, Any]] = deque()
        self.__postponed: list[tuple[Any, Any]] = []
        self.__handlers: dict[str, Callable[..., Any]] = {}
        self.__timeouts = Timeouts(lambda seconds, msg: ctx.send_after(seconds, ctx.pid, msg))
        self.__active = self.__timeouts.active  # the hot path's checks, without a call
        self.__zero = self.__timeouts.zero
        self.__handler: Callable[..., Any] = self.handle_event
        try:
            self.__allowed = self.__transition_table()
            self.__by_state = type(self).callback_mode == STATE_FUNCTIONS
            state, data, actions = self.__init_result(self.init(args))
            # init's actions are checked (and its replies sent) before the start
            # returns, so that a bad one fails the start; the enter call and the
            # inserted events run after it returned, as in OTP.
            _postpone, inserted, timeouts = take(type(self).__name__, actions, INIT, self.__reply)
        except StopActor as stop:
            self.__fail(ctx, parent, stop.reason)
        except Exception as exc:  # noqa: BLE001 - a failed init is the starter's error
            self.__fail(ctx, parent, exc)
        self.__state, self.__data = state, data
        self.__running = True
        if done is not None:
            done.set(None)
        if inserted:
            self.__queue.extend(inserted)
        if self.state_enter:
            timeouts = self.__enter(state, timeouts)
        start_timeouts(self.__timeouts, timeouts, bool(self.__queue))
        self.__drain()

    def __init_result(self, result: Any) -> tuple[Any, Any, Any]:
        name = type(self).__name__
        if result.__class__ is Stop:
            raise StopActor(result.reason)
        if not (isinstance(result, tuple) and len(result) in (2, 3)) or isinstance(
            result, (KeepState, RepeatState, StopAndReply, *ACTION_TYPES)
        ):
            raise TypeError(f"{name}.init must return (state, data) or (state, data, actions), not {result!r}")
        state, data = result[0], result[1]
        allowed = self.__allowed
        if allowed is not None and state not in _diagram.states(name, self.transitions, self.initial_state):
            raise ValueError(f"{name}.init: initial state {state!r} is not a state of {name}.transitions")
        self.__set_handler(state)
        return state, data, result[2] if len(result) == 3 else ()

    @staticmethod
    def __fail(ctx: ActorContext, parent: Pid | None, reason: Any) -> NoReturn:
        if parent is not None:
            ctx.unlink(parent)  # the caller of start_link survives our exit
        log.debug("%s failed to start: %r", ctx.pid, reason)
        raise StopActor(reason, report=False)  # the starter gets the error

    def __transition_table(self) -> dict[Any, frozenset[Any]] | None:
        cls = type(self)
        mode = cls.callback_mode
        if mode not in (STATE_FUNCTIONS, HANDLE_EVENT_FUNCTION):
            raise ValueError(
                f"{cls.__name__}.callback_mode must be {STATE_FUNCTIONS!r} or {HANDLE_EVENT_FUNCTION!r}, not {mode!r}"
            )
        if cls.transitions is None or not cls.check_transitions:
            return None
        return _diagram.allowed(cls.__name__, cls.transitions)

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        """Turn one message into an event (call, cast, info, a timeout), handle it
        and then every event it queued."""
        cls = msg.__class__
        if cls is tuple:
            n = len(msg)
            if n == 3 and msg[0] == _CALL_TAG:
                request = msg[2]
                if request.__class__ is Traced:  # a call made under a trace context (joerl.otel)
                    handle_traced_call(ctx, msg, self.handle_message)
                    return
                if request.__class__ is tuple and len(request) == 2 and request[0] == _SYSTEM:
                    sys_calls.handle(self, ctx, msg[1], request[1], self.__parent)
                    return
                self.__event((CALL, msg[1]), request)
            elif n == 2 and msg[0] == _CAST_TAG:
                self.__event("cast", msg[1])
            elif n == 2 and msg[0] == _STOP_TAG:
                raise StopActor(msg[1])
            else:
                self.__event("info", msg)
        elif cls is Fired:
            fired = self.__timeouts.fired(msg)
            if fired is None:
                return
            self.__event(fired[0], fired[1])
        elif cls is Exit and self.__parent is not None and msg.pid == self.__parent:
            raise StopActor(msg.reason, report=False)  # trapping exits and the parent went (as OTP)
        else:
            self.__event("info", msg)
        if self.__queue or self.__zero:
            self.__drain()

    _joerl_sys_stats: Any = None  # sys_calls.statistics

    def _joerl_sys_state(self) -> Any:
        return (self.__state, self.__data)

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        """Cancels the timeouts and runs ``terminate`` (only if ``init`` succeeded)."""
        if not self.__running:
            return
        self.__running = False
        self.__timeouts.cancel_all()
        self.terminate(reason, self.__state, self.__data)

    # -- the loop ----------------------------------------------------------------

    def __drain(self) -> None:
        queue = self.__queue
        timeouts = self.__timeouts
        while True:
            if queue:
                event_type, content = queue.popleft()
            elif timeouts.zero_pending:
                fired = timeouts.next_zero()
                if fired is None:
                    return
                event_type, content = fired
            else:
                return
            self.__event(event_type, content)

    def __event(self, event_type: Any, content: Any) -> None:
        if EVENT_TIMEOUT in self.__active:
            self.__timeouts.cancel(EVENT_TIMEOUT)  # any event cancels the event timeout
        state = self.__state
        if self.__by_state:
            result = self.__handler(event_type, content, self.__data)
        else:
            result = self.handle_event(event_type, content, state, self.__data)
        cls = result.__class__
        repeat = False
        if cls is KeepState:
            data, actions = result
            new_state = state
        elif cls is NextState:
            new_state, data, actions = result
        elif cls is RepeatState:
            data, actions = result
            new_state, repeat = state, True
        else:
            self.__stop(result, "a state callback")
        if data is not KEEP:
            self.__data = data
        if actions == ():
            if new_state is state or new_state == state:
                if repeat and self.state_enter:
                    start_timeouts(self.__timeouts, self.__enter(state, None), bool(self.__queue))
                return
            postpone, inserted, timeouts_set = False, None, None
        else:
            postpone, inserted, timeouts_set = take(type(self).__name__, actions, EVENT, self.__reply)
        if postpone:
            self.__postponed.append((event_type, content))
        changed = new_state is not state and new_state != state
        if changed:
            self.__change(state, new_state)
        if inserted:
            self.__queue.extendleft(reversed(inserted))
        if self.state_enter and (changed or repeat):
            timeouts_set = self.__enter(state, timeouts_set)
        start_timeouts(self.__timeouts, timeouts_set, bool(self.__queue))

    def __change(self, old: Any, new: Any) -> None:
        allowed = self.__allowed
        if allowed is not None and new not in allowed.get(old, ()):
            raise TransitionError(type(self).__name__, old, new)
        self.__set_handler(new)
        self.__state = new
        self.__timeouts.cancel(STATE_TIMEOUT)
        postponed = self.__postponed
        if postponed:
            self.__queue.extendleft(reversed(postponed))
            self.__postponed = []

    def __enter(self, old: Any, timeouts: list[Any] | None) -> list[Any] | None:
        """The state enter call(s); their timeouts join those of the transition."""
        while True:
            state = self.__state
            if self.__by_state:
                result = self.__handler(ENTER, old, self.__data)
            else:
                result = self.handle_event(ENTER, old, state, self.__data)
            cls = result.__class__
            if cls is KeepState or cls is RepeatState:
                data, actions = result
            elif cls is NextState:
                new_state, data, actions = result
                if new_state is not state and new_state != state:
                    raise TypeError(
                        f"{type(self).__name__}: a state enter call cannot change the state "
                        f"({state!r} -> {new_state!r}); return KeepState or insert an event"
                    )
            else:
                self.__stop(result, "a state enter call")
            if data is not KEEP:
                self.__data = data
            if actions != ():
                _postpone, _inserted, more = take(type(self).__name__, actions, ENTER_CALL, self.__reply)
                if more:
                    timeouts = [*(timeouts or ()), *more]
            if cls is not RepeatState:
                return timeouts

    def __stop(self, result: Any, where: str) -> NoReturn:
        cls = result.__class__
        if cls is Stop:
            if result.data is not KEEP:
                self.__data = result.data
            raise StopActor(result.reason)
        if cls is StopAndReply:
            if result.data is not KEEP:
                self.__data = result.data
            replies = result.replies
            for r in (replies,) if replies.__class__ is Reply else replies:
                if r.__class__ is not Reply:
                    raise TypeError(f"{type(self).__name__}: StopAndReply takes Reply actions, not {r!r}")
                self.__reply(r.from_, r.value)
            raise StopActor(result.reason)
        raise TypeError(
            f"{type(self).__name__}: {where} must return NextState, KeepState, RepeatState, Stop "
            f"or StopAndReply, not {result!r}"
        )

    def __set_handler(self, state: Any) -> None:
        if not self.__by_state:
            return
        handler = self.__handlers.get(state) if state.__class__ is str else None
        if handler is None:
            name = type(self).__name__
            if not isinstance(state, str) or not state.isidentifier() or state.startswith("_") or state in _RESERVED:
                raise ValueError(
                    f"{name}: state {state!r} cannot name a state function (callback_mode 'state_functions' "
                    "takes a str naming a method; use 'handle_event_function' for other states)"
                )
            handler = getattr(self, state, None)
            if not callable(handler):
                raise TypeError(
                    f"{name} has no state function for state {state!r}: define "
                    f"def {state}(self, event_type, event_content, data)"
                )
            self.__handlers[state] = handler
        self.__handler = handler


#: Names a state function may not have (GenStatem's own attributes).
_RESERVED = frozenset(dir(GenStatem))
