"""puck_reach: conformance (state and pixels), the expert, the goal marker, and the xp pattern
(the same array functions under numpy and jax.numpy)."""

import numpy as np
import pytest

import robot_rl
from robot_rl.testing.expert import run_expert
from sim.puck.model import GOAL_MARKER_RADIUS_M
from tasks.puck import reach
from tasks.puck.reach import PuckReachConfig, ReachArrays

# The conformance suite runs on puck_reach with every registered task (tests/robot_rl/test_env_conformance.py).


def test_expert_reaches_the_goal_in_20_of_20_seeded_episodes():
    env = robot_rl.make("puck_reach")
    try:
        results = [run_expert(env, seed) for seed in range(20)]
    finally:
        env.close()
    assert [r[0] for r in results] == [True] * 20, results
    for success, terminated, total, steps in results:
        assert terminated and total == 1.0  # sparse: 1 on the terminating success step only
        assert steps < 50, f"expert took {steps} of 100 steps"


def test_dense_reward_is_minus_the_distance():
    env = robot_rl.make("puck_reach", dense_reward=True)
    try:
        obs, _ = env.reset(seed=4)
        parts = env.unwrapped.state_layout
        obs, reward, *_ = env.step(np.array([0.3, -0.2], dtype=np.float32))
        assert reward == pytest.approx(-np.linalg.norm(obs[parts["goal_minus_pos_m"]]), abs=1e-6)
    finally:
        env.close()


def test_state_layout_and_goal_are_the_tasks():
    env = robot_rl.make("puck_reach")
    try:
        obs, _ = env.reset(seed=1)
        parts, task, state = env.unwrapped.state_layout, env.unwrapped.task, env.unwrapped.state
        assert list(parts) == ["pos_m", "vel_m_s", "goal_minus_pos_m"]
        np.testing.assert_allclose(obs[parts["pos_m"]], state.pos_m, atol=1e-6)
        np.testing.assert_allclose(obs[parts["goal_minus_pos_m"]], task.goal_m - state.pos_m, atol=1e-6)
        assert np.linalg.norm(task.goal_m - state.pos_m) >= task.config.min_goal_distance_m - 1e-9
        assert np.all(state.vel_m_s == 0.0)
    finally:
        env.close()


def _green_centroid_m(image, camera_half_width_m):
    """Table (x, y) of the goal marker's green pixels in the top image (image up = +x, right = -y)."""
    rgb = image.astype(int)
    rows, cols = np.nonzero((rgb[..., 1] > 120) & (rgb[..., 0] < 80) & (rgb[..., 2] < 100))
    assert rows.size > 0, "no goal marker pixels in the image"
    h, w = image.shape[:2]
    x = -((rows.mean() + 0.5) / h - 0.5) * 2 * camera_half_width_m
    y = -((cols.mean() + 0.5) / w - 0.5) * 2 * camera_half_width_m
    return np.array([x, y])


def test_pixels_show_the_goal_where_the_task_put_it():
    env = robot_rl.make("puck_reach", obs="pixels", image_height=96, image_width=96)
    try:
        for seed in (0, 1, 2):
            obs, _ = env.reset(seed=seed)
            assert list(env.unwrapped.state_layout) == ["pos_m", "vel_m_s"]  # the goal is seen, not told
            cam = env.unwrapped.backend.model.camera("top")
            half_width = float(cam.pos[2]) * np.tan(np.radians(float(cam.fovy[0])) / 2)
            found = _green_centroid_m(obs["top"], half_width)
            np.testing.assert_allclose(found, env.unwrapped.task.goal_m, atol=GOAL_MARKER_RADIUS_M)
    finally:
        env.close()


def test_config_rejects_a_goal_that_a_resting_puck_could_reach():
    with pytest.raises(ValueError, match="min_goal_distance_m"):
        PuckReachConfig(goal_tolerance_m=0.2, min_goal_distance_m=0.1)
    env = robot_rl.make("puck_reach", spawn_low_m=(-0.45, -0.45), spawn_high_m=(0.45, 0.45))
    try:
        with pytest.raises(ValueError, match="can reach only"):
            env.reset(seed=0)
    finally:
        env.close()


# ---------------------------------------------------------------------- the xp pattern
def _inputs(rng, batch):
    shape = (*batch, 2)
    pos = rng.uniform(-0.4, 0.4, shape).astype(np.float32)
    goal = rng.uniform(-0.4, 0.4, shape).astype(np.float32)
    vel = rng.uniform(-0.1, 0.1, shape).astype(np.float32)
    if batch:  # the first of each batch row succeeds: on the goal and slow
        goal[..., 0, :] = pos[..., 0, :] + 0.005
        vel[..., 0, :] = 0.01
    return pos, vel, goal


@pytest.mark.parametrize("batch", [(), (64,), (4, 8)])
@pytest.mark.parametrize("dense", [False, True])
def test_array_functions_agree_under_numpy_and_jax(batch, dense):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    arrays = ReachArrays(PuckReachConfig(dense_reward=dense))
    rng = np.random.default_rng(0)
    pos, vel, goal = _inputs(rng, batch)
    uniform = rng.uniform(size=(*batch, 2, 2)).astype(np.float32)
    if batch:  # a goal drawn on the puck is pushed out to min_goal_distance_m
        uniform[..., 0, 1, :] = uniform[..., 0, 0, :]
    as_jax = [jnp.asarray(a) for a in (pos, vel, goal)]
    for name in ("observe", "reward", "success", "expert"):
        ours, theirs = getattr(arrays, name)(pos, vel, goal, np), getattr(arrays, name)(*as_jax, jnp)
        assert ours.shape == theirs.shape == np.shape(theirs)
        np.testing.assert_allclose(np.asarray(theirs), ours, rtol=1e-6, atol=1e-7, err_msg=name)
    if batch:
        assert arrays.success(pos, vel, goal, np)[..., 0].all() and not arrays.success(pos, vel, goal, np).all()
    for ours, theirs in zip(arrays.initial(uniform, np), jax.jit(lambda u: arrays.initial(u, jnp))(uniform)):
        np.testing.assert_allclose(np.asarray(theirs), ours, rtol=1e-6, atol=1e-6)
    pos0, goal0 = arrays.initial(uniform, np)
    assert np.all(np.linalg.norm(goal0 - pos0, axis=-1) >= arrays.config.min_goal_distance_m - 1e-6)


def test_array_functions_run_batched_under_jit_and_vmap():
    jax = pytest.importorskip("jax")
    arrays = ReachArrays(PuckReachConfig())
    pos, vel, goal = _inputs(np.random.default_rng(1), (32,))
    batched = jax.jit(lambda p, v, g: arrays.reward(p, v, g, jax.numpy))(pos, vel, goal)
    mapped = jax.vmap(lambda p, v, g: reach.reward_arrays(p, v, g, 0.02, 0.05, False, jax.numpy))(pos, vel, goal)
    np.testing.assert_array_equal(np.asarray(batched), np.asarray(mapped))
    np.testing.assert_array_equal(np.asarray(batched), arrays.reward(pos, vel, goal, np))
