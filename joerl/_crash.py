"""Crash reports: the one ERROR record a process leaves when it ends abnormally.

Erlang prints a crash report for a process that exits with any reason but
``normal``, ``shutdown`` or ``{shutdown, _}``; joerl logs one on the
``joerl.actor`` logger at ERROR: the pid, the registered name, the actor (its
class, or the function a ``spawn_fn`` runs), the reason and, for an
exception, its traceback. The library configures no logging: with none
configured, Python's last-resort handler prints the record on stderr; the
application's ``logging`` setup decides otherwise (docs/operations.md).

A process killed by an exit signal (a link, ``exit(pid, reason)``, a
shutdown) leaves no report: the report belongs to the process that failed,
as in Erlang.
"""

from __future__ import annotations

import logging
from typing import Any

from .message import format_reason
from .pid import Pid

__all__ = ["actor_label", "crash_report"]


def actor_label(body: Any) -> str:
    """What a process runs, for humans: ``module.Class`` or ``module.function``."""
    fn = getattr(body, "fn", None)  # a spawn_fn body (_process._FnActor)
    what = fn if fn is not None else type(body)
    module = getattr(what, "__module__", None) or "?"
    name = getattr(what, "__qualname__", None) or repr(what)
    return f"{module}.{name}"


def crash_report(log: logging.Logger, pid: Pid, name: str | None, body: Any, reason: Any, note: str = "") -> None:
    """Log the crash report of ``pid`` (once, as it ends).

    Args:
        log: the logger (``joerl.actor``).
        pid: the process.
        name: its registered name, if any.
        body: the actor instance or the ``spawn_fn`` adapter.
        reason: the exit reason (an exception carries its traceback).
        note: appended to the message (a second failure, in ``stopped``).
    """
    exc = reason if isinstance(reason, BaseException) else None
    log.error(
        "crash report: process %s%s running %s exited: %s%s",
        pid,
        f" (registered as {name!r})" if name is not None else "",
        actor_label(body),
        format_reason(reason),
        note,
        exc_info=exc,
        extra={"joerl_pid": str(pid), "joerl_name": name, "joerl_reason": reason},
    )
