"""What the observer shows, as plain JSON-ready values: of a local system, or of a cluster through a node.

A :class:`Source` wraps an :class:`~joerl.system.ActorSystem` (its own
processes only) or a :class:`~joerl.node.node.DistributedSystem`, whose
``introspection`` reaches every node it can link with (the observer of
``joerl observer NODE`` runs on a hidden node). Pids travel as their text
form (``"<1.2.3>"``) and are parsed back with :func:`parse_pid`.
"""

from __future__ import annotations

import re
from typing import Any

from ..introspect import as_dict, process_info, processes_info, queued_messages, system_info
from ..pid import Pid

__all__ = ["Source", "parse_pid", "plain"]

_PID = re.compile(r"<(\d+)\.(\d+)\.(\d+)>")


def parse_pid(text: str) -> Pid:
    """The pid whose text form is ``text`` (``"<node.id.creation>"``).

    Raises:
        ValueError: ``text`` is not a pid's text form (or out of a pid's bounds).
    """
    m = _PID.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a pid: {text!r}")
    try:
        pid: Pid = Pid(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a pid: {text!r} ({exc})") from None
    return pid


def plain(value: Any) -> Any:
    """``value`` with pids as text and tuples as lists (what ``json.dumps`` takes)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class Source:
    """The observer's view of a runtime.

    Args:
        target: a DistributedSystem (a cluster, through it) or an ActorSystem (itself only).
        default_node: the node shown first (default: ``target``'s own).
        timeout: seconds to wait for another node's answer.
    """

    def __init__(self, target: Any, default_node: str | None = None, timeout: float = 5.0) -> None:
        self._node = target if hasattr(target, "introspection") else None
        self._system = target.system if self._node is not None else target
        self.name: str = self._node.node_name if self._node is not None else self._system.name
        self.default_node = default_node or self.name
        self.timeout = timeout
        self._counted: set[str] = set()

    def count_messages(self, name: str) -> None:
        """Turn node ``name``'s message counts on, once (the message rates need them; they stay on)."""
        if name in self._counted:
            return
        if self._node is None:
            self._check_local(name)
            self._system.count_messages = True
        else:
            self._node.introspection.count_messages(name, True, self.timeout)
        self._counted.add(name)

    def nodes(self) -> dict[str, Any]:
        """The default node and its peers, with their link stats (a hidden node's own links are left out)."""
        report = self.node(self.default_node)
        peers = [p for p in report["peers"] if not p["hidden"]]
        return {"observer": self.name, "default": self.default_node, "node": report, "peers": peers}

    def node(self, name: str) -> dict[str, Any]:
        """Node ``name`` as a whole (its :class:`~joerl.node.introspection.NodeReport`, plain)."""
        if self._node is None:
            self._check_local(name)
            system = as_dict(system_info(self._system))
            return {
                "node": self.name,
                "hidden": False,
                "system": plain(system),
                "peers": [],
                "global_names": [],
                "stats": {},
            }
        from ..node.introspection import report_as_dict

        report: dict[str, Any] = plain(report_as_dict(self._node.introspection.node_info(name, self.timeout)))
        return report

    def metrics(self, name: str) -> dict[str, Any]:
        """Node ``name``'s counters and gauges (:func:`joerl.metrics.snapshot`)."""
        self.count_messages(name)
        if self._node is None:
            self._check_local(name)
            from ..metrics import snapshot

            found: dict[str, Any] = plain(snapshot(self._system))
        else:
            found = plain(self._node.introspection.metrics(name, self.timeout))
        return found

    def processes(self, name: str) -> list[dict[str, Any]]:
        """Every process of node ``name``, oldest first."""
        self.count_messages(name)
        if self._node is None:
            self._check_local(name)
            infos = processes_info(self._system)
        else:
            infos = self._node.introspection.processes(name, self.timeout)
        return [plain(as_dict(i)) for i in infos]

    def process(self, pid: Pid) -> dict[str, Any] | None:
        """Process ``pid`` (of any node), with its state when it is a GenServer or GenStatem; None if dead."""
        if self._node is None:
            info = process_info(self._system, pid)
        else:
            info = self._node.introspection.process_info(pid, self.timeout)
        if info is None:
            return None
        out: dict[str, Any] = plain(as_dict(info))
        out["node"] = self._node.node_of(pid) if self._node is not None else self.name
        out["state"] = self._state(pid) if info.behaviour in ("gen_server", "gen_statem") else None
        try:
            if self._node is not None:
                out["messages"] = self._node.introspection.messages(pid, self.timeout)
            else:
                out["messages"] = queued_messages(self._system, pid)
        except Exception as exc:  # noqa: BLE001 - shown on the page, not raised
            out["messages"] = [f"(cannot read: {type(exc).__name__}: {exc})"]
        return out

    def _state(self, pid: Pid) -> str | None:
        try:
            if self._node is not None:
                state: str = self._node.introspection.get_state(pid, self.timeout)
                return state
            from .. import sys_calls

            return repr(sys_calls.get_state(pid, self.timeout, system=self._system))[:4000]
        except Exception as exc:  # noqa: BLE001 - shown on the page, not raised
            return f"(no state: {type(exc).__name__}: {exc})"

    def _check_local(self, name: str) -> None:
        if name != self.name:
            raise LookupError(f"unknown node {name!r}: this observer shows {self.name!r} only")
