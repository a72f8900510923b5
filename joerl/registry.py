"""The local name registry: names <-> pids, one name per process."""

from __future__ import annotations

from .errors import NameTaken, NotRegistered
from .pid import Pid


class Registry:
    """A two-way map of registered names. The system frees a name when its process dies."""

    __slots__ = ("_by_name", "_by_pid")

    def __init__(self) -> None:
        self._by_name: dict[str, Pid] = {}
        self._by_pid: dict[Pid, str] = {}

    def register(self, name: str, pid: Pid) -> None:
        """Bind ``name`` to ``pid``.

        Raises:
            TypeError: ``name`` is not a non-empty str.
            NameTaken: the name is bound already.
            ValueError: ``pid`` already has a name.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"a registered name must be a non-empty str, not {name!r}")
        owner = self._by_name.get(name)
        if owner is not None:
            raise NameTaken(name, owner)
        old = self._by_pid.get(pid)
        if old is not None:
            raise ValueError(f"{pid} is already registered as {old!r}")
        self._by_name[name] = pid
        self._by_pid[pid] = name

    def unregister(self, name: str) -> Pid:
        """Remove ``name``. Raises NotRegistered when it is not bound."""
        pid = self._by_name.pop(name, None)
        if pid is None:
            raise NotRegistered(name)
        del self._by_pid[pid]
        return pid

    def whereis(self, name: str) -> Pid | None:
        return self._by_name.get(name)

    def name_of(self, pid: Pid) -> str | None:
        return self._by_pid.get(pid)

    def drop_pid(self, pid: Pid) -> None:
        name = self._by_pid.pop(pid, None)
        if name is not None:
            del self._by_name[name]

    def registered(self) -> list[str]:
        return sorted(self._by_name)
