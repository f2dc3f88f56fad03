"""Keeping a loop at a fixed rate: one small object, not ``sleep`` calls sprinkled about.

Every real backend's ``sync(period_s)`` (and the actor's ``--max-hz``) waits here.
"""

from __future__ import annotations

import time
from typing import Callable


class Rate:
    """Keeps a loop at ``hz`` (0: unlimited) by sleeping to absolute deadlines; never bursts to catch up.

    A late iteration starts the schedule over from now instead of running the missed periods
    back to back (a robot must not receive a burst of commands). ``clock`` and ``sleep`` are
    injectable for tests.
    """

    def __init__(self, hz: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if hz < 0:
            raise ValueError(f"rate must be >= 0 Hz (0: unlimited), got {hz}")
        self.period = 1.0 / hz if hz > 0 else 0.0
        self._clock, self._sleep = clock, sleep
        self.deadline = clock() + self.period
        self.late = 0  # iterations that missed their deadline

    def sleep(self) -> None:
        """Wait until the end of the current period."""
        if not self.period:
            return
        now = self._clock()
        if self.deadline > now:
            self._sleep(self.deadline - now)
            self.deadline += self.period
        else:
            self.late += 1
            self.deadline = now + self.period  # late: start over from now
