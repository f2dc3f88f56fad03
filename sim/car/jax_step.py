"""The JAX car's pure step: ``N`` cars' state as one pytree, one jitted ``reset`` and ``step``
(see :mod:`sim.car.jax_env` for what they compute and the VectorEnv around them)."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from robot_rl.backends.car import (
    SPEED,
    clip_speed_arrays,
    clip_steering_arrays,
    clip_throttle_arrays,
)
from sim.car import dynamics
from sim.car.dynamics import Bicycle
from sim.car.params import GRAVITY_M_S2


class CarBatch(NamedTuple):
    """Every sub-env's state, leading axis ``N``: the single-track state, the servo angle and the
    last executed command (steering [rad], drive: speed [m/s] or throttle), the task's tracker,
    elapsed control steps, and this episode's dynamics."""

    car: Bicycle
    steer_rad: Any
    steer_cmd_rad: Any
    drive_cmd: Any
    tracker: Any  # the task's lap tracker (tasks.car.lap_arrays.LapTracker)
    steps: Any
    mass_kg: Any
    friction: Any
    steering_delay_s: Any
    motor_gain: Any


def control_period(p: Any, car: Bicycle, steer_rad: Any, old_steer_cmd_rad: Any, steer_cmd_rad: Any, drive: Any,
                   speed_mode: bool, mass_kg: Any, friction: Any, steering_delay_s: Any, motor_gain: Any,
                   substeps: int) -> tuple[Bicycle, Any]:
    """One control period of the car (``substeps`` low-level steps of ``1 / p.low_level_hz``): the servo
    (after the steering delay) and the ESC (speed controller or throttle, DC motor) at every step,
    then the single-track model. Returns the car and the servo angle."""
    dt = 1.0 / p.low_level_hz
    max_force = p.max_drive_force_n * motor_gain

    def substep(k: Any, carry: tuple[Bicycle, Any]) -> tuple[Bicycle, Any]:
        car, steer = carry
        target = jnp.where(k * dt < steering_delay_s - 1e-9, old_steer_cmd_rad, steer_cmd_rad)
        steer = dynamics.servo_arrays(steer, target, p.max_steering_rate_rad_s * dt, jnp)
        if speed_mode:
            throttle = dynamics.speed_controller_arrays(drive, car.vx_m_s, p.free_speed_m_s, p.speed_gain_per_m_s, jnp)
        else:
            throttle = drive
        force = dynamics.motor_force_arrays(throttle, car.vx_m_s, max_force, p.free_speed_m_s, jnp)
        return dynamics.bicycle_step_arrays(car, steer, force, mass_kg, friction, p, dt, jnp), steer

    # a loop, not unrolled: the same speed here, and a quicker compile
    return jax.lax.fori_loop(0, substeps, substep, (car, steer_rad))


def _draw(key: Any, n: int, nominal: float, value_range: tuple[float, float] | None) -> Any:
    if value_range is None:
        return jnp.full((n,), nominal, dtype=jnp.float32)
    return jax.random.uniform(key, (n,), jnp.float32, value_range[0], value_range[1])


def _select(done: Any, reset: Any, stepped: Any) -> Any:
    """Per sub-env: the ``reset`` state where ``done`` ``(N,)``, else the ``stepped`` one."""
    return jax.tree.map(lambda a, b: jnp.where(done.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), reset, stepped)


@functools.lru_cache(maxsize=16)
def build_step(arrays: Any, max_steps: int, physics: Any, num_envs: int,
               control_hz: float) -> tuple[Any, Any, Any, Any]:
    """Jitted ``reset(key)``, ``step(batch, key, actions)``, ``env_step`` (``step`` that can also
    reset every sub-env) and ``expert(batch)`` for ``num_envs`` cars of a task (its bound array
    functions and time limit) on ``physics``'s track. Cached: equal settings share a compile."""
    track = arrays.track_arrays(physics.track(), jnp, jnp.float32)
    mapping, p = arrays.mapping, physics
    control_dt = 1.0 / control_hz
    substeps = max(1, round(p.low_level_hz / control_hz))
    speed_mode = mapping.drive == SPEED

    def fresh(key: Any) -> CarBatch:
        keys = jax.random.split(key, 5)
        index, pos, yaw = arrays.start_pose(track, jax.random.uniform(keys[0], (num_envs, 3), jnp.float32), jnp)
        zeros = jnp.zeros((num_envs,), jnp.float32)
        delay = p.steering_delay_range_s
        return CarBatch(Bicycle(pos, yaw, zeros, zeros, zeros), zeros, zeros, zeros,
                        arrays.start(track, index, pos, yaw, 0.0, jnp, iterations=0), jnp.zeros((num_envs,), jnp.int32),
                        _draw(keys[1], num_envs, p.mass_kg, p.mass_range_kg),
                        _draw(keys[2], num_envs, p.friction, p.friction_range),
                        jnp.minimum(_draw(keys[3], num_envs, p.steering_delay_s, delay), control_dt),
                        _draw(keys[4], num_envs, 1.0, p.motor_gain_range))

    def observe(batch: CarBatch) -> Any:
        car = batch.car
        vel = jnp.stack([car.vx_m_s, car.vy_cog_m_s - p.cog_to_rear_m * car.yaw_rate_rad_s], axis=-1)
        return arrays.observe(track, batch.tracker, car.pos_m, car.yaw_rad, vel, car.yaw_rate_rad_s, batch.steer_rad,
                              True, jnp)

    def reset(key: Any) -> tuple[CarBatch, Any, Any]:
        key, sub = jax.random.split(key)
        batch = fresh(sub)
        return batch, key, observe(batch)

    def clip_command(batch: CarBatch, action: Any) -> tuple[Any, Any]:
        """The safety clip every car backend applies, against the previous executed command."""
        steer = clip_steering_arrays(action[:, 1] * p.max_steering_rad, batch.steer_cmd_rad,
                                     p.max_steering_rate_rad_s * control_dt, p.max_steering_rad, jnp)
        wanted = mapping.to_drive(action[:, 0], jnp)
        if speed_mode:
            drive = clip_speed_arrays(wanted, batch.drive_cmd, p.max_accel_m_s2 * control_dt, p.max_reverse_speed_m_s,
                                      p.max_speed_m_s, jnp)
        else:
            drive = clip_throttle_arrays(wanted, batch.drive_cmd, p.max_throttle_rate_per_s * control_dt, 1.0,
                                         batch.car.vx_m_s, p.max_speed_m_s, p.max_reverse_speed_m_s, jnp)
        return steer, drive

    def core(batch: CarBatch, key: Any, actions: Any, reset_all: Any) -> tuple[CarBatch, Any, tuple]:
        """One step; sub-envs whose episode ended (or all, with ``reset_all``) start afresh."""
        action = jnp.clip(actions, -1.0, 1.0)
        steer_cmd, drive = clip_command(batch, action)
        executed = jnp.stack([mapping.to_action(drive, jnp), steer_cmd / p.max_steering_rad], axis=-1)
        car, steer = control_period(p, batch.car, batch.steer_rad, batch.steer_cmd_rad, steer_cmd, drive, speed_mode,
                                    batch.mass_kg, batch.friction, batch.steering_delay_s, batch.motor_gain, substeps)
        steps = batch.steps + 1
        driving = mapping.driving(mapping.to_drive(action[:, 0], jnp), jnp)
        tracker = arrays.step(track, batch.tracker, car.pos_m, car.yaw_rad, jnp.full_like(car.vx_m_s, GRAVITY_M_S2), driving,
                              steps.astype(jnp.float32) * control_dt, jnp)
        stepped = batch._replace(car=car, steer_rad=steer, steer_cmd_rad=steer_cmd, drive_cmd=drive, tracker=tracker,
                                 steps=steps)
        ended = arrays.ended(tracker, jnp)
        terminated = jnp.zeros_like(ended)
        truncated = ended | (steps >= max_steps)
        key, sub = jax.random.split(key)
        restart = truncated | reset_all
        new = jax.lax.cond(restart.any(), lambda: _select(restart, fresh(sub), stepped), lambda: stepped)
        clipped = jnp.max(jnp.abs(executed - action), axis=-1) > 1e-4
        infos = {"success": arrays.success(tracker, jnp), "executed_action": executed, "action_clipped": clipped,
                 "laps_completed": tracker.laps, "lap_time_s": tracker.lap_time_s,
                 "collided": tracker.crashed | tracker.flipped}
        out = (observe(new), arrays.reward(tracker, jnp), terminated, truncated, infos, observe(stepped))
        return new, key, out

    def step(batch: CarBatch, key: Any, actions: Any) -> tuple[CarBatch, Any, tuple]:
        return core(batch, key, actions, False)

    def env_step(batch: CarBatch, key: Any, actions: Any, reset_all: Any) -> tuple[CarBatch, Any, tuple]:
        """``step``, or with ``reset_all`` the VectorEnv's reset (one compiled function for both)."""
        return core(batch, key, actions, reset_all)

    def expert(batch: CarBatch) -> Any:
        car = batch.car
        return arrays.expert(track, batch.tracker, car.pos_m, car.yaw_rad, car.vx_m_s, p.wheelbase_m,
                             p.max_steering_rad, jnp)

    return jax.jit(reset), jax.jit(step), jax.jit(env_step), jax.jit(expert)


def placeholder_batch(reset: Any, key: Any) -> CarBatch:
    """A batch of ones shaped as ``reset(key)``'s (a finite stand-in for ``env_step(..., reset_all=True)``)."""
    shapes = jax.eval_shape(reset, key)[0]
    return jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype), shapes)
