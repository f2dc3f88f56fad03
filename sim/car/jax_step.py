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

    def servo(k: Any, steer: Any) -> tuple[Any, Any, Any]:
        """The servo's angle in low-level step ``k`` and its cosine and sine."""
        target = jnp.where(k * dt < steering_delay_s - 1e-9, old_steer_cmd_rad, steer_cmd_rad)
        steer = dynamics.servo_arrays(steer, target, p.max_steering_rate_rad_s * dt, jnp)
        return steer, jnp.cos(steer), jnp.sin(steer)

    def move(carry: tuple) -> tuple:
        """The position update of the step before (from its carried heading), then this step's motion."""
        x, y, (yaw, vx, vy, r), steer, cos_steer, sin_steer, cos_yaw, sin_yaw = carry
        dx, dy = dynamics.rear_axle_velocity_arrays(cos_yaw, sin_yaw, vx, vy, r, p)
        if speed_mode:
            throttle = dynamics.speed_controller_arrays(drive, vx, p.free_speed_m_s, p.speed_gain_per_m_s, jnp)
        else:
            throttle = drive
        force = dynamics.motor_force_arrays(throttle, vx, max_force, p.free_speed_m_s, jnp)
        motion = dynamics.bicycle_motion_arrays(yaw, vx, vy, r, cos_steer, sin_steer, force, mass_kg, friction, p, dt,
                                                jnp)
        return x + dt * dx, y + dt * dy, motion, steer, cos_steer, sin_steer, jnp.cos(motion[0]), jnp.sin(motion[0])

    def substep(k: Any, carry: tuple) -> tuple:
        x, y, motion, steer, _, _, cos_yaw, sin_yaw = move(carry)
        return (x, y, motion, *servo(k + 1, steer), cos_yaw, sin_yaw)

    # Every cosine and sine is computed once and carried to the step that reads it (bicycle_motion_arrays):
    # the servo's for the next step, the heading's for the next step's position update (a zero heading
    # vector before the first step: no update). A loop, not unrolled (unrolled was ~10% slower).
    zero = jnp.zeros_like(car.yaw_rad)
    start = (car.pos_m[..., 0], car.pos_m[..., 1], (car.yaw_rad, car.vx_m_s, car.vy_cog_m_s, car.yaw_rate_rad_s),
             *servo(0, steer_rad), zero, zero)
    carry = move(jax.lax.fori_loop(0, substeps - 1, substep, start))
    x, y, (yaw, vx, vy, r), steer, _, _, cos_yaw, sin_yaw = carry
    dx, dy = dynamics.rear_axle_velocity_arrays(cos_yaw, sin_yaw, vx, vy, r, p)
    return Bicycle(jnp.stack([x + dt * dx, y + dt * dy], axis=-1), yaw, vx, vy, r), steer


def _draw(key: Any, n: int, nominal: float, value_range: tuple[float, float] | None) -> Any:
    if value_range is None:
        return jnp.full((n,), nominal, dtype=jnp.float32)
    return jax.random.uniform(key, (n,), jnp.float32, value_range[0], value_range[1])


def _select(done: Any, reset: Any, stepped: Any) -> Any:
    """Per sub-env: the ``reset`` state where ``done`` ``(N,)``, else the ``stepped`` one."""
    return jax.tree.map(lambda a, b: jnp.where(done.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), reset, stepped)


@functools.lru_cache(maxsize=16)
def build_step(arrays: Any, max_steps: int, physics: Any, num_envs: int, control_hz: float,
               sparse_restarts: int | None = None) -> tuple[Any, Any, Any, Any]:
    """Jitted ``reset(key)``, ``step(batch, key, actions)``, ``env_step`` (``step`` that can also
    reset every sub-env) and ``expert(batch)`` for ``num_envs`` cars of a task (its bound array
    functions and time limit) on ``physics``'s track. Cached: equal settings share a compile.

    ``sparse_restarts``: in a step where at most this many sub-envs restart, their fresh episodes
    are built for them alone (the same numbers as for all; default ``num_envs // 16`` from 1,024
    envs on, else 0: always for all)."""
    track = arrays.track_arrays(physics.track(), jnp, jnp.float32)
    mapping, p = arrays.mapping, physics
    control_dt = 1.0 / control_hz
    substeps = max(1, round(p.low_level_hz / control_hz))
    speed_mode = mapping.drive == SPEED
    sparse_rows = (num_envs // 16 if num_envs >= 1024 else 0) if sparse_restarts is None else sparse_restarts

    def draw(key: Any) -> tuple:
        """Every sub-env's random start: uniform samples ``(N, 3)`` for the pose, then its dynamics."""
        keys = jax.random.split(key, 5)
        delay = p.steering_delay_range_s
        return (jax.random.uniform(keys[0], (num_envs, 3), jnp.float32),
                _draw(keys[1], num_envs, p.mass_kg, p.mass_range_kg),
                _draw(keys[2], num_envs, p.friction, p.friction_range),
                jnp.minimum(_draw(keys[3], num_envs, p.steering_delay_s, delay), control_dt),
                _draw(keys[4], num_envs, 1.0, p.motor_gain_range))

    def fresh_from(draws: tuple) -> CarBatch:
        """Fresh episodes from ``draw``'s samples (any number of rows)."""
        uniform, mass, friction, delay, gain = draws
        index, pos, yaw = arrays.start_pose(track, uniform, jnp)
        zeros = jnp.zeros(yaw.shape, jnp.float32)
        return CarBatch(Bicycle(pos, yaw, zeros, zeros, zeros), zeros, zeros, zeros,
                        arrays.start(track, index, pos, yaw, 0.0, jnp, iterations=0), jnp.zeros(yaw.shape, jnp.int32),
                        mass, friction, delay, gain)

    def fresh(key: Any) -> CarBatch:
        return fresh_from(draw(key))

    def restart_ended(restart: Any, key: Any, stepped: CarBatch) -> CarBatch:
        """``_select(restart, fresh(key), stepped)``, the fresh episodes built only for the (at most
        ``sparse_rows``) sub-envs that restart when they are that few: the same numbers, the start
        (gathers, trigonometry) paid per restart instead of per sub-env."""
        draws = draw(key)
        if not sparse_rows:
            return _select(restart, fresh_from(draws), stepped)

        def few() -> CarBatch:
            rows = jnp.nonzero(restart, size=sparse_rows, fill_value=num_envs)[0]  # num_envs: no row (dropped)
            new = fresh_from(jax.tree.map(lambda a: a[jnp.minimum(rows, num_envs - 1)], draws))
            return jax.tree.map(lambda old, row: old.at[rows].set(row, mode="drop"), stepped, new)

        return jax.lax.cond(restart.sum() <= sparse_rows, few, lambda: _select(restart, fresh_from(draws), stepped))

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
        new = jax.lax.cond(restart.any(), lambda: restart_ended(restart, sub, stepped), lambda: stepped)
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
