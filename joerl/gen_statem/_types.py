"""What a state callback sees and returns: event types, results, actions.

Pure values (no gevent, no runtime). OTP's terms become Python values:

=====================================  ==========================================
OTP                                    joerl
=====================================  ==========================================
``{call, From}``                       ``("call", from_)`` (a tuple; ``from_`` a From)
``cast``, ``info``, ``internal``       ``"cast"``, ``"info"``, ``"internal"``
``enter``                              ``"enter"`` (content: the old state)
``timeout``, ``state_timeout``         ``"timeout"``, ``"state_timeout"``
``{timeout, Name}``                    ``("timeout", name)``
``{next_state, S, D, Actions}``        ``NextState(s, d, actions)``
``{keep_state, D, Actions}``           ``KeepState(d, actions)`` (``KeepState()`` keeps data)
``{repeat_state, D, Actions}``         ``RepeatState(d, actions)``
``{stop, Reason, D}``                  ``Stop(reason, d)``
``{stop_and_reply, R, Replies, D}``    ``StopAndReply(reason, replies, d)``
``{reply, From, Reply}``               ``Reply(from_, value)``
``postpone``                           ``Postpone()``
``{next_event, Type, Content}``        ``NextEvent(type, content)``
``{timeout, T, C}`` / ``T``            ``EventTimeout(seconds, content)``
``{state_timeout, T, C}``              ``StateTimeout(seconds, content)``
``{{timeout, Name}, T, C}``            ``GenericTimeout(name, seconds, content)``
``{Type, cancel}``                     ``StateTimeout("cancel")`` (the same for each kind)
``{Type, update, C}``                  ``StateTimeout("update", c)``
=====================================  ==========================================

Times are seconds (floats), not milliseconds; ``"infinity"`` or None for
infinity.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import TransitionError
from ..message import NORMAL

__all__ = [
    "CANCEL",
    "CAST",
    "ENTER",
    "EVENT_TIMEOUT",
    "HANDLE_EVENT_FUNCTION",
    "INFINITY",
    "INFO",
    "INTERNAL",
    "KEEP_STATE_AND_DATA",
    "REPEAT_STATE_AND_DATA",
    "STATE_FUNCTIONS",
    "STATE_TIMEOUT",
    "UPDATE",
    "EventTimeout",
    "GenericTimeout",
    "KeepState",
    "NextEvent",
    "NextState",
    "Postpone",
    "RepeatState",
    "Reply",
    "StateTimeout",
    "Stop",
    "StopAndReply",
    "TransitionError",
]

#: ``callback_mode``: one method per state, named after the state.
STATE_FUNCTIONS = "state_functions"
#: ``callback_mode``: one ``handle_event`` for every state.
HANDLE_EVENT_FUNCTION = "handle_event_function"

#: Event types (a call's is ``("call", from_)``, a generic timeout's ``("timeout", name)``).
CAST = "cast"
INFO = "info"
INTERNAL = "internal"
ENTER = "enter"
EVENT_TIMEOUT = "timeout"
STATE_TIMEOUT = "state_timeout"
CALL = "call"

#: Timeout "times" that are not times.
INFINITY = "infinity"
CANCEL = "cancel"
UPDATE = "update"


class _Keep:
    """The default ``data`` of a result: keep the data as it is."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unchanged>"


#: A result's data left out: the data stays as it is.
KEEP: Any = _Keep()

#: What a result's ``actions`` holds: a sequence of actions, or one action.
Actions = Any


# -- results ---------------------------------------------------------------------


class NextState(NamedTuple):
    """Go to ``state`` (a state change if it differs from the current one)."""

    state: Any
    data: Any = KEEP
    actions: Actions = ()


class KeepState(NamedTuple):
    """Stay in the current state (not a state change: postponed events stay)."""

    data: Any = KEEP
    actions: Actions = ()


class RepeatState(NamedTuple):
    """Stay in the current state, but run its state enter call again."""

    data: Any = KEEP
    actions: Actions = ()


class Stop(NamedTuple):
    """End the machine with ``reason`` (``terminate`` runs first).

    From ``init``: fail the start with ``StartError(reason)``.
    """

    reason: Any = NORMAL
    data: Any = KEEP


class StopAndReply(NamedTuple):
    """Send ``replies`` (``Reply`` actions), then end the machine with ``reason``."""

    reason: Any
    replies: Actions
    data: Any = KEEP


#: ``KeepState()``: OTP's ``keep_state_and_data``.
KEEP_STATE_AND_DATA = KeepState()
#: ``RepeatState()``: OTP's ``repeat_state_and_data``.
REPEAT_STATE_AND_DATA = RepeatState()


# -- actions ---------------------------------------------------------------------


class Reply(NamedTuple):
    """Answer the call ``from_`` with ``value`` (now, as the action is taken)."""

    from_: Any
    value: Any


class Postpone(NamedTuple):
    """Postpone the current event: it is retried after the next state change.

    ``Postpone(False)`` is allowed and does nothing (OTP's ``{postpone, false}``).
    """

    postpone: bool = True


class NextEvent(NamedTuple):
    """Insert an event, handled before any event not yet handled (several: in order).

    ``event_type`` is ``"internal"`` (for events the machine makes itself), or
    any other type but ``"enter"``.
    """

    event_type: Any
    content: Any = None


class EventTimeout(NamedTuple):
    """Start the event timeout: an event ``("timeout", content)`` after ``time``
    seconds, unless any event comes first (which cancels it).

    ``time`` may be ``"infinity"`` / None (no timeout: cancels the running one),
    ``"cancel"``, or ``"update"`` (new content for the running one; when none
    runs, the timeout event is queued at once, as for time 0).
    """

    time: float | str | None
    content: Any = None


class StateTimeout(NamedTuple):
    """Start the state timeout: an event ``("state_timeout", content)`` after
    ``time`` seconds, unless the state changes first. ``time`` as for
    :class:`EventTimeout`; setting it again restarts it."""

    time: float | str | None
    content: Any = None


class GenericTimeout(NamedTuple):
    """Start the generic timeout ``name``: an event ``(("timeout", name), content)``
    after ``time`` seconds. Only setting it again, ``"cancel"`` or ``"infinity"``
    stop it: neither events nor state changes do. ``time`` as for :class:`EventTimeout`."""

    name: Any
    time: float | str | None
    content: Any = None


#: Every action class, for checking what a callback returned.
ACTION_TYPES = (Reply, Postpone, NextEvent, EventTimeout, StateTimeout, GenericTimeout)
TIMEOUT_TYPES = (EventTimeout, StateTimeout, GenericTimeout)
RESULT_TYPES = (NextState, KeepState, RepeatState, Stop, StopAndReply)
