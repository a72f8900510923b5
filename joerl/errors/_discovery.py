"""Errors of discovery: what a beacon reader refuses."""

from __future__ import annotations

from ._wire import RemoteProtocolError


class BeaconError(RemoteProtocolError):
    """A discovery beacon was refused: malformed, too large, not signed with our
    cookie, too old or from the future, or a replay.

    Attributes:
        reason: why, one of ``size``, ``format``, ``signature``, ``time``, ``replay``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"beacon refused ({reason})" + (f": {detail}" if detail else ""))
        self.reason = reason
