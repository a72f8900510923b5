"""The codes that carry a supervisor's errors (classes in :mod:`joerl.errors`,
and :class:`MaxChildrenReached` here) from its reply (``("error", code,
args)``) to the caller, who raises ``BY_CODE[code](*args)``."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import (
    AlreadyPresent,
    AlreadyStarted,
    ChildNotFound,
    ChildStartError,
    MaxChildrenReached,
    StillRunning,
    SupervisorError,
)

#: A reply's error code -> the error the caller raises with the reply's args.
BY_CODE: dict[str, Callable[..., SupervisorError]] = {
    "not_found": ChildNotFound,
    "already_started": AlreadyStarted,
    "already_present": AlreadyPresent,
    "running": StillRunning,
    "start_failed": ChildStartError,
    "max_children": MaxChildrenReached,
    "bad_request": SupervisorError,
}
