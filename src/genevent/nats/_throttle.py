"""A token bucket for log lines: a flood of refused frames costs a few lines a second, and
the lines left out are counted and reported in one "N more suppressed" line."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ("Throttle",)


class Throttle:
    """Allows ``rate`` lines a second on average, ``burst`` at once; counts the rest.

    ``clock`` is a monotonic clock in seconds (the event loop's ``time``, say)."""

    __slots__ = ("_clock", "_last", "_tokens", "burst", "rate", "suppressed")

    def __init__(self, clock: Callable[[], float], rate: float = 5.0, burst: float = 10.0) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a throttle needs rate > 0 and burst >= 1")
        self._clock = clock
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = clock()
        #: lines left out since the last one that went through (or since :meth:`take_suppressed`)
        self.suppressed = 0

    def allow(self) -> bool:
        """Whether a line may go out now (if not, it is counted in :attr:`suppressed`)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.suppressed += 1
        return False

    def take_suppressed(self) -> int:
        """How many lines were left out since the last call; resets the count."""
        n, self.suppressed = self.suppressed, 0
        return n
