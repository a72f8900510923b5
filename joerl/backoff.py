"""Back-off between retries: exponential, capped, jittered (the one implementation).

Used by node links (reconnection on the next send), the port mapper client
(registering again after the daemon went away) and cluster-wide name
registration (retries after a lost race).
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays between attempts: exponential, capped, jittered.

    ``delay()`` returns the next wait (``initial``, then times ``factor``
    each failure, at most ``maximum``, each spread by +-``jitter``);
    ``reset()`` after a success.

    Args:
        initial: first delay, seconds.
        maximum: cap, seconds.
        factor: growth per failure.
        jitter: relative spread, 0..1 (so two parties do not retry in lockstep).
        rand: a ``random()``-like source in [0, 1).

    Raises:
        ValueError: the parameters do not describe a growing, capped delay.
    """

    __slots__ = ("initial", "maximum", "factor", "jitter", "_rand", "_next", "failures")

    def __init__(
        self,
        initial: float = 0.05,
        maximum: float = 5.0,
        factor: float = 2.0,
        jitter: float = 0.2,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial <= maximum or factor < 1 or not 0 <= jitter < 1:
            raise ValueError("need 0 < initial <= maximum, factor >= 1, 0 <= jitter < 1")
        self.initial, self.maximum, self.factor, self.jitter = initial, maximum, factor, jitter
        self._rand = rand
        self._next = initial
        #: Consecutive failures since the last reset.
        self.failures = 0

    def delay(self) -> float:
        """The wait before the next attempt (call once per failure)."""
        base = self._next
        self._next = min(self.maximum, base * self.factor)
        self.failures += 1
        return base * (1 + self.jitter * (2 * self._rand() - 1))

    def reset(self) -> None:
        """After a success: the next failure waits ``initial`` again."""
        self._next = self.initial
        self.failures = 0
