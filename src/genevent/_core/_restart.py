"""Restart policies for handlers, modelled on OTP supervisors' child restart types.

``"temporary"`` (the default, gen_event's own behaviour): a handler that leaves is gone.
``"transient"``: re-added after it crashed or returned a bad value.
``"permanent"``: re-added after that, and after it removed itself (``Remove()``).
Never after ``delete_handler``, ``stop``, a swap, or its owner's end.

A restarted handler is added again at the front with its original class and arguments (its
state is lost unless ``init`` rebuilds it) and keeps its owner and ``on_exit``. The intensity
limit (at most ``max_restarts`` within ``period`` seconds, OTP's ``intensity``/``period``) ends
it for good: then its owner is told, with the reason it last left for.

This module is sans-I/O: the clock is a plain number the caller passes in.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Literal, TypeAlias

from ._reasons import BadReturn, Crashed, ExitReason, RemovedItself, StartFailed

__all__ = ("RESTART_POLICIES", "Intensity", "Restart", "RestartPolicy", "restart_spec")

RestartPolicy: TypeAlias = Literal["permanent", "transient", "temporary"]
"""When a handler that left is added again (see the module docstring)."""

RESTART_POLICIES: tuple[RestartPolicy, ...] = ("permanent", "transient", "temporary")

DEFAULT_MAX_RESTARTS = 3
DEFAULT_PERIOD = 5.0
RETRY_DELAY = 0.1
"""Seconds before the first retry of a restart whose ``init`` failed (then doubling)."""


class Intensity:
    """At most ``max_restarts`` restarts within any ``period`` seconds (OTP's restart
    intensity). Times are whatever clock the caller uses, as long as it does not go back."""

    __slots__ = ("max_restarts", "period", "times")

    def __init__(self, max_restarts: int, period: float) -> None:
        self.max_restarts = max_restarts
        self.period = period
        self.times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        """Whether one more restart at ``now`` is within the limit (and if so, count it)."""
        times = self.times
        while times and times[0] <= now - self.period:
            times.popleft()
        if len(times) >= self.max_restarts:
            return False
        times.append(now)
        return True


class Restart:
    """A handler's restart policy, its original arguments and its intensity so far."""

    __slots__ = ("args", "failures", "intensity", "policy", "restarts")

    def __init__(self, policy: RestartPolicy, args: Any, intensity: Intensity) -> None:
        self.policy = policy
        self.args = args
        self.intensity = intensity
        #: how many restarts were attempted (one whose ``init`` failed counts)
        self.restarts = 0
        #: restart attempts in a row whose ``init`` failed (0 once one succeeds)
        self.failures = 0

    def delay(self) -> float:
        """How long to wait before the next attempt after ``failures`` failed ones: 0.1 s,
        doubling, each delay capped at ``period / (max_restarts + 1)`` so that the intensity
        limit is always reached (the attempts never spread out beyond one period)."""
        cap = self.intensity.period / (self.intensity.max_restarts + 1)
        return min(RETRY_DELAY * 2.0 ** max(self.failures - 1, 0), cap)

    def wants(self, reason: ExitReason) -> bool:
        """Whether leaving for ``reason`` calls for a restart under this policy."""
        cls = type(reason)
        if cls is Crashed or cls is BadReturn or cls is StartFailed:
            return True  # transient and permanent alike
        return cls is RemovedItself and self.policy == "permanent"


def restart_spec(
    policy: str, args: Any, max_restarts: int = DEFAULT_MAX_RESTARTS, period: float = DEFAULT_PERIOD
) -> Restart | None:
    """Check the user's restart options (``TypeError``/``ValueError`` before anything runs) and
    make the handler's :class:`Restart`, or ``None`` for ``"temporary"``."""
    if (  # the usual options (add_handler's defaults): every check below passes, so say so
        policy == "temporary"
        and max_restarts.__class__ is int
        and period.__class__ is float
        and max_restarts >= 0
        and period > 0.0  # (False for NaN)
    ):
        return None
    if policy not in RESTART_POLICIES:
        raise ValueError(
            f"restart must be one of {', '.join(map(repr, RESTART_POLICIES))}, not {policy!r}"
        )
    if isinstance(max_restarts, bool) or not isinstance(max_restarts, int):
        raise TypeError(f"max_restarts must be an int, not {type(max_restarts).__name__}")
    if max_restarts < 0:
        raise ValueError(f"max_restarts must be >= 0, not {max_restarts}")
    if isinstance(period, bool) or not isinstance(period, (int, float)):
        raise TypeError(f"restart_period must be a number, not {type(period).__name__}")
    if math.isnan(period) or period <= 0:
        raise ValueError(f"restart_period must be > 0, not {period}")
    if policy == "temporary":
        return None
    return Restart(policy, args, Intensity(max_restarts, float(period)))
