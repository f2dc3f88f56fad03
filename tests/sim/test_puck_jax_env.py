"""The JAX puck vector env: the gymnasium VectorEnv API, seeding, SAME_STEP autoreset laid out
as gymnasium's SyncVectorEnv lays out RobotEnv puck envs, terminal observations, walls, domain
randomization, and clear refusals."""

import gymnasium as gym
import numpy as np
import pytest

jax = pytest.importorskip("jax")

import robot_rl
from robot_rl import registry
from robot_rl.testing.vector import (
    check_same_step_layout,
    check_seeded_determinism,
    check_step_arrays,
)
from sim.puck.jax_env import JaxPuckConfig, PuckVectorEnv, make_vector_env
from sim.puck.model import euler_step_arrays
from tasks.puck.reach import make_task

SAME_STEP = gym.vector.AutoresetMode.SAME_STEP
# Goals always exactly 0.15 m away (the spawn square is too small to draw them further), success
# within 0.14 m at any speed, 5 steps: a push toward the goal succeeds at step 2, holding still
# truncates at step 5, whatever the seed, in MuJoCo and in JAX alike.
SCENARIO = {"spawn_low_m": (-0.05, -0.05), "spawn_high_m": (0.05, 0.05), "min_goal_distance_m": 0.15,
            "goal_tolerance_m": 0.14, "success_max_speed_m_s": 10.0, "max_episode_steps": 5}


@pytest.fixture(scope="module")
def env8():
    env = make_vector_env(make_task(), "state", num_envs=8)
    yield env
    env.close()


def test_vector_api_shapes_and_dtypes(env8):
    assert isinstance(env8, gym.vector.VectorEnv) and env8.num_envs == 8
    assert env8.metadata["autoreset_mode"] == SAME_STEP
    assert env8.single_observation_space.shape == (6,) and env8.single_action_space.shape == (2,)
    assert env8.observation_space.shape == (8, 6) and env8.action_space.shape == (8, 2)
    assert list(env8.state_layout) == ["pos_m", "vel_m_s", "goal_minus_pos_m"]
    check_step_arrays(env8)


def test_seeded_determinism(env8):
    check_seeded_determinism(env8, lambda: make_vector_env(make_task(), "state", num_envs=8))
def _scenario_actions(task, obs):
    """Env 0 pushes toward its goal (the task's expert), env 1 holds still."""
    pos = obs[:, :2]
    actions = task.arrays.expert(pos, obs[:, 2:4], pos + obs[:, 4:6], np).astype(np.float32)
    actions[1] = 0.0
    return actions


def test_same_step_autoreset_layout_matches_sync_vector_env():
    task, entry, backend_options, _ = registry.make_parts("puck_reach", "jax", "state", dict(SCENARIO))
    ours = registry.load(entry.entry_point)(task, "state", 2, **backend_options)
    theirs = gym.vector.SyncVectorEnv([lambda: robot_rl.make("puck_reach", **SCENARIO)] * 2, autoreset_mode=SAME_STEP)
    try:
        (obs_a, info_a), (obs_b, info_b) = ours.reset(seed=0), theirs.reset(seed=0)
        check_same_step_layout(info_a, info_b, "reset")
        seen = set()
        for t in range(1, 13):
            step_a = ours.step(_scenario_actions(task, obs_a))
            step_b = theirs.step(_scenario_actions(task, obs_b))
            obs_a, obs_b = step_a[0], step_b[0]
            for a, b in zip(step_a[1:4], step_b[1:4]):
                assert a.dtype == b.dtype and a.shape == b.shape
                np.testing.assert_array_equal(a if a.dtype == bool else a > 0, b if b.dtype == bool else b > 0)
            check_same_step_layout(step_a[4], step_b[4], f"step {t}")
            seen |= {("terminated", i) for i in np.flatnonzero(step_a[2])}
            seen |= {("truncated", i) for i in np.flatnonzero(step_a[3])}
            seen |= {"mixed"} if step_a[2].sum() + step_a[3].sum() == 1 else set()
        assert {("terminated", 0), ("truncated", 1), "mixed"} <= seen, seen
    finally:
        ours.close()
        theirs.close()


def test_final_obs_is_the_terminal_observation():
    options = dict(SCENARIO)
    env = make_vector_env(make_task(**options), "state", num_envs=2)
    config, task = env.config, env.task
    obs, _ = env.reset(seed=1)
    first = obs.copy()
    for t in range(1, 6):
        actions = _scenario_actions(task, obs)
        pos, vel = obs[:, :2].astype(np.float64), obs[:, 2:4].astype(np.float64)
        goal = (obs[:, :2] + obs[:, 4:6]).astype(np.float64)
        for _ in range(config.substeps(1 / 20)):  # the terminal obs, integrated here in numpy
            pos, vel = euler_step_arrays(pos, vel, actions * config.max_force_n, config.mass_kg, config.damping_n_s_m,
                                         config.timestep_s, np)
        obs, _, terminated, truncated, info = env.step(actions)
        if t == 2:  # env 0 reached its goal: terminated, reset in the same step
            assert terminated.tolist() == [True, False] and info["_final_obs"].tolist() == [True, False]
            final = info["final_obs"][0]
            np.testing.assert_allclose(final[:2], pos[0], atol=1e-6)
            np.testing.assert_allclose(final[2:4], vel[0], atol=1e-6)
            np.testing.assert_allclose(final[4:6], goal[0] - pos[0], atol=1e-6)
            assert np.linalg.norm(final[4:6]) <= 0.14 and info["final_info"]["success"].tolist() == [True, False]
            assert np.all(obs[0, 2:4] == 0) and not np.allclose(obs[0], final)  # a fresh episode
            assert not info["success"][0] and not info["_executed_action"][0]  # the new episode's reset info
        if t == 5:  # env 1 held still all along: truncated, and its terminal obs is its first
            assert truncated[1] and info["_final_obs"][1]
            np.testing.assert_array_equal(info["final_obs"][1], first[1])
            assert not np.array_equal(obs[1], first[1]) and not info["final_info"]["success"][1]


def test_walls_clip_the_position_and_stop_the_outward_velocity(env8):
    env8.reset(seed=2)
    push = np.tile(np.array([[1.0, -0.05]], np.float32), (8, 1))
    for _ in range(25):
        obs, _, terminated, truncated, _ = env8.step(push)
        assert not (terminated.any() or truncated.any())
    reach = env8.backend_spec.reach_m
    np.testing.assert_allclose(obs[:, 0], reach, rtol=0, atol=1e-6)
    assert np.all(obs[:, 2] == 0.0) and np.all(obs[:, 3] < 0) and np.all(np.abs(obs[:, 1]) < reach)


def test_domain_randomization_stays_in_its_ranges_and_is_redrawn_at_reset():
    ranges = {"mass_range_kg": (0.05, 0.2), "damping_range_n_s_m": (0.1, 1.0), "force_gain_range": (0.5, 1.5)}
    env = make_vector_env(make_task(max_episode_steps=3), "state", num_envs=256, **ranges)
    env.reset(seed=0)
    before = env.dynamics_params
    for (name, (low, high)), values in zip(ranges.items(), before.values()):
        assert np.all((values >= low) & (values <= high)), name
        assert values.std() > 0.2 * (high - low), f"{name} is not spread over its range"
    for _ in range(3):
        env.step(np.zeros((256, 2), np.float32))  # all truncate at step 3 and are reset
    after = env.dynamics_params
    assert all(not np.any(after[name] == before[name]) for name in after)
    nominal = make_vector_env(make_task(), "state", num_envs=8)
    nominal.reset(seed=0)
    assert {k: set(v.tolist()) for k, v in nominal.dynamics_params.items()} == {
        "mass_kg": {np.float32(0.1)}, "damping_n_s_m": {np.float32(0.4)}, "force_gain": {1.0}}


def test_clear_refusals(env8):
    with pytest.raises(ValueError, match="state observations only"):
        make_vector_env(make_task(), "pixels", num_envs=4)
    with pytest.raises(ValueError, match="make_vector"):
        robot_rl.make("puck_reach", backend="jax")
    with pytest.raises(ValueError, match="mass_range_kg"):
        JaxPuckConfig(mass_range_kg=(0.2, 0.1))
    with pytest.raises(ValueError, match="num_envs"):
        make_vector_env(make_task(), "state", num_envs=0)
    with pytest.raises(RuntimeError, match="reset"):
        PuckVectorEnv(make_task(), 8).step(np.zeros((8, 2), np.float32))
    env8.reset(seed=0)
    for bad in (np.zeros((8, 3), np.float32), np.zeros(2, np.float32), np.full((8, 2), np.nan, np.float32)):
        with pytest.raises(ValueError, match=r"\(8, 2\)"):
            env8.step(bad)
