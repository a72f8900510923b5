"""What the runtime puts in mailboxes, and the exit reasons it speaks.

``Exit`` reaches an actor that traps exits when a linked process dies (or
someone calls ``exit(pid, reason)`` on it); ``Down`` reaches the holder of a
monitor, exactly once; ``NodeUp``/``NodeDown`` reach node monitors.

Exit reasons are plain data: the strings below, or the exception that ended
the actor, or any value passed to ``stop``/``exit``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .pid import Pid, Ref

NORMAL = "normal"
SHUTDOWN = "shutdown"
KILL = "kill"  # the untrappable signal sent with exit(pid, KILL)
KILLED = "killed"  # the reason of a process ended by KILL
NOPROC = "noproc"
NOCONNECTION = "noconnection"


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
    return repr(reason) if not isinstance(reason, str) else reason
