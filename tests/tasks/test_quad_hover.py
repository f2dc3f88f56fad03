"""quad_hover: the expert (the position controller) in MuJoCo from random starts, the hold action,
the reset distribution, reward/success/crash, the action mapping, and the xp pattern (the same
array functions under numpy and jax.numpy). The conformance suite runs on quad_hover with every
registered task (tests/robot_rl/test_env_conformance.py)."""

import math

import numpy as np
import pytest

import robot_rl
from drivers.quad.rotations import cos_tilt_arrays
from sim.quad.model import QuadPhysics
from tasks.quad.hover import QuadHoverConfig, make_task

SPEC = QuadPhysics().spec()


def test_the_expert_hovers_from_random_starts_in_mujoco():
    """4 seeded episodes, starts tilted up to 90 deg and moving at up to 1 m/s per axis: no crash,
    final-second position error RMS below 2 cm (measured 0.6-5 mm), success at the end."""
    env = robot_rl.make("quad_hover")
    try:
        for seed in range(4):
            obs, _ = env.reset(seed=seed)
            task, errors = env.unwrapped.task, []
            for _ in range(500):
                obs, reward, terminated, truncated, info = env.step(task.expert(env.unwrapped.state))
                assert not terminated and 0 < reward <= 1
                errors.append(np.linalg.norm(obs[:3]))
            rms = math.sqrt(np.mean(np.square(errors[-100:])))
            assert truncated and info["success"] and rms < 0.02, (seed, rms)
    finally:
        env.close()


def test_the_hold_action_hovers_in_place_without_progress():
    env = robot_rl.make("quad_hover", max_episode_steps=300)
    try:
        for seed in (0, 1):
            obs, _ = env.reset(seed=seed)
            start_error = np.linalg.norm(obs[:3])
            hold = env.unwrapped.task.hold_action(env.unwrapped.backend.spec)
            np.testing.assert_array_equal(hold, np.zeros(4))
            for _ in range(300):
                obs, _, terminated, truncated, info = env.step(hold)
                assert not terminated
            state = env.unwrapped.state
            assert truncated and np.linalg.norm(state.vel_m_s) < 0.05 and cos_tilt_arrays(state.quat_wxyz, np) > 0.999
            assert np.linalg.norm(obs[:3]) > 0.05 and not info["success"], (start_error, obs[:3])
    finally:
        env.close()


def test_absolute_actions_hold_a_level_vehicle_with_hover_thrust():
    env = robot_rl.make("quad_hover", fallback_residual=False, max_initial_tilt_rad=0.0, max_initial_speed_m_s=0.0,
                        max_initial_rate_rad_s=0.0, max_episode_steps=100)
    try:
        env.reset(seed=0)
        start = env.unwrapped.state.pos_m
        hold = env.unwrapped.task.hold_action(env.unwrapped.backend.spec)
        assert hold[0] == pytest.approx(2 * QuadPhysics().hover_thrust_frac - 1) and not hold[1:].any()
        for _ in range(100):
            _, _, terminated, truncated, info = env.step(hold)
            assert not terminated
        assert truncated and np.linalg.norm(env.unwrapped.state.pos_m - start) < 1e-3
        np.testing.assert_allclose(info["executed_action"], hold, atol=1e-6)
    finally:
        env.close()


def test_pixels_add_the_onboard_camera():
    env = robot_rl.make("quad_hover", obs="pixels", image_height=32, image_width=48)
    try:
        obs, _ = env.reset(seed=0)
        assert set(obs) == {"state", "fpv"} and obs["fpv"].shape == (32, 48, 3) and obs["state"].shape == (18,)
    finally:
        env.close()


def test_reset_distribution():
    arrays = make_task().arrays_for(SPEC)
    c = arrays.config
    target, pos, quat, vel, rates = arrays.initial(np.random.default_rng(0).uniform(size=(4000, 15)), np)
    assert np.all((target >= c.target_low_m) & (target <= c.target_high_m))
    assert np.all(np.abs(pos - target) <= c.start_offset_m)
    np.testing.assert_allclose(np.linalg.norm(quat, axis=-1), 1.0, rtol=1e-12)
    tilt = np.arccos(np.clip(cos_tilt_arrays(quat, np), -1, 1))
    assert tilt.max() <= math.pi / 2 + 1e-9 and tilt.max() > 0.98 * math.pi / 2
    assert np.abs(vel).max() <= 1.0 and np.abs(vel).max() > 0.99 and np.abs(rates).max() <= 1.0
    assert not arrays.terminated(pos, np).any()


def test_reward_success_and_crash():
    arrays = make_task().arrays_for(SPEC)
    target = np.array([0.0, 0.0, 1.5])
    level, still = np.array([1.0, 0, 0, 0]), np.zeros(3)
    assert arrays.reward(target, level, still, still, target, np) == pytest.approx(1.0)
    assert arrays.success(target + [0.04, 0, 0], still, target, np)
    assert not arrays.success(target + [0.06, 0, 0], still, target, np)
    assert not arrays.success(target, np.array([0.3, 0, 0]), target, np)
    off = arrays.reward(target + [0.5, 0, 0], level, np.array([1.0, 0, 0]), still, target, np)
    assert off == pytest.approx(math.exp(-(0.5 + 0.1)))
    for crashed in ([0, 0, 0.02], [2.1, 0, 1], [0, -2.1, 1], [0, 0, 3.6]):
        assert arrays.terminated(np.array(crashed, float), np)
        assert arrays.reward(np.array(crashed, float), level, still, still, target, np) == -10.0
    assert not arrays.terminated(np.array([1.9, -1.9, 0.05]), np)


def test_action_mapping_round_trip_and_limits():
    actions = make_task().actions_for(SPEC)
    rng = np.random.default_rng(3)
    vel, quat = rng.uniform(-1, 1, (64, 3)), np.tile([0.9, 0.1, -0.2, 0.1], (64, 1)) / np.linalg.norm([0.9, 0.1, -0.2, 0.1])
    action = rng.uniform(-0.3, 0.3, (64, 4))
    collective, rates = actions.to_thrust_rates(action, vel, quat, np)
    assert np.all((collective >= 0) & (collective <= 1)) and np.all(np.abs(rates) <= SPEC.max_body_rate_rad_s)
    inside = (collective > 0) & (collective < 1)
    executed = actions.to_action(collective, rates, vel, quat, np)
    np.testing.assert_allclose(executed[inside], action[inside], atol=1e-12)
    for ours, theirs in zip(actions.to_thrust_rates_and_back(action, vel, quat, np), (collective, rates, executed)):
        np.testing.assert_array_equal(ours, theirs)
    zero_collective, zero_rates = actions.to_thrust_rates(np.zeros(4), vel[0], quat[0], np)
    base = actions.controller.hover_in_place(vel[0], quat[0], np)
    assert zero_collective == pytest.approx(base[0]) and np.allclose(zero_rates, base[1])


def test_config_is_checked():
    with pytest.raises(ValueError, match="inside the fence"):
        QuadHoverConfig(fence_high_m=(2.0, 2.0, 2.2))
    with pytest.raises(ValueError, match="target_low_m"):
        QuadHoverConfig(target_low_m=(0, 0, 2.5), target_high_m=(0, 0, 2.0))
    with pytest.raises(ValueError, match="geofence"):
        QuadHoverConfig(fence_low_m=(-4, -2, 0)).check_fence(SPEC)
    with pytest.raises(RuntimeError, match="reset"):
        make_task().observe(None, "state")


@pytest.mark.parametrize("batch", [(), (64,), (4, 8)])
def test_array_functions_agree_under_numpy_and_jax(batch):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    arrays = make_task().arrays_for(SPEC)
    uniform = np.random.default_rng(1).uniform(size=(*batch, 15)).astype(np.float32)
    action = np.random.default_rng(2).uniform(-1, 1, (*batch, 4)).astype(np.float32)

    def everything(u, a, xp):
        target, pos, quat, vel, rates = arrays.initial(u, xp)
        collective, body_rates = arrays.actions.to_thrust_rates(a, vel, quat, xp)
        return {"initial": (target, pos, quat, vel, rates),
                "observe": arrays.observe(pos, quat, vel, rates, target, xp),
                "reward": arrays.reward(pos, quat, vel, rates, target, xp),
                "success": arrays.success(pos, vel, target, xp), "terminated": arrays.terminated(pos, xp),
                "expert": arrays.expert(pos, quat, vel, target, xp), "actions": (collective, body_rates),
                "executed": arrays.actions.to_action(collective, body_rates, vel, quat, xp)}

    ours = everything(uniform, action, np)
    theirs = jax.jit(lambda u, a: everything(u, a, jnp))(uniform, action)
    for name in ours:
        for a, b in zip(jax.tree.leaves(ours[name]), jax.tree.leaves(theirs[name])):
            assert np.shape(a) == np.shape(b), name
            np.testing.assert_allclose(np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64), rtol=1e-4,
                                       atol=1e-5, err_msg=name)
    assert ours["observe"].shape == (*batch, 18)
