"""Transition actions: taking a callback's actions in order, and starting,
updating and cancelling timeouts as the transition's last step (OTP's rules).

Used by the machine's loop (:mod:`joerl.gen_statem._machine`) in its greenlet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._timeouts import Timeouts
from ._types import (
    ACTION_TYPES,
    CALL,
    CANCEL,
    EVENT_TIMEOUT,
    INFINITY,
    STATE_TIMEOUT,
    TIMEOUT_TYPES,
    UPDATE,
    EventTimeout,
    NextEvent,
    Postpone,
    Reply,
    StateTimeout,
)

#: Where actions come from: a state callback's event, ``init``, or a state enter call.
EVENT, INIT, ENTER_CALL = "an event", "init", "a state enter call"

_PLAIN_TYPES = ("internal", "cast", "info", EVENT_TIMEOUT, STATE_TIMEOUT)


def check_event_type(event_type: Any) -> None:
    """Accept the event types a ``NextEvent`` may insert (any but ``"enter"``).

    Raises:
        ValueError: anything else.
    """
    if event_type.__class__ is str and event_type in _PLAIN_TYPES:
        return
    if event_type.__class__ is tuple and len(event_type) == 2:
        if event_type[0] == CALL and isinstance(event_type[1], tuple) and len(event_type[1]) == 2:
            return
        if event_type[0] == EVENT_TIMEOUT:
            return
    raise ValueError(
        f"NextEvent: bad event type {event_type!r}; expected 'internal', 'cast', 'info', 'timeout', "
        "'state_timeout', ('call', from_) or ('timeout', name)"
    )


def take(
    owner: str, actions: Any, where: str, reply: Callable[[Any, Any], None]
) -> tuple[bool, list[tuple[Any, Any]] | None, list[Any] | None]:
    """Take ``actions`` in order: replies are sent now (through ``reply``);
    postpone, inserted events and timeouts are returned for the transition.

    Args:
        owner: the machine's class name, for error messages.
        actions: a list or tuple of actions, or one action.
        where: :data:`EVENT`, :data:`INIT` or :data:`ENTER_CALL` (postpone is
            only for events; inserted events not for enter calls).
        reply: ``reply(from_, value)``.

    Returns:
        ``(postpone, inserted events [(type, content)] or None, timeout actions or None)``.

    Raises:
        TypeError: an unknown action, or one not allowed ``where``.
        ValueError: a ``NextEvent`` of a bad event type.
    """
    postpone = False
    inserted: list[tuple[Any, Any]] | None = None
    timeouts: list[Any] | None = None
    if isinstance(actions, ACTION_TYPES):  # one action, not a list
        actions = (actions,)
    elif not isinstance(actions, (list, tuple)):
        raise TypeError(f"{owner}: actions must be a list of actions, not {actions!r}")
    for action in actions:
        cls = action.__class__
        if cls is Reply:
            reply(action.from_, action.value)
        elif cls is Postpone:
            if where != EVENT:
                raise TypeError(f"{owner}: Postpone is not allowed in {where} (there is no event to postpone)")
            postpone = postpone or bool(action.postpone)
        elif cls is NextEvent:
            if where == ENTER_CALL:
                raise TypeError(f"{owner}: NextEvent is not allowed in a state enter call")
            check_event_type(action.event_type)
            if inserted is None:
                inserted = []
            inserted.append((action.event_type, action.content))
        elif isinstance(action, TIMEOUT_TYPES):
            if timeouts is None:
                timeouts = []
            timeouts.append(action)
        else:
            raise TypeError(f"{owner}: unknown action {action!r}")
    return postpone, inserted, timeouts


def _seconds(action: Any) -> float:
    time = action.time
    if isinstance(time, (int, float)) and not isinstance(time, bool) and 0 <= time < float("inf"):
        return float(time)
    raise ValueError(f"{action!r}: time must be seconds >= 0, 'infinity'/None, 'cancel' or 'update', not {time!r}")


def start_timeouts(timeouts: Timeouts, actions: list[Any] | None, events_queued: bool) -> None:
    """Apply a transition's timeout actions in order (a later one of the same
    kind wins), then drop the event timeout if events are queued (the next one
    would cancel it at once; OTP does not start it).

    Raises:
        ValueError: a bad time.
        TypeError: a generic timeout's name is unhashable.
    """
    if actions:
        for action in actions:
            cls = action.__class__
            if cls is EventTimeout:
                kind: Any = EVENT_TIMEOUT
            elif cls is StateTimeout:
                kind = STATE_TIMEOUT
            else:
                kind = (EVENT_TIMEOUT, action.name)
                try:
                    hash(kind)
                except TypeError:
                    raise TypeError(f"{action!r}: a generic timeout's name must be hashable") from None
            time = action.time
            if time is None or time.__class__ is str and time in (CANCEL, INFINITY):
                timeouts.cancel(kind)
            elif time.__class__ is str and time == UPDATE:
                timeouts.update(kind, action.content)
            else:
                timeouts.start(kind, _seconds(action), action.content)
    if events_queued and EVENT_TIMEOUT in timeouts:
        timeouts.cancel(EVENT_TIMEOUT)
