"""The JAX quadrotor's fast paths give the same numbers as the plain ones: rows of a random draw
computed alone equal those rows of the whole draw (sim/quad/jax_draws.py); restarting only the
sub-envs that ended equals restarting all (with every randomization on); the component-major step
flies the same vehicle as the array-form RK4 and controllers that MuJoCo's checks and the real
drone's controller use (sim/quad/dynamics.py, drivers/quad/control.py)."""

import dataclasses

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp

from drivers.quad.control import GRAVITY_M_S2
from sim.quad.dynamics import BodyParams, RigidState, rk4_step_arrays
from sim.quad.jax_core import STAGES_ONCE_MIN_ENVS, JaxQuadConfig, build, fresh_batch, vehicle_arrays
from sim.quad.jax_draws import counter_based, normal_rows, uniform_rows
from sim.quad.jax_env import QuadVectorEnv
from tasks.quad.hover import make_task
from tasks.quad.track import make_task as make_track

ROWS = np.array([0, 7, 1023, 300, 1024])  # the last one is past the end: dropped by callers


def test_uniform_rows_are_the_rows_of_the_whole_draw():
    key, rows = jax.random.fold_in(jax.random.key(3), 11), jnp.asarray(ROWS)
    assert counter_based(key) and not counter_based(jax.random.PRNGKey(0))
    cases = ((15, 0.0, 1.0), (1, 0.8, 1.2), (3, -1.0, 1.0))

    def draws(k, r):
        return ([uniform_rows(k, r, 1024, width, low, high) for width, low, high in cases]
                + [jax.random.uniform(k, (1024, width), jnp.float32, low, high) for width, low, high in cases]
                + [normal_rows(k, r, 1024, 18), jax.random.normal(k, (1024, 18))])

    out = [np.asarray(a) for a in jax.jit(draws)(key, rows)]
    for few, whole in zip(out[:3] + out[6:7], out[3:6] + out[7:8]):
        assert few.shape == (5, whole.shape[1]) and np.array_equal(few[:4], whole[ROWS[:4]])
    raw_key = jax.random.PRNGKey(5)  # a legacy raw key: drawn whole, rows gathered (the same numbers)
    assert np.array_equal(np.asarray(uniform_rows(raw_key, rows[:4], 1024, 3, -1.0, 1.0)),
                          np.asarray(jax.random.uniform(raw_key, (1024, 3), jnp.float32, -1.0, 1.0))[ROWS[:4]])


RANDOMIZED = JaxQuadConfig(mass_scale_range=(0.8, 1.2), inertia_scale_range=(0.7, 1.3), thrust_to_weight_range=(1.8, 2.6),
                           motor_time_constant_range_s=(0.05, 0.2), max_disturbance_force_n=0.02,
                           max_disturbance_torque_nm=1e-5, obs_noise_std=0.01, action_delay_steps=(0, 2))


def test_fresh_episodes_for_a_few_rows_are_those_rows_of_all():
    """What a step restarting few sub-envs builds (every randomization on, an action history, quad_track's
    episode draw) equals those rows of the batch built for all, bit for bit."""
    task = make_track(action_history_steps=2)
    arrays = task.arrays_for(RANDOMIZED.spec())
    key, rows = jax.random.key(9), jnp.array([3, 0, 63, 17, 64])
    whole = jax.jit(lambda k: fresh_batch(k, None, arrays, RANDOMIZED, 64))(key)
    few = jax.jit(lambda k, r: fresh_batch(k, r, arrays, RANDOMIZED, 64))(key, rows)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(whole), jax.tree.leaves(few)):
        a, b, name = np.asarray(a), np.asarray(b), jax.tree_util.keystr(path)
        assert a.dtype == b.dtype and b.shape[-1] == 5 and np.array_equal(a[..., [3, 0, 63, 17]], b[..., :4]), name
    assert np.asarray(whole.params.mass_kg).std() > 0 and np.asarray(whole.delay).max() > 0


def _rollout(task, physics, num_envs, sparse_restarts, steps, climbing):
    """``steps`` steps of random actions (the first ``climbing`` sub-envs climb at full thrust: they
    leave the fence and restart on different steps), every output and the final batch as numpy."""
    arrays = task.arrays_for(physics.spec())
    reset, step = build(arrays, task.max_episode_steps, physics, num_envs, task.control_hz, sparse_restarts)
    batch, key, obs = reset(jax.random.key(1))
    outs, ends = [obs], 0
    for i in range(steps):
        actions = jax.random.uniform(jax.random.key(100 + i), (num_envs, 4), jnp.float32, -0.3, 0.3)
        actions = actions.at[:climbing, 0].set(1.0)
        batch, key, out = step(batch, key, actions)
        outs.extend(out)
        ends += int(np.sum(np.asarray(out[2]) | np.asarray(out[3])))
    return [np.asarray(o) for o in outs], [np.asarray(leaf) for leaf in jax.tree.leaves(batch)], ends


@pytest.mark.slow
def test_restarting_the_few_equals_restarting_all():
    """Whole steps, bit for bit (the observation noise of restarted rows to 1 ulp), with every randomization, observation noise, an action history and a
    moving goal (quad_track: the elapsed time enters the goal), over 70 steps in which the climbing
    sub-envs crash a few at a time (the fence top is lowered just above the highest start) and all
    are truncated together once at step 60 (more than the sparse limit: the path for all). ~25 s of
    compiling on 2 cores, hence slow; the fast test above checks the restarted rows themselves."""
    task = make_track(max_episode_steps=60, action_history_steps=2, fence_high_m=(2.0, 2.0, 1.82))
    plain = _rollout(task, RANDOMIZED, 32, 0, 70, climbing=16)
    sparse = _rollout(task, RANDOMIZED, 32, 4, 70, climbing=16)
    assert plain[2] == sparse[2] > 32 + 4
    observations = {0} | set(range(1, len(plain[0]), 8))  # the reset's obs, then each step's
    for i, (a, b) in enumerate(zip(plain[0] + plain[1], sparse[0] + sparse[1])):
        assert a.dtype == b.dtype and a.shape == b.shape
        if i in observations:  # the noise of restarted rows: the same draw, computed in another kernel (1 ulp)
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
        else:
            assert np.array_equal(a, b), i


@pytest.mark.parametrize("physics_hz, num_envs", [(100.0, 16), (500.0, 16), (100.0, STAGES_ONCE_MIN_ENVS)])
def test_component_major_step_flies_the_array_form_dynamics(physics_hz, num_envs):
    """One env step from random tilted starts: the jitted component-major step equals, to float32
    rounding, the rate PID + mixer + :func:`rk4_step_arrays` (the functions MuJoCo's and the drone's
    checks use) run in float64 numpy on the ``(N, 3)`` state; at 500 Hz over 5 physics substeps; from
    ``STAGES_ONCE_MIN_ENVS`` sub-envs on with each RK4 stage's derivative behind its own conditional."""
    env = QuadVectorEnv(make_task(), num_envs, JaxQuadConfig(physics_hz=physics_hz))
    env.reset(seed=4)
    before = {k: v.astype(np.float64) for k, v in env.vehicle_state.items()}
    action = np.random.default_rng(0).uniform(-0.5, 0.5, (num_envs, 4)).astype(np.float32)
    env.step(action)
    after = env.vehicle_state
    physics, arrays = env.config, env.arrays
    collective, rates, _ = arrays.actions.to_thrust_rates_and_back(action.astype(np.float64), before["vel_m_s"],
                                                                   before["quat_wxyz"], np)
    controller = dataclasses.replace(arrays.actions.controller, yaw_torque_per_thrust_m=physics.yaw_torque_per_thrust_m)
    params = BodyParams(physics.mass_kg, np.array(physics.inertia_kg_m2), physics.motor_time_constant_s,
                        physics.linear_drag_n_s_m, np.zeros(3), np.zeros(3), physics.arm_length_m,
                        physics.yaw_torque_per_thrust_m)
    body = RigidState(*(before[k] for k in ("pos_m", "quat_wxyz", "vel_m_s", "rates_rad_s", "thrust_n")))
    integral, prev = np.zeros((num_envs, 3)), before["rates_rad_s"]
    for _ in range(physics.substeps(1.0 / env.control_hz)):
        torque, integral = controller.rates_to_torque(rates, body.rates_rad_s, np, integral, prev, physics.timestep_s)
        prev = body.rates_rad_s
        thrust_cmd = controller.motor_fractions(collective, torque, np) * physics.max_thrust_per_motor_n
        body = rk4_step_arrays(body, thrust_cmd, params, physics.timestep_s, np)
    for name, value in body._asdict().items():
        np.testing.assert_allclose(after[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    hover_n = physics.mass_kg * GRAVITY_M_S2 / 4.0
    assert not np.allclose(after["thrust_n"], hover_n), "the command moved the motors"
    assert vehicle_arrays(env._batch).pos_m.shape == (num_envs, 3) and env._batch.body.pos_m.shape == (3, num_envs)


def test_sparse_restarts_is_checked():
    task = make_task()
    arrays = task.arrays_for(JaxQuadConfig().spec())
    with pytest.raises(ValueError, match="sparse_restarts"):
        build(arrays, 10, JaxQuadConfig(), 8, 100.0, 9)
