"""Restart intensity (OTP's ``intensity`` and ``period``): the check of the
two settings, and the window of recent restarts that a supervisor holds
them to."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any


def check_intensity(intensity: Any, period: Any) -> None:
    """Raises ValueError unless ``intensity`` is an int >= 0 and ``period`` a
    number of seconds > 0."""
    if isinstance(intensity, bool) or not isinstance(intensity, int) or intensity < 0:
        raise ValueError(f"intensity must be an int >= 0, got {intensity!r}")
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not period > 0:
        raise ValueError(f"period must be a number of seconds > 0, got {period!r}")


class RestartWindow:
    """The times of a supervisor's recent restarts, by its monotonic ``clock``."""

    __slots__ = ("_clock", "_times")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._times: deque[float] = deque()

    def add(self, intensity: int, period: float) -> bool:
        """Count a restart now; False once more than ``intensity`` fall within
        the last ``period`` seconds.

        The window is inclusive, as OTP's: a restart exactly ``period``
        seconds ago still counts; only older ones fall out.

        Args:
            intensity: the most restarts allowed within the window.
            period: the window's length, in seconds.

        Returns:
            True while the supervisor may go on restarting.
        """
        now = self._clock()
        times = self._times
        times.append(now)
        while times and now - times[0] > period:
            times.popleft()
        return len(times) <= intensity
