"""The recovery that leaves the car facing along the track (tasks/car/recovery.py, car_lap's default):
a MuJoCo car placed facing backwards (or across the track) against a wall turns, in forward and
reverse legs, until it faces along the track within the task's tolerance, clear of the walls, without
being put back by the simulator; through car_lap, a crash facing backwards is followed by an episode
that starts facing along the track."""

import math

import numpy as np
import pytest

import robot_rl
from tasks.car.recovery import brake_to_standstill, turn_along_track

PERIOD_S = 0.05


@pytest.fixture(scope="module")
def env():
    env = robot_rl.make("car_lap", track_seed=0)
    env.reset(seed=0)
    yield env
    env.close()


def _place(env, index, lateral_m, heading_rad):
    """The car at rest with its footprint centre ``lateral_m`` left of centreline point ``index``,
    turned ``heading_rad`` from the track direction."""
    task, backend = env.unwrapped.task, env.unwrapped.backend
    centre, yaw = task.track.pose_at(index, lateral_m, heading_rad)
    backend.set_pose(centre - task.arrays.centre_m * np.array([math.cos(yaw), math.sin(yaw)]), yaw)
    return brake_to_standstill(backend, PERIOD_S)


def _where(task, index):
    """The task's localization of the car as the recovery reads it (heading error, lateral, clearance)."""
    at = {"index": np.asarray(index)}

    def where(state):
        at["index"], _, lateral, sin_err, cos_err, clearance = task.arrays.locate_car(
            task._track_arrays, at["index"], state.pos_m, np.asarray(state.yaw_rad), np)
        return math.atan2(float(sin_err), float(cos_err)), float(lateral), float(clearance)

    return where


# facing backwards (and across) near either wall, on straights and in curves of track 0
PLACEMENTS = [(10, 0.45, math.pi), (60, -0.42, math.pi - 0.2), (110, 0.4, -math.pi + 0.3), (150, -0.45, 2.4),
              (30, 0.3, -2.0), (180, 0.42, 1.4)]


@pytest.mark.parametrize("index, lateral_m, heading_rad", PLACEMENTS)
def test_a_car_facing_backwards_against_a_wall_ends_facing_along_the_track(env, index, lateral_m, heading_rad):
    task, backend = env.unwrapped.task, env.unwrapped.backend
    start = _place(env, index, lateral_m, heading_rad)
    where = _where(task, index)
    error_rad, _, clearance_m = where(start)
    assert abs(error_rad) > 1.3 and clearance_m < 0.2  # a hard case: turned away, near a wall
    c = task.config
    state = turn_along_track(backend, where, PERIOD_S, c.recovery_s, c.recovery_speed_m_s, c.recovery_heading_tol_rad)
    error_rad, _, clearance_m = where(state)
    assert abs(error_rad) <= c.recovery_heading_tol_rad  # 0.35 rad = 20 degrees
    assert clearance_m > 0.05  # clear of both walls, so car_lap does not put it back
    assert abs(state.forward_speed_m_s) < 0.05 and abs(state.steering_rad) < 1e-9
    assert np.linalg.norm(state.pos_m - start.pos_m) < 3.0  # driven, not teleported
    assert state.time_s - start.time_s < 12.0


def test_through_car_lap_a_crash_facing_backwards_is_followed_by_an_episode_facing_along(env):
    task = env.unwrapped.task
    env.reset(seed=0)
    _place(env, 60, 0.3, math.pi)
    for _ in range(60):  # drive forward, the wrong way round, at 1 m/s into a wall
        _, _, _, truncated, _ = env.step(np.array([-0.5, 0.6], np.float32))
        if truncated:
            break
    assert truncated and task.tracker.crashed
    crash = env.unwrapped.state
    obs, _ = env.reset()  # no seed: recover and continue
    parts = env.unwrapped.state_layout
    sin_err, cos_err = obs[parts["heading_sin_cos"]]
    assert abs(math.atan2(sin_err, cos_err)) <= task.config.recovery_heading_tol_rad + 1e-6
    assert np.linalg.norm(env.unwrapped.state.pos_m - crash.pos_m) < 3.0
    assert not task.truncated(env.unwrapped.state)


def test_the_recovery_option_is_checked():
    with pytest.raises(ValueError, match="recovery must be one of"):
        robot_rl.make("car_lap", recovery="teleport")
