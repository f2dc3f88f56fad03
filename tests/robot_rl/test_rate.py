"""Rate: absolute deadlines, no catch-up bursts, clear errors (a fake clock, no real sleeping)."""

import pytest

from robot_rl.rate import Rate


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_sleeps_to_absolute_deadlines():
    t = FakeTime()
    rate = Rate(10.0, t.clock, t.sleep)
    for work_s in (0.02, 0.05, 0.0):
        t.now += work_s
        rate.sleep()
    assert t.slept == pytest.approx([0.08, 0.05, 0.1])
    assert t.now == pytest.approx(100.3)  # three periods, whatever each iteration's work took


def test_a_late_iteration_starts_over_instead_of_bursting():
    t = FakeTime()
    rate = Rate(10.0, t.clock, t.sleep)
    t.now += 0.35  # missed three deadlines
    rate.sleep()
    assert t.slept == [] and rate.late == 1
    rate.sleep()
    assert t.slept == pytest.approx([0.1])  # one full period after the late one, no burst


def test_zero_is_unlimited_and_negative_is_refused():
    t = FakeTime()
    Rate(0.0, t.clock, t.sleep).sleep()
    assert t.slept == []
    with pytest.raises(ValueError, match=">= 0 Hz"):
        Rate(-1.0)
