"""Every registered env passes the conformance suite, for state and pixel observations."""

import gymnasium as gym
import numpy as np
import pytest

import robot_rl
from robot_rl.testing import check_conformance

@pytest.mark.parametrize("obs", ["state", "pixels"])
@pytest.mark.parametrize("task", sorted(robot_rl.tasks()))
def test_conformance(task, obs):
    """Every registered task on its family's sim backend; the task's hold action makes no
    progress, so holding still must end the episode by truncation."""
    options = {"image_height": 48, "image_width": 48} if obs == "pixels" else {}
    probe = robot_rl.make(task, obs=obs, **options)
    hold = probe.unwrapped.task.hold_action(probe.unwrapped.backend.spec)
    probe.close()
    check_conformance(lambda: robot_rl.make(task, obs=obs, **options), hold, steps=25)


def test_gymnasium_make_matches_robot_rl_make():
    env = gym.make("robot_rl/PickCube-v0", obs="pixels", image_height=32, image_width=40)
    try:
        obs, info = env.reset(seed=0)
        assert obs["front"].shape == (32, 40, 3) and obs["wrist"].dtype == np.uint8
        assert obs["state"].shape == env.observation_space["state"].shape
        assert info == {"success": False}
    finally:
        env.close()


def test_state_layout_names_the_parts():
    env = robot_rl.make("pick_cube")
    try:
        obs, _ = env.reset(seed=1)
        parts = env.unwrapped.state_layout
        assert list(parts) == ["tcp_pos_m", "tcp_linvel_m_s", "gripper_width_m", "cube_pos_m", "cube_minus_tcp_m"]
        cube = env.unwrapped.state.objects["cube"][:3]
        np.testing.assert_allclose(obs[parts["cube_pos_m"]], cube, atol=1e-6)
        np.testing.assert_allclose(obs[parts["cube_minus_tcp_m"]], cube - obs[parts["tcp_pos_m"]], atol=1e-6)
    finally:
        env.close()
