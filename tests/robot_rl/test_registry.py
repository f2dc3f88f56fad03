"""make(), the gymnasium registration and their errors."""

import numpy as np
import pytest

import robot_rl
from robot_rl.registry import TaskEntry, lookup, split_overrides


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown task 'pick_sphere'; known tasks: \['pick_cube'"):
        robot_rl.make("pick_sphere")


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"no backend 'franka'; known backends: \['sim'\]"):
        robot_rl.make("pick_cube", backend="franka")


def test_unknown_obs_mode_and_option_are_named():
    with pytest.raises(ValueError, match="unknown obs mode 'depth'"):
        robot_rl.make("pick_cube", obs="depth")
    with pytest.raises(ValueError, match="unknown option 'dense_rewards'.*dense_reward"):
        robot_rl.make("pick_cube", dense_rewards=True)


def test_overrides_reach_task_backend_and_env():
    env = robot_rl.make("pick_cube", obs="pixels", max_episode_steps=7, physics_hz=250.0, image_height=24, control_hz=5.0)
    try:
        u = env.unwrapped
        assert u.task.max_episode_steps == 7 and u.control_hz == 5.0
        assert u.backend.config.physics_hz == 250.0
        assert env.observation_space["front"].shape == (24, 128, 3)
    finally:
        env.close()


def test_spaces_are_known_before_the_backend_connects():
    env = robot_rl.make("pick_cube", obs="pixels")
    assert not env.unwrapped.backend.connected
    assert env.action_space.shape == (4,)
    assert set(env.observation_space.spaces) == {"state", "front", "wrist"}
    assert env.unwrapped.observation_spec()["state"]["parts"]["tcp_pos_m"] == [0, 3]


def test_step_before_reset_and_wrong_actions_raise_clearly():
    env = robot_rl.make("pick_cube")
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([0.0, np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match="float array"):
        env.step("up")
    env.close()


def test_register_a_third_party_task():
    robot_rl.register(TaskEntry("pick_cube_dense", "tasks.pick_cube:make_env", ("sim",), "pick_cube, dense reward"))
    assert lookup("pick_cube_dense").gym_id == "robot_rl/PickCubeDense-v0"
    env = robot_rl.make("pick_cube_dense", dense_reward=True)
    env.close()


def test_split_overrides_routes_by_field_name():
    routed = split_overrides({"a": 1, "b": 2}, first=("a",), second=("b", "c"))
    assert routed == {"first": {"a": 1}, "second": {"b": 2}}
