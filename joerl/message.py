"""What the runtime puts in mailboxes, and the exit reasons it speaks.

``Exit`` reaches an actor that traps exits when a linked process dies (or
someone calls ``exit(pid, reason)`` on it); ``Down`` reaches the holder of a
monitor, exactly once; ``NodeUp``/``NodeDown`` reach node monitors.

Exit reasons are plain data: the strings below, or the exception that ended
the actor, or any value passed to ``stop``/``exit``. An exception does not
cross nodes as itself: at the far end the reason is an
:class:`ExceptionReason` (its type name, message and formatted traceback).
"""

from __future__ import annotations

import traceback as _traceback
from typing import Any, NamedTuple

from .pid import Pid, Ref

NORMAL = "normal"
"""The reason of a process that returned: links to it do not fire (unless trapped, as an ``Exit``)."""
SHUTDOWN = "shutdown"
"""The reason a supervisor or ``ActorSystem.shutdown`` stops a process with: an orderly stop, not a crash."""
KILL = "kill"
"""The untrappable exit signal: ``ctx.exit(pid, KILL)`` ends the process even if it traps exits."""
KILLED = "killed"
"""The reason of a process ended by ``KILL`` (what its links and monitors are told)."""
NOPROC = "noproc"
"""The reason in a ``Down`` (or a link's ``Exit``) for a process that did not exist when it was monitored or linked."""
NOCONNECTION = "noconnection"
"""The reason for a process of another node whose link went down (the node died or the network failed)."""


class Exit(NamedTuple):
    """An exit signal turned into a message (the receiver traps exits)."""

    pid: Pid
    reason: Any


class Down(NamedTuple):
    """A monitored process ended (or never existed: reason ``noproc``)."""

    ref: Ref
    pid: Pid
    reason: Any


class NodeUp(NamedTuple):
    """A connection to ``node`` came up."""

    node: str


class NodeDown(NamedTuple):
    """The connection to ``node`` went down."""

    node: str
    reason: Any


class ExceptionReason(NamedTuple):
    """An exception that ended a process on another node, as data.

    Locally the exit reason of a process that raised is the exception object
    itself; on every other node (in ``Down``, ``Exit``, ``CallError.reason``)
    it is this record, which names the exception without carrying code:
    match on ``reason.type == "RuntimeError"``. Plain data: inside a message
    it crosses nodes as a plain ``(type, message, traceback)`` tuple.

    Attributes:
        type: the exception class's name (``"RuntimeError"``).
        message: ``str(exception)``.
        traceback: the formatted traceback, as ``traceback.format_exception``
            renders it where the process ended (``""`` when it has none).
    """

    type: str
    message: str
    traceback: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> ExceptionReason:
        """The record of ``exc`` (with its traceback, if it was raised).

        Args:
            exc: the exception that ended a process.

        Returns:
            Its type name, message and formatted traceback.
        """
        tb = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(type(exc).__name__, str(exc), tb)

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


def is_normal(reason: Any) -> bool:
    """True for the reasons that are not failures (``normal`` and ``shutdown``)."""
    return (
        reason == NORMAL
        or reason == SHUTDOWN
        or (isinstance(reason, tuple) and len(reason) == 2 and reason[0] == SHUTDOWN)
    )


def format_reason(reason: Any) -> str:
    """A short human-readable rendering of an exit reason."""
    if isinstance(reason, BaseException):
        return f"{type(reason).__name__}: {reason}"
    if isinstance(reason, ExceptionReason):
        return str(reason)
    return repr(reason) if not isinstance(reason, str) else reason
