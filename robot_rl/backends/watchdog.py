"""A command watchdog: has a fresh command come recently enough to keep the robot moving?

Every real backend keeps one, sized by its spec's ``watchdog_s``, and stops the robot when it
expires, so a hung policy, a dead learner link or a crashed script never leaves a car driving or
a quadrotor climbing on its last command. The pattern, in the backend::

    def command(self, command):
        sent = self._send(clip_car_command(command, self.spec, self.read_state(), self._last, dt_s))
        self._watchdog.feed()                     # only after a fresh command was really sent
        self._stopped = False
        return sent

    # in the backend's own I/O thread (or at every sync() when it has none):
    if self._watchdog.expired() and not self._stopped:
        self.stop()                               # brake / land; the next command() resumes
        self._stopped = True

Simulators need none: nothing moves between ``sync()`` calls.
"""

from __future__ import annotations

import math
import time
from typing import Callable


class CommandWatchdog:
    """Tracks the age of the newest command against a timeout.

    Args:
        timeout_s: how long a command stays fresh, ``> 0``.
        clock: monotonic seconds; injectable so tests need no sleeps.

    Never fed counts as expired: before its first command a robot should be in its safe state.
    ``feed()`` from one thread and ``expired()`` from another is safe (one float is replaced).
    """

    def __init__(self, timeout_s: float = 0.2, clock: Callable[[], float] = time.monotonic) -> None:
        if not (isinstance(timeout_s, (int, float)) and timeout_s > 0 and math.isfinite(timeout_s)):
            raise ValueError(f"CommandWatchdog.timeout_s must be a finite number > 0, got {timeout_s!r}")
        self.timeout_s = float(timeout_s)
        self._clock = clock
        self._fed_at_s: float | None = None

    def feed(self) -> None:
        """A fresh command was sent: restart the timeout."""
        self._fed_at_s = self._clock()

    def age_s(self) -> float:
        """Seconds since the last ``feed()``; ``inf`` if never fed."""
        fed_at_s = self._fed_at_s
        return math.inf if fed_at_s is None else self._clock() - fed_at_s

    def expired(self) -> bool:
        """Whether the last command is older than ``timeout_s`` (or there was none)."""
        return self.age_s() > self.timeout_s
