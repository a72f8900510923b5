"""RuntimeStats: the counters of one ActorSystem (``system.stats``).

Erlang drops a message to a process that is not there, and so does joerl:
a send or a cast to a dead pid, a cast to a name nobody holds, a timer whose
target is gone. Nothing is lost silently, though: every such message is
counted here, in total and by reason.
"""

from __future__ import annotations

__all__ = [
    "DROP_EXITED",
    "DROP_NOPROC",
    "DROP_NOT_DISTRIBUTED",
    "DROP_ROUTE_FAILED",
    "DROP_TIMER_CANCELLED",
    "DROP_UNREGISTERED",
    "RuntimeStats",
]

#: To a local pid that is not alive (a send, a cast, a timer that fires).
DROP_NOPROC = "noproc"
#: A cast, or a timer that fires, to a name nobody holds.
DROP_UNREGISTERED = "unregistered"
#: Still queued in a process's mailbox when the process ended.
DROP_EXITED = "exited"
#: A timer to a pid, cancelled because that process ended (or was gone when the timer was set).
DROP_TIMER_CANCELLED = "timer_cancelled"
#: A timer to another node's process, in a system that belongs to no node.
DROP_NOT_DISTRIBUTED = "not_distributed"
#: A timer's message that the node could not take (it raised; logged).
DROP_ROUTE_FAILED = "route_failed"


class RuntimeStats:
    """Counters of one local runtime (for tests, operators, benchmarks and
    :mod:`joerl.metrics`). None of them costs the send path anything: they
    count spawns, exits and restarts, which are rare next to messages.

    Attributes:
        dropped: messages dropped in all (see the ``DROP_*`` reasons).
        dropped_by_reason: the same, by reason (``{"noproc": 3, ...}``);
            a reason appears once it has counted something.
        spawned: processes started.
        exited: processes ended (any reason).
        crashed: processes that ended with a crash report (an exception or
            another abnormal reason of their own).
        restarts: children restarted by supervisors.
        ended_received: messages taken from their mailboxes by processes
            that have ended (the live ones keep their own count).
        mailbox_high_water: the deepest mailbox a :func:`joerl.metrics.snapshot` has seen.
    """

    __slots__ = (
        "dropped",
        "dropped_by_reason",
        "spawned",
        "exited",
        "crashed",
        "restarts",
        "ended_received",
        "mailbox_high_water",
    )

    def __init__(self) -> None:
        self.dropped = 0
        self.dropped_by_reason: dict[str, int] = {}
        self.spawned = 0
        self.exited = 0
        self.crashed = 0
        self.restarts = 0
        self.ended_received = 0
        self.mailbox_high_water = 0

    def __repr__(self) -> str:
        return (
            f"<RuntimeStats spawned={self.spawned} exited={self.exited} crashed={self.crashed} "
            f"restarts={self.restarts} dropped={self.dropped} {self.dropped_by_reason}>"
        )

    def drop(self, reason: str, count: int = 1) -> None:
        """Count ``count`` messages dropped for ``reason`` (the runtime and the behaviours call this).

        Args:
            reason: one of the ``DROP_*`` reasons (any short string is kept as given).
            count: how many messages.
        """
        self.dropped += count
        by_reason = self.dropped_by_reason
        by_reason[reason] = by_reason.get(reason, 0) + count
