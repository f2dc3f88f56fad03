"""The car's array functions: controllers and single-track model under numpy and jax.numpy alike,
the batched safety clip equal to the contract's clip_car_command, and single-track sanity
(kinematic limit, standstill, reverse, tyre saturation), run in numpy (no compile)."""

import math

import numpy as np
import pytest

from robot_rl.backends.car import (
    CarCommand,
    CarSpec,
    CarState,
    clip_car_command,
    clip_speed_arrays,
    clip_steering_arrays,
    clip_throttle_arrays,
)
from sim.car import dynamics
from sim.car.dynamics import Bicycle
from sim.car.params import CarPhysics

P = CarPhysics()
DT_S = 0.01


def simulate(steer_rad, speed_m_s, seconds, car=None, friction=P.friction, xp=np):
    """The JAX env's low-level loop (speed controller, motor, single-track) at 100 Hz, in numpy."""
    car = car or Bicycle(np.zeros(2), 0.0, 0.0, 0.0, 0.0)
    for _ in range(round(seconds / DT_S)):
        throttle = dynamics.speed_controller_arrays(speed_m_s, car.vx_m_s, P.free_speed_m_s, P.speed_gain_per_m_s, xp)
        force = dynamics.motor_force_arrays(throttle, car.vx_m_s, P.max_drive_force_n, P.free_speed_m_s, xp)
        car = dynamics.bicycle_step_arrays(car, steer_rad, force, P.mass_kg, friction, P, DT_S, xp)
    return car


@pytest.mark.parametrize("batch", [(), (32,)])
def test_numpy_and_jax_agree(batch):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    rng = np.random.default_rng(0)
    state = [rng.uniform(-1, 1, (*batch, 2)), *(rng.uniform(-1, 1, batch) for _ in range(2)),
             rng.uniform(-0.3, 0.3, batch), rng.uniform(-1, 1, batch)]
    steer, force = rng.uniform(-0.4, 0.4, batch), rng.uniform(-30, 30, batch)
    state[2] = state[2] * 3.0  # forward speeds up to 3 m/s, both ways

    def run(xp, state, steer, force):
        car = dynamics.bicycle_step_arrays(Bicycle(*state), steer, force, P.mass_kg, P.friction, P, DT_S, xp)
        return (*car, dynamics.speed_controller_arrays(force / 10, state[2], 10.0, 1.0, xp),
                dynamics.motor_force_arrays(steer, state[2], 35.0, 10.0, xp), dynamics.servo_arrays(steer, force, 0.03, xp),
                *dynamics.ackermann_arrays(steer, P.wheelbase_m, P.track_width_m, xp))

    as32 = lambda x: np.asarray(x, np.float32)
    ours = run(np, [as32(s) for s in state], as32(steer), as32(force))
    theirs = jax.jit(lambda s, a, b: run(jnp, s, a, b))([jnp.asarray(as32(s)) for s in state], as32(steer), as32(force))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(np.asarray(b), a, rtol=2e-5, atol=2e-5)


def test_the_batched_clip_is_the_contracts_clip():
    jnp = pytest.importorskip("jax").numpy
    spec = CarSpec(wheelbase_m=0.33, track_width_m=0.27, max_steering_rad=0.42, max_steering_rate_rad_s=3.2,
                   max_speed_m_s=5.0, max_reverse_speed_m_s=1.5, max_accel_m_s2=9.5, command_modes=("speed", "throttle"),
                   max_throttle=0.8, max_throttle_rate_per_s=10.0)
    rng = np.random.default_rng(1)
    n, dt = 200, 0.05
    wanted, previous = rng.uniform(-8, 8, (2, n)), rng.uniform(-6, 6, (2, n))
    measured = rng.uniform(-2, 6, n)
    previous[1] = np.clip(previous[1], -1, 1)
    steer = np.asarray(clip_steering_arrays(jnp.asarray(wanted[0]), previous[0], 3.2 * dt, 0.42, jnp))
    speed = np.asarray(clip_speed_arrays(jnp.asarray(wanted[1]), previous[1], 9.5 * dt, 1.5, 5.0, jnp))
    throttle = np.asarray(clip_throttle_arrays(jnp.asarray(wanted[1] / 8), previous[1], 10 * dt, 0.8, measured, 5.0,
                                               1.5, jnp))
    for i in range(n):
        state = CarState(time_s=0.0, pos_m=[0, 0], yaw_rad=0.0, vel_body_m_s=[measured[i], 0.0], yaw_rate_rad_s=0.0,
                         wheel_speed_m_s=math.nan, steering_rad=0.0, imu_accel_m_s2=[0, 0, 9.81], imu_gyro_rad_s=[0, 0, 0])
        by_speed = clip_car_command(CarCommand(steering_rad=wanted[0, i], speed_m_s=wanted[1, i]), spec, state,
                                    CarCommand(steering_rad=previous[0, i], speed_m_s=previous[1, i]), dt)
        by_throttle = clip_car_command(CarCommand(steering_rad=wanted[0, i], throttle=wanted[1, i] / 8), spec, state,
                                       CarCommand(steering_rad=previous[0, i], throttle=previous[1, i]), dt)
        assert by_speed.steering_rad == pytest.approx(steer[i], abs=1e-6)
        assert by_speed.speed_m_s == pytest.approx(speed[i], abs=1e-5)
        assert by_throttle.throttle == pytest.approx(throttle[i], abs=1e-6)


def test_slow_turns_follow_the_kinematic_bicycle_with_a_little_understeer():
    car = simulate(0.2, 1.0, 6.0)
    radius = car.vx_m_s / car.yaw_rate_rad_s
    kinematic = P.wheelbase_m / math.tan(0.2)
    assert car.vx_m_s == pytest.approx(1.0, abs=0.01)
    assert kinematic < radius < 1.03 * kinematic  # understeer: C_Sr > C_Sf


def test_standstill_with_the_wheels_turned_does_not_creep():
    car = simulate(0.4, 0.0, 2.0)
    assert np.abs(car.pos_m).max() < 1e-9 and car.yaw_rad == 0.0


def test_reversing_with_left_lock_turns_clockwise():
    car = simulate(0.3, -1.0, 2.0)
    assert car.vx_m_s == pytest.approx(-1.0, abs=0.02) and car.yaw_rate_rad_s < -0.5
    assert car.yaw_rate_rad_s == pytest.approx(-1.0 * math.tan(0.3) / P.wheelbase_m, rel=0.05)


def test_tyres_saturate_at_the_friction_limit():
    """Full lock at up to 4 m/s asks for up to 4^2 tan(0.42) / 0.33 = 21 m/s^2; on a surface of
    friction 0.5 the car's acceleration (forward and sideways, of the centre of gravity) stays
    within mu g, and it does not spin."""
    car, worst, friction = Bicycle(np.zeros(2), 0.0, 0.0, 0.0, 0.0), 0.0, 0.5
    for _ in range(300):
        throttle = dynamics.speed_controller_arrays(4.0, car.vx_m_s, P.free_speed_m_s, P.speed_gain_per_m_s, np)
        force = dynamics.motor_force_arrays(throttle, car.vx_m_s, P.max_drive_force_n, P.free_speed_m_s, np)
        new = dynamics.bicycle_step_arrays(car, 0.4189, force, P.mass_kg, friction, P, DT_S, np)
        forward = (new.vx_m_s - car.vx_m_s) / DT_S - new.vy_cog_m_s * new.yaw_rate_rad_s
        sideways = (new.vy_cog_m_s - car.vy_cog_m_s) / DT_S + new.vx_m_s * new.yaw_rate_rad_s
        worst, car = max(worst, math.hypot(forward * (P.mass_kg + P.rotating_mass_kg) / P.mass_kg, sideways)), new
        assert abs(car.yaw_rate_rad_s) < 4.0
    assert worst < 1.1 * friction * 9.81
