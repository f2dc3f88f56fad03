"""CommandWatchdog: freshness of the newest command against a timeout, on an injected clock."""

from __future__ import annotations

import math
import time

import pytest

from robot_rl.backends.watchdog import CommandWatchdog


class FakeClock:
    """Monotonic seconds that move only when a test says so; counts its reads."""

    def __init__(self, now_s: float = 100.0) -> None:
        self.now_s = now_s
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now_s


def test_construction_reads_no_clock_and_never_fed_is_expired():
    clock = FakeClock()
    watchdog = CommandWatchdog(timeout_s=0.2, clock=clock)
    assert clock.reads == 0
    assert watchdog.age_s() == math.inf
    assert watchdog.expired()


def test_expires_strictly_after_the_timeout_and_feed_restarts_it():
    clock = FakeClock()
    watchdog = CommandWatchdog(timeout_s=0.25, clock=clock)
    watchdog.feed()
    assert watchdog.age_s() == 0.0 and not watchdog.expired()
    clock.now_s += 0.25
    assert watchdog.age_s() == pytest.approx(0.25) and not watchdog.expired()
    clock.now_s += 0.125
    assert watchdog.expired()
    watchdog.feed()
    assert not watchdog.expired()
    clock.now_s += 10.0
    assert watchdog.age_s() == pytest.approx(10.0) and watchdog.expired()


def test_defaults_are_the_spec_default_and_a_monotonic_clock():
    watchdog = CommandWatchdog()
    assert watchdog.timeout_s == 0.2
    watchdog.feed()
    assert 0.0 <= watchdog.age_s() < 0.2 and not watchdog.expired()
    assert CommandWatchdog.__init__.__defaults__ == (0.2, time.monotonic)


@pytest.mark.parametrize("timeout_s", [0.0, -0.1, math.nan, math.inf, "0.2"])
def test_rejects_a_timeout_that_is_not_a_positive_finite_number(timeout_s):
    with pytest.raises(ValueError, match=r"CommandWatchdog\.timeout_s must be a finite number > 0, got "):
        CommandWatchdog(timeout_s=timeout_s)
