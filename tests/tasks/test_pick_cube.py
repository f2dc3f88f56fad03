"""pick_cube: the expert, the reward/termination semantics and the reset distribution."""

import numpy as np
import pytest

import robot_rl
from robot_rl.testing.expert import run_expert
from tasks.arm.pick_cube import PickCube, PickCubeConfig


def test_expert_succeeds_at_least_95_percent_of_100_seeded_resets():
    env = robot_rl.make("pick_cube")
    try:
        results = [run_expert(env, seed) for seed in range(100)]
    finally:
        env.close()
    successes = sum(r[0] for r in results)
    assert successes >= 95, f"expert succeeded in {successes}/100"
    # Sparse reward: exactly 1 on the (terminating) success step, 0 otherwise.
    for success, terminated, total, _ in results:
        assert total == (1.0 if success else 0.0)
        assert terminated == success or not success


def test_dense_reward_shapes_progress_and_keeps_success_at_one():
    env = robot_rl.make("pick_cube", dense_reward=True)
    try:
        env.reset(seed=5)
        task = env.unwrapped.task
        rewards = []
        while True:
            _, reward, terminated, truncated, info = env.step(task.expert(env.unwrapped.state))
            rewards.append(reward)
            if terminated or truncated:
                break
        assert info["success"] and rewards[-1] == 1.0
        assert 0.0 < rewards[0] < rewards[-2] < 1.0  # closer and lifting pays more
    finally:
        env.close()


def test_reset_distribution_is_seeded_and_covers_the_ranges():
    env = robot_rl.make("pick_cube")
    try:
        cubes = []
        for seed in range(12):
            env.reset(seed=seed)
            cubes.append(env.unwrapped.state.objects["cube"][:3].copy())
            tcp = env.unwrapped.state.tcp_pos_m
            assert 0.19 < tcp[2] < 0.36, "start TCP height outside the configured range"
        cubes = np.array(cubes)
        cfg = PickCubeConfig()
        assert np.all(cubes[:, :2] >= np.array(cfg.cube_low_m) - 1e-3) and np.all(cubes[:, :2] <= np.array(cfg.cube_high_m) + 1e-3)
        assert np.ptp(cubes[:, 0]) > 0.05 and np.ptp(cubes[:, 1]) > 0.1
        env.reset(seed=3)
        again = env.unwrapped.state.objects["cube"].copy()
        env.reset(seed=3)
        np.testing.assert_array_equal(again, env.unwrapped.state.objects["cube"])
    finally:
        env.close()


def test_executed_action_reports_workspace_clipping():
    env = robot_rl.make("pick_cube")
    try:
        env.reset(seed=0)
        down = np.array([0.0, 0.0, -1.0, 1.0], dtype=np.float32)
        clipped = False
        for _ in range(40):
            _, _, _, _, info = env.step(down)
            clipped |= info["action_clipped"]
        # The TCP stops at the workspace floor; the executed action then asks for less than -1.
        assert clipped
        assert info["executed_action"][2] > -1.0
        assert env.unwrapped.state.tcp_pos_m[2] > env.unwrapped.backend.spec.workspace_low_m[2] - 0.01
    finally:
        env.close()


def test_invalid_config_is_rejected_with_the_field_name():
    with pytest.raises(ValueError, match="max_episode_steps"):
        PickCubeConfig(max_episode_steps=0)
    with pytest.raises(ValueError, match="cube_half_size_m"):
        PickCube(PickCubeConfig(cube_half_size_m=0.05))
