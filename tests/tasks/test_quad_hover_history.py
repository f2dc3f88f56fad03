"""quad_hover's ``action_history_steps``: the last k executed actions, newest first, end the
observation, in MuJoCo (RobotEnv) and in the JAX env alike, from one array function."""

import jax.numpy as jnp
import numpy as np
import pytest

import robot_rl
from tasks.quad.hover import QuadHoverConfig, observe_arrays, push_action_history_arrays


def test_push_puts_the_newest_action_first_and_drops_the_oldest():
    history = np.arange(12, dtype=np.float32).reshape(3, 4)
    action = np.full(4, -1.0, np.float32)
    for xp in (np, jnp):
        pushed = np.asarray(push_action_history_arrays(xp.asarray(history), xp.asarray(action), xp))
        np.testing.assert_array_equal(pushed, np.concatenate([action[None], history[:2]]))


def test_the_history_ends_the_observation_under_numpy_and_jax():
    rng = np.random.default_rng(0)
    pos, target, vel, rates = (rng.normal(size=(5, 3)).astype(np.float32) for _ in range(4))
    quat = rng.normal(size=(5, 4)).astype(np.float32)
    quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
    history = rng.uniform(-1, 1, (5, 2, 4)).astype(np.float32)
    ours = observe_arrays(pos, quat, vel, rates, target, np, history)
    theirs = observe_arrays(*(jnp.asarray(a) for a in (pos, quat, vel, rates, target)), jnp, jnp.asarray(history))
    assert ours.shape == (5, 26)
    np.testing.assert_allclose(ours, np.asarray(theirs), atol=1e-6)
    np.testing.assert_array_equal(ours[:, 18:], history.reshape(5, 8))
    np.testing.assert_array_equal(ours[:, :18], observe_arrays(pos, quat, vel, rates, target, np))


def test_mujoco_env_shows_the_executed_actions_newest_first():
    env = robot_rl.make("quad_hover", action_history_steps=2)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (26,) and env.unwrapped.state_layout["action_history"] == slice(18, 26)
        np.testing.assert_array_equal(obs[18:], 0.0)
        executed = []
        for action in ([0.1, 0.2, -0.3, 0.0], [2.0, 0.0, 0.5, -0.5]):  # the second is clipped to [-1, 1]
            obs, _, _, _, info = env.step(np.asarray(action, np.float32))
            executed.insert(0, info["executed_action"])
        np.testing.assert_allclose(obs[18:22], executed[0], atol=1e-6)
        np.testing.assert_allclose(obs[22:26], executed[1], atol=1e-6)
        assert executed[0][0] <= 1.0
        obs, _ = env.reset(seed=1)
        np.testing.assert_array_equal(obs[18:], 0.0)
    finally:
        env.close()


def test_jax_env_shows_the_executed_actions_newest_first():
    envs = robot_rl.make_vector("quad_hover", backend="jax", num_envs=4, action_history_steps=2)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (4, 26) and np.all(obs[:, 18:] == 0.0)
    actions = np.random.default_rng(0).uniform(-0.2, 0.2, (2, 4, 4)).astype(np.float32)
    _, _, _, _, first = envs.step(actions[0])
    obs, _, terminated, truncated, second = envs.step(actions[1])
    running = ~(terminated | truncated)
    np.testing.assert_allclose(obs[running, 18:22], second["executed_action"][running], atol=1e-6)
    np.testing.assert_allclose(obs[running, 22:26], first["executed_action"][running], atol=1e-6)


def test_a_bad_history_length_is_refused():
    with pytest.raises(ValueError, match="action_history_steps"):
        QuadHoverConfig(action_history_steps=-1)
