"""Physics checks of the quadrotor model, in MuJoCo (our MJCF) and in sim/quad/dynamics.py (the JAX
env's equations): hover thrust = weight, free fall, the torque of each motor, the motor lag, the
compiled model's numbers, and MuJoCo vs our RK4 (numpy float64 and jax float32) over an open-loop
horizon."""

import math

import mujoco
import numpy as np
import pytest

from drivers.quad.mixer import MOTOR_YAW_SIGN, PITCH_SIGN, ROLL_SIGN
from drivers.quad.rotations import tilted_quat_arrays
from robot_rl.backends.quadrotor import STANDARD_GRAVITY_M_S2, MotorThrusts
from sim.quad.backend import MujocoQuad, MujocoQuadConfig
from sim.quad.dynamics import BodyParams, RigidState, rk4_step_arrays
from sim.quad.model import QuadPhysics

LEVEL = np.array([1.0, 0.0, 0.0, 0.0])
START_M = np.array([0.2, -0.1, 1.5])


def _params(physics, xp=np, dtype=np.float64):
    return BodyParams(physics.mass_kg, xp.asarray(physics.inertia_kg_m2, dtype), physics.motor_time_constant_s,
                      physics.linear_drag_n_s_m, xp.zeros(3, dtype), xp.zeros(3, dtype), physics.arm_length_m,
                      physics.yaw_torque_per_thrust_m)


def test_the_compiled_model_has_the_documented_numbers():
    physics = MujocoQuadConfig()
    with MujocoQuad(physics) as quad:
        m = quad.model
        body = m.body("quad").id
        assert m.body_mass[body] == pytest.approx(0.027) and m.opt.integrator == mujoco.mjtIntegrator.mjINT_RK4
        np.testing.assert_allclose(m.body_inertia[body], physics.inertia_kg_m2, rtol=1e-12)
        np.testing.assert_allclose(m.opt.gravity, [0, 0, -STANDARD_GRAVITY_M_S2])
        np.testing.assert_allclose(m.actuator_gainprm[:, 0], physics.max_thrust_per_motor_n)
        np.testing.assert_allclose(m.actuator_dynprm[:, 0], physics.motor_time_constant_s)
        np.testing.assert_allclose(m.actuator_gear[:, 5], np.multiply(MOTOR_YAW_SIGN, physics.yaw_torque_per_thrust_m))
    assert physics.hover_thrust_frac == pytest.approx(0.027 * STANDARD_GRAVITY_M_S2 / (4 * 0.1597))
    assert 2.3 < 1 / physics.hover_thrust_frac < 2.5, "Förster 2015: thrust-to-weight ~2.4"


def test_hover_thrust_balances_the_weight():
    with MujocoQuad() as quad:
        quad.set_state(START_M, LEVEL, np.zeros(3), np.zeros(3))
        sent = quad.command(MotorThrusts(thrust_frac=np.full(4, quad.config.hover_thrust_frac)))
        np.testing.assert_allclose(sent.thrust_frac.sum() * quad.spec.max_thrust_per_motor_n,
                                   quad.spec.mass_kg * STANDARD_GRAVITY_M_S2, rtol=1e-12)
        quad.sync(2.0)
        state = quad.read_state()
        np.testing.assert_allclose(state.pos_m, START_M, atol=1e-9)
        np.testing.assert_allclose(state.quat_wxyz, LEVEL, atol=1e-9)
        assert np.abs(state.vel_m_s).max() < 1e-9 and np.abs(state.body_rates_rad_s).max() < 1e-9


@pytest.mark.parametrize("backend", ["mujoco", "ours"])
def test_free_fall(backend):
    """Instant motors at zero thrust and no drag: z(t) = z0 + vz0 t - g t^2 / 2 (RK4 is exact on it)."""
    physics = MujocoQuadConfig(motor_time_constant_s=0.0, linear_drag_n_s_m=0.0)
    vel0 = np.array([0.3, -0.2, 0.5])
    seconds = 0.4
    if backend == "mujoco":
        with MujocoQuad(physics) as quad:
            quad.set_state(START_M, LEVEL, vel0, np.zeros(3))
            quad.command(MotorThrusts(thrust_frac=np.zeros(4)))
            quad.sync(seconds)
            pos, vel = quad.read_state().pos_m, quad.read_state().vel_m_s
    else:
        body = RigidState(START_M, LEVEL, vel0, np.zeros(3), np.zeros(4))
        for _ in range(physics.substeps(seconds)):
            body = rk4_step_arrays(body, np.zeros(4), _params(physics), physics.timestep_s, np, instant_motors=True)
        pos, vel = body.pos_m, body.vel_m_s
    gravity = np.array([0, 0, -STANDARD_GRAVITY_M_S2])
    np.testing.assert_allclose(pos, START_M + vel0 * seconds + 0.5 * gravity * seconds**2, atol=1e-9)
    np.testing.assert_allclose(vel, vel0 + gravity * seconds, atol=1e-9)


@pytest.mark.parametrize("motor", range(4))
def test_torque_sign_per_motor(motor):
    """One motor 20% above hover for 10 ms (instant motors): the body turns about x, y, z with the
    signs of drivers/quad/mixer.py and the size I^-1 * torque."""
    physics = MujocoQuadConfig(motor_time_constant_s=0.0)
    frac = np.full(4, physics.hover_thrust_frac)
    frac[motor] *= 1.2
    with MujocoQuad(physics) as quad:
        quad.set_state(START_M, LEVEL, np.zeros(3), np.zeros(3))
        quad.command(MotorThrusts(thrust_frac=frac))
        quad.sync(0.01)
        rates = quad.read_state().body_rates_rad_s
    extra_n = 0.2 * physics.hover_thrust_frac * physics.max_thrust_per_motor_n
    d = physics.arm_length_m / math.sqrt(2)
    torque = extra_n * np.array([d * ROLL_SIGN[motor], d * PITCH_SIGN[motor],
                                 physics.yaw_torque_per_thrust_m * MOTOR_YAW_SIGN[motor]])
    np.testing.assert_allclose(rates, torque / np.array(physics.inertia_kg_m2) * 0.01, rtol=0.02)


def test_motor_lag_is_first_order():
    physics = MujocoQuadConfig()
    with MujocoQuad(physics) as quad:
        quad.set_state(START_M, LEVEL, np.zeros(3), np.zeros(3))
        before = quad.motor_thrusts_n.copy()
        quad.command(MotorThrusts(thrust_frac=np.ones(4)))
        quad.sync(physics.motor_time_constant_s)
        after = quad.motor_thrusts_n
    expected = physics.max_thrust_per_motor_n + (before - physics.max_thrust_per_motor_n) * math.exp(-1)
    np.testing.assert_allclose(after, expected, rtol=1e-4)


def _open_loop(our_hz, xp, dtype, seconds=0.5):
    """MuJoCo (500 Hz) and our RK4 (``our_hz``) from a tilted, moving, turning start under the same
    wandering motor commands; returns the largest differences (pos, quat, vel, rates) and the distance flown."""
    mujoco_physics, ours = MujocoQuadConfig(), QuadPhysics(physics_hz=our_hz)
    quat = tilted_quat_arrays(np.float64(0.3), np.float64(1.0), np.float64(0.4), np)
    start = (START_M, quat, np.array([0.3, -0.1, 0.2]), np.array([0.5, -0.3, 0.2]))
    params = _params(ours, xp, dtype)
    step = (lambda b, c: rk4_step_arrays(b, c, params, ours.timestep_s, np)) if xp is np else \
        __import__("jax").jit(lambda b, c: rk4_step_arrays(b, c, params, ours.timestep_s, xp))
    body = RigidState(*(xp.asarray(a, dtype) for a in (*start, np.full(4, ours.hover_thrust_frac * ours.max_thrust_per_motor_n))))
    worst = np.zeros(4)
    with MujocoQuad(mujoco_physics) as quad:
        quad.set_state(*start)
        for t in range(int(seconds * 100)):
            frac = np.clip(ours.hover_thrust_frac + 0.08 * np.sin(t / 5 + np.arange(4)), 0, 1)
            quad.command(MotorThrusts(thrust_frac=frac))
            quad.sync(0.01)
            for _ in range(ours.substeps(0.01)):
                body = step(body, xp.asarray(frac * ours.max_thrust_per_motor_n, dtype))
            state = quad.read_state()
            ref = (state.pos_m, state.quat_wxyz, state.vel_m_s, state.body_rates_rad_s)
            worst = np.maximum(worst, [np.abs(np.asarray(a) - b).max() for a, b in zip(body[:4], ref)])
        return worst, np.linalg.norm(state.pos_m - START_M)


def test_mujoco_and_our_rk4_integrate_the_same_ode():
    """Same rate, float64: the same ODE and the same integrator, so they agree to rounding (1e-11 m
    measured; a modelling slip such as motor positions rounded to 5 digits shows as 3e-5 m)."""
    worst, flown = _open_loop(500.0, np, np.float64)
    assert flown > 0.3
    assert worst[0] < 1e-8 and worst[1] < 1e-8 and worst[2] < 1e-7 and worst[3] < 1e-7, worst


@pytest.mark.parametrize("our_hz", [500.0, 100.0])
def test_jax_float32_agrees_with_mujoco_over_half_a_second(our_hz):
    """The JAX env's dynamics (float32; at MuJoCo's 500 Hz and at its own default 100 Hz) against
    MuJoCo (float64, 500 Hz), open loop for 0.5 s: within 1e-5 m, 1e-5 (quaternion), 1e-4 m/s and
    1e-4 rad/s (measured: 1.2e-6 m, 2e-6, 7.7e-6 m/s, 2e-5 rad/s at 500 Hz; less at 100 Hz, fewer
    float32 roundings; RK4's own error at 10 ms is far below float32's)."""
    jax = pytest.importorskip("jax")
    worst, flown = _open_loop(our_hz, jax.numpy, jax.numpy.float32)
    assert flown > 0.3
    assert worst[0] < 1e-5 and worst[1] < 1e-5 and worst[2] < 1e-4 and worst[3] < 1e-4, worst
