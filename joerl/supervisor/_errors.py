"""The supervisor's errors, and the codes that carry them from a supervisor's
reply (``("error", code, args)``) to the caller, who raises ``BY_CODE[code](*args)``."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from ..errors import ActorError
from ..message import format_reason
from ..pid import Pid


class SupervisorError(ActorError):
    """A supervisor refused a request about its children."""


class ChildNotFound(SupervisorError):
    """No child with this id."""

    def __init__(self, id: Hashable) -> None:
        super().__init__(f"no child with id {id!r}")
        self.id = id


class AlreadyStarted(SupervisorError):
    """``start_child``: a child with this id is running."""

    def __init__(self, id: Hashable, pid: Pid) -> None:
        super().__init__(f"child {id!r} is already started as {pid}")
        self.id = id
        self.pid = pid


class AlreadyPresent(SupervisorError):
    """``start_child``: a (stopped) child with this id exists: restart or delete it."""

    def __init__(self, id: Hashable) -> None:
        super().__init__(f"child {id!r} is already present (not running): use restart_child or delete_child")
        self.id = id


class StillRunning(SupervisorError):
    """``restart_child``/``delete_child``: the child runs; terminate it first."""

    def __init__(self, id: Hashable, pid: Pid) -> None:
        super().__init__(f"child {id!r} is running as {pid}: terminate_child it first")
        self.id = id
        self.pid = pid


class ChildStartError(SupervisorError):
    """A child's ``start`` raised, or returned something that is not a process."""

    def __init__(self, id: Hashable, reason: Any) -> None:
        super().__init__(f"child {id!r} failed to start: {format_reason(reason)}")
        self.id = id
        self.reason = reason


#: A reply's error code -> the error the caller raises with the reply's args.
BY_CODE: dict[str, Callable[..., SupervisorError]] = {
    "not_found": ChildNotFound,
    "already_started": AlreadyStarted,
    "already_present": AlreadyPresent,
    "running": StillRunning,
    "start_failed": ChildStartError,
}
