"""drivers/quad: the mixer (exact inverse, saturation), the cascade's step responses on the
simulated Crazyflie (numpy RK4 of sim/quad/dynamics.py, 0.15 s motor lag), saturation of every
level, recovery from upside down, and numpy == jax.numpy for every array function."""

import math

import numpy as np
import pytest

from drivers.quad import control, mixer
from drivers.quad.control import QuadController, QuadGains
from drivers.quad.rotations import (
    cos_tilt_arrays,
    quat_from_axis_angle_arrays,
    tilted_quat_arrays,
    yaw_arrays,
)
from sim.quad.dynamics import BodyParams, RigidState, rk4_step_arrays
from sim.quad.model import QuadPhysics

PHYSICS = QuadPhysics()
CONTROLLER = QuadController.from_spec(PHYSICS.spec(), PHYSICS.yaw_torque_per_thrust_m)
MAX_N = PHYSICS.max_thrust_per_motor_n
ARM, YAW_K = PHYSICS.arm_length_m, PHYSICS.yaw_torque_per_thrust_m
HOVER_N = PHYSICS.mass_kg * control.GRAVITY_M_S2


def test_mixer_is_the_exact_inverse_within_limits():
    rng = np.random.default_rng(0)
    collective = rng.uniform(0.2, 0.4, 50)
    torque = rng.uniform(-1, 1, (50, 3)) * [1e-3, 1e-3, 2e-4]
    thrusts = mixer.mix_arrays(collective, torque, ARM, YAW_K, MAX_N, np)
    assert np.all((thrusts > 0) & (thrusts < MAX_N)), "the test inputs must not saturate"
    back_collective, back_torque = mixer.thrusts_to_wrench_arrays(thrusts, ARM, YAW_K, np)
    np.testing.assert_allclose(back_collective, collective, rtol=1e-12)
    np.testing.assert_allclose(back_torque, torque, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("motor", range(4))
def test_each_motor_turns_the_body_the_documented_way(motor):
    """Motor 0 front-right, 1 back-right, 2 back-left, 3 front-left; 0 and 2 turn the body clockwise."""
    thrusts = np.zeros(4)
    thrusts[motor] = 0.1
    _, torque = mixer.thrusts_to_wrench_arrays(thrusts, ARM, YAW_K, np)
    position = mixer.motor_positions_m(ARM)[motor]
    np.testing.assert_allclose(torque[:2], [position[1] * 0.1, -position[0] * 0.1], rtol=1e-12)  # r x F, F = +z
    assert np.sign(torque[2]) == (-1, 1, -1, 1)[motor]
    assert np.sign(torque[0]) == (-1, -1, 1, 1)[motor]  # left motors roll the left side up
    assert np.sign(torque[1]) == (-1, 1, 1, -1)[motor]  # back motors pitch the nose down


def test_mixer_saturation_keeps_roll_and_pitch_first_and_scales_yaw():
    # Near full collective with a roll torque and a large yaw: roll/pitch exact, yaw reduced, same sign.
    torque = np.array([2e-3, -1e-3, 5e-4])
    thrusts = mixer.mix_arrays(np.float64(0.5), torque, ARM, YAW_K, MAX_N, np)
    assert np.all(thrusts >= 0) and np.all(thrusts <= MAX_N + 1e-15)
    _, got = mixer.thrusts_to_wrench_arrays(thrusts, ARM, YAW_K, np)
    np.testing.assert_allclose(got[:2], torque[:2], rtol=1e-9)
    assert 0 < got[2] < torque[2]
    # A roll torque beyond what the motors can make: clipped inside [0, max], the sign kept.
    thrusts = mixer.mix_arrays(np.float64(0.3), np.array([1.0, 0.0, 0.0]), ARM, YAW_K, MAX_N, np)
    assert np.all(thrusts >= 0) and np.all(thrusts <= MAX_N + 1e-15)
    assert mixer.thrusts_to_wrench_arrays(thrusts, ARM, YAW_K, np)[1][0] > 0
    # Zero collective, zero torque: all off; batched shapes pass through.
    assert mixer.mix_arrays(np.zeros((2, 3)), np.zeros((2, 3, 3)), ARM, YAW_K, MAX_N, np).shape == (2, 3, 4)


def _fly(quat, rates, command, seconds, physics_hz=500.0):
    """Fly the numpy model with ``command(state) -> (collective, rate targets)`` behind the rate PID."""
    dt, body = 1.0 / physics_hz, RigidState(np.array([0.0, 0.0, 2.0]), quat, np.zeros(3), rates, np.full(4, HOVER_N / 4))
    params = BodyParams(PHYSICS.mass_kg, np.array(PHYSICS.inertia_kg_m2), PHYSICS.motor_time_constant_s,
                        PHYSICS.linear_drag_n_s_m, np.zeros(3), np.zeros(3), ARM, YAW_K)
    integral, prev, history = np.zeros(3), body.rates_rad_s, []
    for _ in range(int(seconds * physics_hz)):
        collective, target = command(body)
        torque, integral = CONTROLLER.rates_to_torque(target, body.rates_rad_s, np, integral, prev, dt)
        prev = body.rates_rad_s
        body = rk4_step_arrays(body, CONTROLLER.motor_fractions(collective, torque, np) * MAX_N, params, dt, np)
        history.append(body)
    return history


def test_rate_step_response_settles():
    level = np.array([1.0, 0, 0, 0])
    hover = HOVER_N / CONTROLLER.max_total_thrust_n
    history = _fly(level, np.zeros(3), lambda body: (hover, np.array([1.0, 0.0, 0.0])), 0.6)
    roll_rate = np.array([b.rates_rad_s[0] for b in history])
    assert abs(roll_rate[-1] - 1.0) < 0.05, "settled within 5% after 0.6 s"
    assert roll_rate.max() < 1.3, f"overshoot {roll_rate.max():.2f}"
    assert np.all(np.abs(roll_rate[int(0.3 * 500):] - 1.0) < 0.1), "within 10% from 0.3 s on"


def test_attitude_step_response_settles_and_is_the_contracts_sign():
    level = np.array([1.0, 0, 0, 0])
    hover = HOVER_N / CONTROLLER.max_total_thrust_n

    def attitude(body):
        return hover, CONTROLLER.attitude_to_rates(body.quat_wxyz, 0.3, 0.0, 0.0, np)

    history = _fly(level, np.zeros(3), attitude, 1.5)
    body_y_z = np.array([2 * (b.quat_wxyz[2] * b.quat_wxyz[3] + b.quat_wxyz[0] * b.quat_wxyz[1]) for b in history])
    roll = np.arcsin(np.clip(body_y_z, -1, 1))  # level heading: body y's z component = sin(roll)
    assert abs(roll[-1] - 0.3) < 0.01 and roll.max() < 0.36
    assert history[-1].vel_m_s[1] < -0.5, "positive roll lowers the right side: the vehicle accelerates to -y"


def test_position_controller_settles_and_respects_its_limits():
    target = np.array([1.0, -0.5, 2.5])

    def position(body):
        return CONTROLLER.position_to_thrust_rates(body.pos_m, body.vel_m_s, body.quat_wxyz, target, 0.0, np)

    history = _fly(np.array([1.0, 0, 0, 0]), np.zeros(3), position, 4.0, physics_hz=100.0)
    errors = np.array([np.linalg.norm(b.pos_m - target) for b in history])
    assert errors[-1] < 0.01 and np.all(errors[-100:] < 0.02), f"final errors {errors[-100:].max():.3f} m"
    speeds = np.array([np.linalg.norm(b.vel_m_s) for b in history])
    assert speeds.max() <= CONTROLLER.gains.max_speed_m_s * 1.15
    tilt = np.arccos(np.clip([cos_tilt_arrays(b.quat_wxyz, np) for b in history], -1, 1))
    assert tilt.max() <= CONTROLLER.max_tilt_rad + 0.05


def test_every_level_saturates_cleanly():
    quat = np.array([1.0, 0, 0, 0])
    far = CONTROLLER.position_to_velocity(np.zeros(3), np.array([100.0, 0, 0]), np)
    np.testing.assert_allclose(np.linalg.norm(far), CONTROLLER.gains.max_speed_m_s)
    collective, rates = CONTROLLER.velocity_to_thrust_rates(np.array([50.0, 0, 50.0]), 0.0, np.zeros(3), quat, np)
    assert 0 <= collective <= 1 and np.all(np.abs(rates) <= CONTROLLER.max_body_rate_rad_s)
    _, roll, pitch = control.velocity_to_attitude_arrays(np.array([50.0, 0, 0]), np.zeros(3), quat, PHYSICS.mass_kg,
                                                         CONTROLLER.max_total_thrust_n, 3.0, 0.7, np)
    assert abs(roll) < 1e-9 and pitch == pytest.approx(0.7), "the tilt limit holds; forward = positive pitch"
    collective, _ = CONTROLLER.velocity_to_thrust_rates(np.array([0, 0, -50.0]), 0.0, np.zeros(3), quat, np)
    assert collective == pytest.approx(0.3 * HOVER_N / CONTROLLER.max_total_thrust_n), "never below 0.3 g"
    _, integral = CONTROLLER.rates_to_torque(np.full(3, 100.0), np.zeros(3), np, np.zeros(3), np.zeros(3), 1.0)
    np.testing.assert_array_equal(integral, np.full(3, CONTROLLER.gains.rate_integral_limit_rad))  # anti-windup


def test_hover_fallback_rights_the_vehicle_from_upside_down():
    upside_down = quat_from_axis_angle_arrays(np.array([1.0, 0, 0]), np.float64(math.pi), np)
    history = _fly(upside_down, np.zeros(3), lambda b: CONTROLLER.hover_in_place(b.vel_m_s, b.quat_wxyz, np), 2.5)
    assert cos_tilt_arrays(history[-1].quat_wxyz, np) > 0.99 and np.linalg.norm(history[-1].vel_m_s) < 0.2


def _inputs(rng, batch):
    quat = tilted_quat_arrays(rng.uniform(-3, 3, batch), rng.uniform(0, 6, batch), rng.uniform(0, 2.5, batch), np)
    vec = lambda scale: rng.uniform(-scale, scale, (*batch, 3))
    return quat, vec(1.5), vec(1.0), vec(2.0), vec(3.0)


@pytest.mark.parametrize("batch", [(), (64,), (4, 8)])
def test_numpy_and_jax_give_the_same_outputs(batch):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    quat, pos, vel, target, rates = (a.astype(np.float32) for a in _inputs(np.random.default_rng(1), batch))
    calls = {
        "position": lambda q, p, v, t, r, xp: CONTROLLER.position_to_thrust_rates(p, v, q, t, 0.3 + 0 * p[..., 0], xp),
        "velocity": lambda q, p, v, t, r, xp: CONTROLLER.velocity_to_thrust_rates(t, r[..., 2], v, q, xp),
        "attitude": lambda q, p, v, t, r, xp: CONTROLLER.attitude_to_rates(q, t[..., 0] * 0.3, t[..., 1] * 0.3, r[..., 2], xp),
        "fallback": lambda q, p, v, t, r, xp: CONTROLLER.hover_in_place(v, q, xp),
        "rate_pid": lambda q, p, v, t, r, xp: CONTROLLER.rates_to_torque(t, r, xp, v * 0.1, r * 0.9, 0.002),
        "mixer": lambda q, p, v, t, r, xp: CONTROLLER.motor_fractions(0.4 + 0.1 * v[..., 0], r * 1e-4, xp),
        "yaw": lambda q, p, v, t, r, xp: yaw_arrays(q, xp),
    }
    everything = jax.jit(lambda *a: {name: call(*a, jnp) for name, call in calls.items()})(quat, pos, vel, target, rates)
    for name, call in calls.items():
        ours, theirs = call(quat, pos, vel, target, rates, np), everything[name]
        for a, b in zip(ours if isinstance(ours, tuple) else (ours,), theirs if isinstance(theirs, tuple) else (theirs,)):
            assert np.shape(a) == np.shape(b), name
            np.testing.assert_allclose(np.asarray(b), a, rtol=2e-4, atol=2e-5, err_msg=name)


def test_gains_are_checked():
    with pytest.raises(ValueError, match="rate_p_per_s"):
        QuadGains(rate_p_per_s=-1.0)
    with pytest.raises(ValueError, match="yaw_torque_per_thrust_m"):
        QuadController.from_spec(PHYSICS.spec()).motor_fractions(np.float64(0.4), np.zeros(3), np)
