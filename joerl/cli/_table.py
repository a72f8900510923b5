"""Process tables for ``joerl ps`` and ``joerl top``: rates between two snapshots, sorting, text columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..introspect import ProcessInfo
from ..pid import Pid

__all__ = ["SORT_KEYS", "Row", "format_rows", "rows", "sort_rows"]

#: What ``--sort`` takes, and which field of a :class:`Row` each sorts by (largest first).
SORT_KEYS = {
    "mailbox": "mailbox_len",
    "rate": "rate",
    "received": "received",
    "sent": "sent",
    "memory": "memory",
    "pid": "pid",
}


@dataclass(frozen=True)
class Row:
    """One process of a table: its snapshot and its message rate (messages taken per second)."""

    info: ProcessInfo
    rate: float

    @property
    def pid(self) -> Pid:
        return self.info.pid

    @property
    def mailbox_len(self) -> int:
        return self.info.mailbox_len

    @property
    def received(self) -> int | None:
        return self.info.received

    @property
    def sent(self) -> int | None:
        return self.info.sent

    @property
    def memory(self) -> int:
        return self.info.memory


def rows(now: Sequence[ProcessInfo], before: Sequence[ProcessInfo] | None, seconds: float) -> list[Row]:
    """Rows for ``now``, with rates from ``before`` (taken ``seconds`` earlier; None: rates of 0).

    A process whose messages are not counted (``received`` None) has a rate of 0.
    """
    earlier = {i.pid: i.received for i in before or ()}
    out = []
    for info in now:
        received = info.received
        if received is None or before is None or seconds <= 0:
            out.append(Row(info, 0.0))
            continue
        taken = received - (earlier.get(info.pid) or 0)
        out.append(Row(info, max(0, taken) / seconds))
    return out


def sort_rows(table: list[Row], key: str, limit: int | None = None) -> list[Row]:
    """``table`` sorted by ``key`` (one of :data:`SORT_KEYS`; pids ascending, numbers largest first)."""
    field = SORT_KEYS[key]
    if field == "pid":
        ranked = sorted(table, key=lambda r: r.pid)
    else:
        ranked = sorted(table, key=lambda r: _descending(getattr(r, field)))
    return ranked if limit is None else ranked[:limit]


def _descending(value: int | float | None) -> tuple[int, float]:
    """Largest first; None (not counted) after every number."""
    return (1, 0.0) if value is None else (0, -value)


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


_HEADER = ("PID", "NAME", "ACTOR", "STATUS", "MAILBOX", "IN", "OUT", "MSG/S", "MEMORY")


def format_rows(table: Sequence[Row]) -> str:
    """``table`` as aligned text columns, a header first."""
    lines = [_HEADER]
    for r in table:
        i = r.info
        lines.append(
            (
                str(i.pid),
                i.name or "-",
                i.actor[-48:],
                i.status,
                str(i.mailbox_len),
                _count(i.received),
                _count(i.sent),
                f"{r.rate:.1f}",
                str(i.memory),
            )
        )
    widths = [max(len(line[c]) for line in lines) for c in range(len(_HEADER))]
    right = {4, 5, 6, 7, 8}
    return "\n".join(
        "  ".join(
            cell.rjust(w) if c in right else cell.ljust(w) for c, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )
