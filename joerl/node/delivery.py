"""Delivery acknowledgement of one node link: ACKs out, the unconfirmed count at link down.

A sender cannot know which of the messages in flight arrived when a link goes
down, so the promise is: every message not confirmed delivered when its link
went down is reported as *unconfirmed*. The receiving side of a link counts
the messages it takes off it (``Connection.messages_in``: each message of a
SEND or SEND_TERMS, each REG_SEND, counted by the node's dispatch) and tells
the sender the cumulative count in an ACK frame (``messages.py``) at most once
per ``LinkConfig.ack_interval``: one hub timer armed per window while
unacknowledged messages exist, never a timer or a frame per message (an ACK
written also stands for that interval's tick). The sending side counts the
messages it hands to the link (``OutboundBatcher.handed``) and its decoder
keeps the peer's latest ACK (``FrameDecoder.acked``); when the link goes down
the difference is reported once (:func:`report_unconfirmed`): lost, or
delivered within the last ack interval. Only on links where both sides offer
``FLAG_ACK``. Erlang reports nothing of the kind.
"""

from __future__ import annotations

import logging
from typing import Any

import gevent

from ..errors import LinkDown
from .messages import Ack

__all__ = ["Acknowledger", "report_unconfirmed"]

log = logging.getLogger("joerl.node.connection")


class Acknowledger:
    """The ACKs a link's receiving side sends (made by the connection when it starts).

    Args:
        conn: the :class:`~joerl.node.connection.Connection` (its
            ``messages_in``, ``encoder``, ``send_frame``, ``closed``).
        interval: ``ack_interval``, seconds.

    Attributes:
        sent: the count of the last ACK sent.
        armed: whether an ACK is due (the timer runs), or the link closed: the
            reader checks it per read, to call :meth:`arm` only when it is not.
    """

    __slots__ = ("_conn", "_timer", "sent", "armed")

    def __init__(self, conn: Any, interval: float) -> None:
        self._conn = conn
        self.sent = 0
        self.armed = False
        # A repeating timer, stopped when it fires and restarted with again():
        # libev restarts an expired one-shot timer with what was left of its
        # delay (nothing), which would send an ACK per read.
        self._timer = gevent.get_hub().loop.timer(interval, interval)

    def arm(self) -> None:
        """Messages arrived unacknowledged: an ACK goes out ``interval`` from now
        (the one already due, if the timer runs)."""
        if not self.armed:
            self.armed = True
            self._timer.again(self._fire)

    def flush(self) -> None:
        """Acknowledge now what is not yet (before a graceful close: the peer
        then counts nothing unconfirmed)."""
        self._fire()

    def close(self) -> None:
        self.armed = True  # (for good: nothing arms a closed timer)
        self._timer.close()

    def _fire(self) -> None:
        """In the hub (or :meth:`flush`): tell the peer how many messages this side took off the link."""
        self._timer.stop()  # (one ACK per window; the next message arms it again)
        conn = self._conn
        if not conn.closed:
            self.armed = False
        count = conn.messages_in
        if conn.closed or count == self.sent:
            return
        self.sent = count
        try:
            conn.send_frame(conn.encoder.encode(Ack(count)))
        except LinkDown:
            pass


def report_unconfirmed(conn: Any, reason: Any) -> int:
    """The messages of link ``conn``, gone down for ``reason``, that its peer
    did not acknowledge (0 when the peer claims more), logged once (a WARNING;
    INFO at the node's shutdown). Stops the link's :class:`Acknowledger`."""
    if conn.acknowledger is not None:
        conn.acknowledger.close()
    handed: int = conn.outbound.handed
    n: int = max(0, handed - conn.inbound.acked)
    if n:
        why = reason if isinstance(reason, str) else type(reason).__name__
        log.log(
            logging.INFO if reason == "shutdown" else logging.WARNING,
            "link %s -> %s down (%s): %d of the %d messages sent on it unconfirmed (lost, or delivered "
            "within the last ack interval)",
            conn.local.name, conn.peer_name, why, n, handed,
        )  # fmt: skip
    return n
