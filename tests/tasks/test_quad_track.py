"""quad_track: the figure-eight reference, the reset distribution, reward/success on tracking errors,
the metrics, the expert (position controller with feed-forward) in MuJoCo and in the JAX env, and
the xp pattern (the same array functions under numpy and jax.numpy). The conformance suite runs on
quad_track's defaults with every registered task (tests/robot_rl/test_env_conformance.py); here on
the variant with look-ahead and action history."""

import math

import numpy as np
import pytest

import robot_rl
from robot_rl.testing import check_conformance
from sim.quad.model import QuadPhysics
from tasks.quad.track import QuadTrackConfig, make_task, reference_arrays, tracking_metrics

SPEC = QuadPhysics().spec()


def test_the_reference_is_a_closed_figure_eight_of_the_configured_size_and_period():
    centre, amplitude, period = np.array([0.2, -0.1, 1.7]), (0.8, 0.3), 4.0
    t = np.linspace(0.0, period, 4001)
    pos, vel, acc = reference_arrays(centre, 0.0 * t, t, amplitude, period, np)
    np.testing.assert_allclose(pos[-1], pos[0], atol=1e-12)  # closed after one period
    half = reference_arrays(centre, 0.0, period / 2, amplitude, period, np)[0]
    np.testing.assert_allclose(half, centre, atol=1e-12)  # ... crossing itself at the centre halfway
    np.testing.assert_allclose(pos[0], centre, atol=1e-12)
    span = pos.max(axis=0) - pos.min(axis=0)
    np.testing.assert_allclose(span, [1.6, 0.6, 0.0], atol=1e-6)  # 2 ax wide, 2 ay deep, level
    # x turns once, y twice per period (Lissajous 1:2): count the sign changes of each velocity
    assert np.count_nonzero(np.diff(np.sign(vel[:, 0])) != 0) == 2
    assert np.count_nonzero(np.diff(np.sign(vel[:, 1])) != 0) == 4
    dt = t[1] - t[0]
    np.testing.assert_allclose(np.gradient(pos, dt, axis=0)[1:-1], vel[1:-1], atol=1e-4)
    np.testing.assert_allclose(np.gradient(vel, dt, axis=0)[1:-1], acc[1:-1], atol=1e-3)
    later = reference_arrays(centre, 0.5, 0.0, amplitude, period, np)[0]  # the phase shifts along the curve
    np.testing.assert_allclose(later, reference_arrays(centre, 0.0, 0.5 * period / (2 * math.pi), amplitude,
                                                       period, np)[0], atol=1e-12)


def test_reset_distribution_starts_around_the_first_reference_point():
    arrays = make_task(random_phase=True, target_low_m=(-0.2, -0.2, 1.4), target_high_m=(0.2, 0.2, 1.8)).arrays_for(SPEC)
    c = arrays.config
    episode, pos, quat, vel, rates = arrays.initial(np.random.default_rng(0).uniform(size=(4000, 16)), np)
    centre, phase = episode[:, :3], episode[:, 3]
    assert np.all((centre >= c.target_low_m) & (centre <= c.target_high_m))
    assert phase.min() >= 0 and phase.max() < 2 * math.pi and phase.max() - phase.min() > 6.0
    first = reference_arrays(centre, phase, 0.0 * phase, c.amplitude_m, c.period_s, np)[0]
    assert np.all(np.abs(pos - first) <= c.start_offset_m) and np.abs(pos - first).max() > 0.29
    assert np.abs(vel).max() <= c.max_initial_speed_m_s and not arrays.terminated(pos, np).any()
    fixed = make_task(phase_rad=1.0).arrays_for(SPEC).initial(np.random.default_rng(1).uniform(size=(8, 16)), np)[0]
    np.testing.assert_array_equal(fixed[:, 3], 1.0)


def test_reward_and_success_score_the_tracking_errors():
    arrays = make_task().arrays_for(SPEC)
    goal = np.array([0.0, 0.0, 1.5, 0.0, 0.75])  # centre, phase, 0.75 s in
    ref_pos, ref_vel, _ = arrays.reference(goal, np)
    level, still = np.array([1.0, 0, 0, 0]), np.zeros(3)
    assert np.linalg.norm(ref_vel) > 0.5
    assert arrays.reward(ref_pos, level, ref_vel, still, goal, np) == pytest.approx(1.0)
    assert arrays.success(ref_pos + [0.09, 0, 0], ref_vel, goal, np)
    assert not arrays.success(ref_pos + [0.11, 0, 0], ref_vel, goal, np)
    assert not arrays.success(ref_pos, still, goal, np)  # on the point but not moving with it
    off = arrays.reward(ref_pos + [0.5, 0, 0], level, ref_vel + [1.0, 0, 0], still, goal, np)
    assert off == pytest.approx(math.exp(-(0.5 + 0.1)))
    assert arrays.reward(np.array([0, 0, 0.02]), level, still, still, goal, np) == -10.0


def test_tracking_metrics():
    errors = np.r_[np.linspace(0.5, 0.05, 150), np.full(250, 0.04)]
    m = tracking_metrics(errors, 0.01, 2.0, 0.1, crashed=False)
    assert m["rms_m"] == pytest.approx(0.04) and m["max_m"] == pytest.approx(0.04) and m["crashed"] == 0.0
    settled = np.flatnonzero(errors > 0.1)[-1]
    assert m["settle_s"] == pytest.approx(0.01 * (settled + 1))
    assert math.isnan(tracking_metrics(errors[::-1], 0.01, 2.0, 0.1, crashed=False)["settle_s"])
    brief = np.r_[np.full(350, 0.5), np.full(50, 0.05)]  # within for the last 0.5 s only: not settled
    assert math.isnan(tracking_metrics(brief, 0.01, 2.0, 0.1, crashed=False)["settle_s"])
    assert tracking_metrics(brief, 0.01, 2.0, 0.1, crashed=False, hold_s=0.5)["settle_s"] == pytest.approx(3.5)
    assert math.isnan(tracking_metrics(errors, 0.01, 2.0, 0.1, crashed=True)["settle_s"])
    assert math.isnan(tracking_metrics(errors[:100], 0.01, 2.0, 0.1, crashed=False)["rms_m"])
    with pytest.raises(ValueError, match="1-D"):
        tracking_metrics(np.zeros((2, 2)), 0.01, 2.0, 0.1, crashed=False)


def test_the_expert_tracks_the_figure_eight_in_mujoco():
    """2 seeded episodes of 4 s (random phase): no crash, position error RMS after the 2 s settle time
    below 6 cm (measured ~4.2 cm, the motors' lag), settled within 2 s (measured ~1.5 s)."""
    env = robot_rl.make("quad_track", max_episode_steps=400, random_phase=True)
    try:
        for seed in range(2):
            env.reset(seed=seed)
            task, errors = env.unwrapped.task, []
            for _ in range(400):
                obs, reward, terminated, truncated, info = env.step(task.expert(env.unwrapped.state))
                assert not terminated and 0 < reward <= 1
                errors.append(info["tracking_error_m"])
                assert info["tracking_error_m"] == pytest.approx(np.linalg.norm(obs[:3]), abs=1e-6)
            metrics = tracking_metrics(errors, 0.01, 2.0, 0.1, crashed=False)
            assert truncated and info["success"] and metrics["rms_m"] < 0.06 and metrics["settle_s"] < 2.0, metrics
    finally:
        env.close()


@pytest.mark.slow  # compiles the JAX env's reset and step (~16 s on the loaded 2-core machine)
def test_the_expert_tracks_in_the_jax_env():
    """The same array functions batched in JAX (4 envs, 3 s, the goal's clock from the step count):
    position error RMS over the last second below 6 cm (measured 4.3 cm), no crash, truncated at 300."""
    pytest.importorskip("jax")
    env = robot_rl.make_vector("quad_track", backend="jax", num_envs=4, random_phase=True, max_episode_steps=300)
    try:
        obs, _ = env.reset(seed=3)
        assert obs.shape == (4, 21) and list(env.state_layout)[-1] == "ref_vel_m_s"
        errors = []
        for step in range(300):
            state = env.vehicle_state
            np.testing.assert_allclose(state["goal"][:, 4], 0.01 * step, atol=1e-5)
            action = env.arrays.expert(state["pos_m"], state["quat_wxyz"], state["vel_m_s"], state["goal"], np)
            obs, _, terminated, truncated, info = env.step(action.astype(np.float32))
            assert not terminated.any()
            errors.append(np.linalg.norm((info["final_obs"] if truncated.any() else obs)[:, :3], axis=1))
        rms = np.sqrt(np.mean(np.square(errors[-100:]), axis=0))
        assert truncated.all() and np.all(rms < 0.06), rms
    finally:
        env.close()


def test_array_functions_agree_under_numpy_and_jax():
    """On a batch under jit (the scalar numpy path is the MuJoCo env's, tested above)."""
    jax = pytest.importorskip("jax")
    jnp, batch = jax.numpy, (16,)
    arrays = make_task(random_phase=True, lookahead_steps=3, action_history_steps=2).arrays_for(SPEC)
    rng = np.random.default_rng(1)
    uniform = rng.uniform(size=(*batch, 16)).astype(np.float32)
    elapsed = rng.uniform(0, 8, batch).astype(np.float32)
    history = rng.uniform(-1, 1, (*batch, 2, 4)).astype(np.float32)

    def everything(u, t, h, xp):
        episode, pos, quat, vel, rates = arrays.initial(u, xp)
        goal = xp.concatenate([episode, t[..., None]], axis=-1)
        return {"initial": (episode, pos, quat, vel, rates), "reference": arrays.reference(goal, xp),
                "observe": arrays.observe(pos, quat, vel, rates, goal, xp, h),
                "reward": arrays.reward(pos, quat, vel, rates, goal, xp),
                "success": arrays.success(pos, vel, goal, xp), "expert": arrays.expert(pos, quat, vel, goal, xp)}

    ours = everything(uniform, elapsed, history, np)
    theirs = jax.jit(lambda u, t, h: everything(u, t, h, jnp))(uniform, elapsed, history)
    for name in ours:
        for a, b in zip(jax.tree.leaves(ours[name]), jax.tree.leaves(theirs[name])):
            assert np.shape(a) == np.shape(b), name
            np.testing.assert_allclose(np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64), rtol=1e-4,
                                       atol=1e-4, err_msg=name)
    assert ours["observe"].shape == (*batch, 18 + 8 + 3 + 9)


def test_conformance_with_lookahead_and_action_history():
    def make():
        return robot_rl.make("quad_track", lookahead_steps=2, action_history_steps=1, max_episode_steps=40)

    probe = make()
    hold = probe.unwrapped.task.hold_action(probe.unwrapped.backend.spec)
    assert list(probe.unwrapped.state_layout)[-2:] == ["ref_vel_m_s", "lookahead_error_m"]
    probe.close()
    check_conformance(make, hold, steps=20)


def test_config_is_checked():
    with pytest.raises(ValueError, match="inside the fence"):
        QuadTrackConfig(amplitude_m=(1.9, 0.5))
    with pytest.raises(ValueError, match="amplitude_m"):
        QuadTrackConfig(amplitude_m=(1.0,))
    with pytest.raises(ValueError, match="period_s"):
        QuadTrackConfig(period_s=0.0)
    with pytest.raises(ValueError, match="lookahead"):
        QuadTrackConfig(lookahead_steps=-1)
    with pytest.raises(RuntimeError, match="reset"):
        make_task().observe(None, "state")
