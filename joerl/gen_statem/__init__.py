"""GenStatem: the state machine behaviour (OTP's ``gen_statem``) on the local runtime.

A machine is a :class:`GenStatem` subclass. In ``callback_mode =
"state_functions"`` (the default) each state is a method named after it::

    class Door(GenStatem):
        def init(self, code):
            return ("locked", {"code": code})

        def locked(self, event_type, content, data):
            if event_type[0] == "call" and content == data["code"]:   # ("call", from_)
                return NextState("open", data, [Reply(event_type[1], "opened"), StateTimeout(5, "lock")])
            return KeepState(actions=[Reply(event_type[1], "wrong")])

        def open(self, event_type, content, data):
            if event_type == "state_timeout":
                return NextState("locked")
            return KeepState(actions=[Postpone()])

In ``"handle_event_function"`` mode one ``handle_event(event_type, content,
state, data)`` takes every event and the state may be any value. The event
types, results and actions are OTP's, spelled in Python (see
:mod:`joerl.gen_statem._types` for the table): ``("call", from_)``,
``"cast"``, ``"info"``, ``"internal"``, ``"enter"``, ``"timeout"``,
``"state_timeout"``, ``("timeout", name)``; ``NextState``, ``KeepState``,
``RepeatState``, ``Stop``, ``StopAndReply``; ``Reply``, ``Postpone``,
``NextEvent``, ``EventTimeout``, ``StateTimeout``, ``GenericTimeout``.

The wire shapes are :mod:`joerl._gen`'s (a call is ``("$gen_call", From,
request)``, a cast ``("$gen_cast", request)``), so ``system.call``,
``gen_server.call`` and calls from other nodes reach a machine as they reach
a GenServer. :func:`start` / :func:`start_link` return once ``init`` has run.

Beyond OTP, a machine may declare ``transitions`` (checked as it runs) and
draw them with :meth:`GenStatem.to_mermaid`. Not here: hibernation, changing
the callback module, ``code_change`` / ``format_status``, absolute timeout
times. Private modules: ``_types`` (values), ``_timeouts`` (running timeouts),
``_actions`` (taking actions), ``_machine`` (the class and its loop),
``_diagram`` (declared transitions), ``_start`` (start, ref, client calls).
"""

from __future__ import annotations

from ._machine import GenStatem
from ._start import GenStatemRef, call, cast, reply, start, start_link
from ._types import (
    CANCEL,
    CAST,
    ENTER,
    EVENT_TIMEOUT,
    HANDLE_EVENT_FUNCTION,
    INFINITY,
    INFO,
    INTERNAL,
    KEEP_STATE_AND_DATA,
    REPEAT_STATE_AND_DATA,
    STATE_FUNCTIONS,
    STATE_TIMEOUT,
    UPDATE,
    EventTimeout,
    GenericTimeout,
    KeepState,
    NextEvent,
    NextState,
    Postpone,
    RepeatState,
    Reply,
    StateTimeout,
    Stop,
    StopAndReply,
    TransitionError,
)

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
    "GenStatem",
    "GenStatemRef",
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
    "call",
    "cast",
    "reply",
    "start",
    "start_link",
]
