"""Aligning message streams to the control rate: zero-order hold, never a later message, stale ticks split."""

import numpy as np
import pytest

from drivers.ros2.bag_align import (END, SPLIT, START, Boundary, align, bool_boundaries, episode_ids, held,
                                    split_boundaries, tick_grid)

MS = 1_000_000


def test_hold_picks_the_newest_message_at_or_before_each_tick_never_a_later_one():
    times = np.array([0, 10, 20, 35]) * MS
    ticks = np.array([-1, 0, 5, 10, 19, 20, 34, 35, 60]) * MS
    index = held(times, ticks, max_age_ns=30 * MS)
    np.testing.assert_array_equal(index, [-1, 0, 0, 1, 1, 2, 2, 3, 3])
    for tick, i in zip(ticks, index):
        if i >= 0:
            assert times[i] <= tick and (i + 1 == len(times) or times[i + 1] > tick)


def test_a_held_message_older_than_its_max_age_is_stale():
    times = np.array([0, 100]) * MS
    np.testing.assert_array_equal(held(times, np.array([20, 21, 100]) * MS, 20 * MS), [0, -1, 1])


def test_the_grid_starts_when_every_required_stream_has_spoken():
    grid = tick_grid({"a": np.array([0, 50]) * MS, "b": np.array([12, 30]) * MS}, ["a", "b"], 10 * MS)
    np.testing.assert_array_equal(grid, np.array([12, 22, 32, 42]) * MS)
    assert len(tick_grid({"a": np.array([0]), "b": np.zeros(0, np.int64)}, ["a", "b"], 10)) == 0
    with pytest.raises(ValueError, match="positive"):
        tick_grid({"a": np.array([0])}, ["a"], 0)


def test_a_stale_required_stream_splits_the_run_and_an_optional_one_is_left_out():
    period = 10 * MS
    state = np.arange(0, 200, 10) * MS
    state = state[(state < 60 * MS) | (state > 100 * MS)]  # no message from 50 to 110 ms
    command = np.arange(1, 200, 10) * MS
    imu = np.array([0, 5]) * MS  # speaks twice, then never again
    segments, report = align({"state": state, "cmd": command, "imu": imu}, ["state", "cmd"], period,
                             {"state": 15 * MS, "cmd": 15 * MS, "imu": 15 * MS})
    assert [len(s.ticks_ns) for s in segments] == [7, 9]  # ticks 71..101 ms hold a state older than 15 ms
    assert report.ticks == 20 and report.used == 16 and report.stale == {"state": 4, "cmd": 0}
    first = segments[0]
    np.testing.assert_array_equal(first.ticks_ns, np.arange(1, 70, 10) * MS)
    np.testing.assert_array_equal(first.picks["state"], np.arange(7).clip(max=5))
    np.testing.assert_array_equal(first.picks["imu"], [0, 1, -1, -1, -1, -1, -1])
    assert all(np.all(np.diff(s.ticks_ns) == period) for s in segments)  # a stored step never spans a hole


def test_bool_markers_start_and_end_episodes_and_empty_ones_split():
    ticks = np.arange(0, 100, 10)
    bools = bool_boundaries(np.array([15, 20, 42, 61]), [True, True, False, True])
    assert [(b.time_ns, b.kind) for b in bools] == [(15, START), (42, END), (61, START)]
    np.testing.assert_array_equal(episode_ids(ticks, bools), [-1, -1, 1, 1, 1, -1, -1, 3, 3, 3])
    np.testing.assert_array_equal(episode_ids(ticks, [Boundary(42, END)]), [0, 0, 0, 0, 0, -1, -1, -1, -1, -1])
    np.testing.assert_array_equal(episode_ids(ticks, split_boundaries(np.array([30, 70]))),
                                  [0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    with pytest.raises(ValueError, match="kind"):
        Boundary(0, "pause")
    assert SPLIT == "split"


def test_runs_break_at_boundaries_and_a_lone_tick_is_no_episode():
    times = np.arange(0, 100, 10)
    segments, report = align({"s": times}, ["s"], 10, {"s": 5}, split_boundaries(np.array([30, 40])))
    assert [s.ticks_ns.tolist() for s in segments] == [[0, 10, 20], [40, 50, 60, 70, 80, 90]]
    assert report.lone == 1 and report.used == 9
