"""The JAX quadrotor's functional core: ``num_envs`` vehicles reset and stepped by two jitted pure
functions (``reset(key) -> batch, key, obs`` and ``step(batch, key, actions) -> batch, key, out``),
which :class:`sim.quad.jax_env.QuadVectorEnv` wraps as a gymnasium VectorEnv and which a fused
training loop can call under its own ``jit``/``lax.scan`` (benchmarks/quad.py does).

One control step: the task's action mapping (``task.arrays_for(spec).actions``: a residual on the
hover fallback, computed from the true state with the nominal controller) gives a thrust + rates
command inside the spec's limits; it is queued for this episode's action delay; then, per physics
step, the body-rate PID and the mixer of :mod:`drivers.quad.control` (nominal gains and inertia,
as a flight controller knows them) turn it into motor commands, and :func:`sim.quad.dynamics.rk4_step_arrays`
integrates the vehicle with this episode's (randomized) parameters and disturbances. Observation,
reward, success and crash are the task's array functions; observation noise is added to what the
policy sees only. Ended episodes restart in the same step (SAME_STEP): new starts are drawn, for
the whole batch, only in steps where some episode ended (``lax.cond``), so steady flight pays
nothing for resets. (Drawing starts ahead in small blocks every step was tried and was slower.)

Speed notes: the physics is written per component (:mod:`sim.quad.dynamics`) and the controllers
avoid reductions over short axes and trigonometry in the hot path (see drivers/quad), which XLA
on CPU turns into separate, slow kernels (5-10x slower when written the obvious way).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from drivers.quad.control import GRAVITY_M_S2
from sim.quad.dynamics import BodyParams, RigidState, rk4_step_arrays
from sim.quad.model import QuadPhysics

Range = tuple[float, float]
UNIFORM_SIZE = 15  # the task's reset samples (tasks/quad/hover.py: UNIFORM_SIZE)


def _check_range(name: str, value: Any, low_ok: float, integer: bool = False) -> Any:
    if value is None:
        return None
    if not (len(value) == 2 and low_ok <= value[0] <= value[1] < math.inf):
        raise ValueError(f"{name} must be None or (low, high) with {low_ok} <= low <= high, got {value!r}")
    cast = int if integer else float
    if integer and any(int(v) != v for v in value):
        raise ValueError(f"{name} must hold integers, got {value!r}")
    return (cast(value[0]), cast(value[1]))


@dataclasses.dataclass(frozen=True)
class JaxQuadConfig(QuadPhysics):
    """The JAX quadrotor: the physics (:class:`~sim.quad.model.QuadPhysics` fields; RK4 at
    ``physics_hz``, here 100 Hz by default: one RK4 step per control step) plus, all off by default,
    per-episode domain randomization:

    Attributes:
        control_hz: control rate (default: the task's).
        mass_scale_range: the mass is ``mass_kg`` times a factor drawn from this range.
        inertia_scale_range: each principal inertia is scaled by its own factor from this range.
        thrust_to_weight_range: full thrust of all four motors over the (randomized) weight; sets each
            motor's maximum thrust (nominal: ``4 * max_thrust_per_motor_n / (mass_kg * g)``).
        motor_time_constant_range_s: the motor lag (> 0).
        max_disturbance_force_n: a constant force per episode, each world axis uniform in +- this.
        max_disturbance_torque_nm: a constant torque per episode, each body axis uniform in +- this.
        obs_noise_std: Gaussian noise added to every observed number (the policy's view only).
        action_delay_steps: the command applied is the one from ``d`` control steps ago, ``d`` drawn
            per episode from this integer range (``(0, 0)`` = none).
    """

    physics_hz: float = 100.0
    control_hz: float | None = None
    mass_scale_range: Range | None = None
    inertia_scale_range: Range | None = None
    thrust_to_weight_range: Range | None = None
    motor_time_constant_range_s: Range | None = None
    max_disturbance_force_n: float = 0.0
    max_disturbance_torque_nm: float = 0.0
    obs_noise_std: float = 0.0
    action_delay_steps: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.control_hz is not None and not 0.1 <= self.control_hz <= self.physics_hz:
            raise ValueError(f"control_hz must be in [0.1, physics_hz={self.physics_hz}], got {self.control_hz}")
        for name, low_ok in (("mass_scale_range", 1e-3), ("inertia_scale_range", 1e-3), ("thrust_to_weight_range", 1.0),
                             ("motor_time_constant_range_s", 1e-4)):
            object.__setattr__(self, name, _check_range(name, getattr(self, name), low_ok))
        object.__setattr__(self, "action_delay_steps", _check_range("action_delay_steps", self.action_delay_steps, 0, True))
        for name in ("max_disturbance_force_n", "max_disturbance_torque_nm", "obs_noise_std"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    @property
    def instant_motors(self) -> bool:
        return self.motor_time_constant_s == 0 and self.motor_time_constant_range_s is None


class QuadBatch(NamedTuple):
    """Every sub-env's state, leading axis ``N``: the vehicle (:class:`~sim.quad.dynamics.RigidState`),
    the target ``(N, 3)``, elapsed control steps, the rate PID's integral and previous rates
    ``(N, 3)``, the queued commands ``(N, max_delay + 1, 4)`` with this episode's delay ``(N,)``, and
    this episode's dynamics (:class:`~sim.quad.dynamics.BodyParams` fields per env, and the motors'
    maximum thrust ``(N,)`` [N]), and the executed actions the observation shows ``(N, k, 4)``
    (newest first; ``k = 0`` unless the task asks for an action history)."""

    body: RigidState
    target_m: Any
    steps: Any
    integral_rad: Any
    prev_rates_rad_s: Any
    queue: Any
    delay: Any
    params: BodyParams
    max_thrust_n: Any
    action_history: Any


def _uniform(key: Any, shape: tuple[int, ...], value_range: Range | None, nominal: float) -> Any:
    if value_range is None:
        return jnp.full(shape, nominal, jnp.float32)
    return jax.random.uniform(key, shape, jnp.float32, value_range[0], value_range[1])


def _draw_params(key: Any, n: int, physics: JaxQuadConfig) -> tuple[BodyParams, Any]:
    keys = jax.random.split(key, 6)
    mass = physics.mass_kg * _uniform(keys[0], (n,), physics.mass_scale_range, 1.0)
    inertia = jnp.asarray(physics.inertia_kg_m2, jnp.float32) * _uniform(keys[1], (n, 3), physics.inertia_scale_range, 1.0)
    nominal_ttw = 4.0 * physics.max_thrust_per_motor_n / (physics.mass_kg * GRAVITY_M_S2)
    max_thrust = _uniform(keys[2], (n,), physics.thrust_to_weight_range, nominal_ttw) * mass * GRAVITY_M_S2 / 4.0
    tau = _uniform(keys[3], (n,), physics.motor_time_constant_range_s, max(physics.motor_time_constant_s, 1e-4))
    force = physics.max_disturbance_force_n * jax.random.uniform(keys[4], (n, 3), jnp.float32, -1.0, 1.0)
    torque = physics.max_disturbance_torque_nm * jax.random.uniform(keys[5], (n, 3), jnp.float32, -1.0, 1.0)
    drag = jnp.full((n,), physics.linear_drag_n_s_m, jnp.float32)
    # The geometry is the same for every env: bound in the step, not carried (None leaves no pytree leaf).
    return BodyParams(mass, inertia, tau, drag, force, torque, None, None), max_thrust


def _select(done: Any, reset: Any, stepped: Any) -> Any:
    """Per sub-env: the ``reset`` leaf where ``done`` ``(N,)``, else the ``stepped`` one."""
    return jax.tree.map(lambda a, b: jnp.where(done.reshape((-1,) + (1,) * (jnp.ndim(a) - 1)), a, b) if jnp.ndim(a)
                        else a, reset, stepped)


def goal_arrays(batch: QuadBatch, arrays: Any, control_hz: float) -> Any:
    """What the task's array functions take as ``target_m``: the episode's target ``(N, 3)``, or for a
    task whose goal moves (``arrays.timed``, e.g. tasks/quad/track.py) the episode's parameters drawn at
    reset with the elapsed time [s] appended, ``(N, P + 1)``."""
    if not getattr(arrays, "timed", False):
        return batch.target_m
    elapsed_s = batch.steps.astype(batch.target_m.dtype) / control_hz
    return jnp.concatenate([batch.target_m, elapsed_s[:, None]], axis=-1)


@functools.lru_cache(maxsize=16)
def build(arrays: Any, max_steps: int, physics: JaxQuadConfig, num_envs: int, control_hz: float) -> tuple[Any, Any]:
    """The jitted ``reset(key)`` and ``step(batch, key, actions)`` for ``num_envs`` vehicles of a task
    (``arrays``: its bound array functions, ``task.arrays_for(spec)``). Cached: equal settings share
    one compile. ``step`` returns ``(batch, key, (obs, reward, terminated, truncated, success,
    executed_action, action_clipped, final_obs))``, ``final_obs`` zero where no episode ended."""
    dt_s, substeps = physics.timestep_s, physics.substeps(1.0 / control_hz)
    actions = arrays.actions
    # The flight controller below the policy: the task's nominal cascade plus the mixer's torque coefficient.
    controller = dataclasses.replace(actions.controller, yaw_torque_per_thrust_m=physics.yaw_torque_per_thrust_m)
    delay_low, delay_high = physics.action_delay_steps
    n, history_steps = num_envs, getattr(arrays, "history_steps", 0)
    uniform_size = getattr(arrays, "uniform_size", UNIFORM_SIZE)

    def fresh(key: Any) -> QuadBatch:
        k_init, k_params, k_delay = jax.random.split(key, 3)
        target, pos, quat, vel, rates = arrays.initial(jax.random.uniform(k_init, (n, uniform_size), jnp.float32), jnp)
        params, max_thrust = _draw_params(k_params, n, physics)
        hover_n = params.mass_kg * GRAVITY_M_S2 / 4.0  # flying: motors at hover thrust, rate loop at rest
        body = RigidState(pos, quat, vel, rates, jnp.broadcast_to(hover_n[:, None], (n, 4)))
        delay = jax.random.randint(k_delay, (n,), delay_low, delay_high + 1) if delay_high else jnp.zeros((n,), jnp.int32)
        queue = jnp.zeros((n, delay_high + 1, 4), jnp.float32).at[..., 0].set(physics.hover_thrust_frac)
        return QuadBatch(body, target, jnp.zeros((n,), jnp.int32), jnp.zeros((n, 3), jnp.float32), rates,
                         queue, delay, params, max_thrust, jnp.zeros((n, history_steps, 4), jnp.float32))

    def observe(batch: QuadBatch, key: Any) -> Any:
        b = batch.body
        history = batch.action_history if history_steps else None
        obs = arrays.observe(b.pos_m, b.quat_wxyz, b.vel_m_s, b.rates_rad_s, goal_arrays(batch, arrays, control_hz),
                             jnp, history)
        if physics.obs_noise_std > 0:
            obs = obs + physics.obs_noise_std * jax.random.normal(key, obs.shape, obs.dtype)
        return obs

    def reset(key: Any) -> tuple[QuadBatch, Any, Any]:
        key, sub, noise = jax.random.split(key, 3)
        batch = fresh(sub)
        return batch, key, observe(batch, noise)

    def fly(batch: QuadBatch, command: Any) -> QuadBatch:
        """The flight controller (rate PID + mixer) and RK4 over one control period."""
        params = batch.params._replace(arm_length_m=physics.arm_length_m,
                                       yaw_torque_per_thrust_m=physics.yaw_torque_per_thrust_m)
        collective, rates_target = command[:, 0], command[:, 1:]

        def substep(_: Any, carry: tuple) -> tuple:
            body, integral, prev = carry
            torque, integral = controller.rates_to_torque(rates_target, body.rates_rad_s, jnp, integral, prev, dt_s)
            thrust_cmd = controller.motor_fractions(collective, torque, jnp) * batch.max_thrust_n[:, None]
            return rk4_step_arrays(body, thrust_cmd, params, dt_s, jnp, physics.instant_motors), integral, body.rates_rad_s

        carry = (batch.body, batch.integral_rad, batch.prev_rates_rad_s)
        body, integral, prev = substep(0, carry) if substeps == 1 else jax.lax.fori_loop(0, substeps, substep, carry)
        return batch._replace(body=body, integral_rad=integral, prev_rates_rad_s=prev, steps=batch.steps + 1)

    def step(batch: QuadBatch, key: Any, action_in: Any) -> tuple[QuadBatch, Any, tuple]:
        action = jnp.clip(action_in, -1.0, 1.0)
        b = batch.body
        # the command (within the spec's limits) and the action it amounts to
        collective, rates, executed = actions.to_thrust_rates_and_back(action, b.vel_m_s, b.quat_wxyz, jnp)
        command = jnp.concatenate([collective[:, None], rates], axis=-1)
        queue = jnp.concatenate([command[:, None], batch.queue[:, :-1]], axis=1)
        applied = jnp.take_along_axis(queue, batch.delay[:, None, None], axis=1)[:, 0] if delay_high else command
        history = arrays.push_history(batch.action_history, executed, jnp) if history_steps else batch.action_history
        stepped = fly(batch._replace(queue=queue, action_history=history), applied)
        s = stepped.body
        key, k_reset, k_noise, k_final = jax.random.split(key, 4)
        terminated = arrays.terminated(s.pos_m, jnp)
        truncated = ~terminated & (stepped.steps >= max_steps)
        done = terminated | truncated
        goal = goal_arrays(stepped, arrays, control_hz)
        reward = arrays.reward(s.pos_m, s.quat_wxyz, s.vel_m_s, s.rates_rad_s, goal, jnp)
        success = arrays.success(s.pos_m, s.vel_m_s, goal, jnp)
        final_obs = observe(stepped, k_final)

        def restart() -> tuple[QuadBatch, Any]:
            new = _select(done, fresh(k_reset), stepped)
            return new, jnp.where(done[:, None], observe(new, k_noise), final_obs)

        # Resets are drawn only in steps where some episode ended; the observation is then recomputed.
        new, obs = jax.lax.cond(done.any(), restart, lambda: (stepped, final_obs))
        gap = jnp.abs(executed - action)
        clipped = jnp.maximum(jnp.maximum(gap[:, 0], gap[:, 1]), jnp.maximum(gap[:, 2], gap[:, 3])) > 1e-4
        out = (obs, reward, terminated, truncated, success, executed, clipped,
               jnp.where(done[:, None], final_obs, 0.0))
        return new, key, out

    return jax.jit(reset), jax.jit(step)


PRIVILEGED_SIZE = 15


def privileged_arrays(batch: QuadBatch, physics: JaxQuadConfig) -> Any:
    """What the simulator knows and the policy does not (an asymmetric critic's extra input), ``(N, 15)``,
    each scaled to order one: the motors' thrusts over their maximum (4), the disturbance force over the
    nominal weight (3, world) and torque over 1e-4 N m (3, body), then over their nominal values the
    mass, the motors' full thrust and time constant (3), the action delay in steps (1) and the
    inertia's mean scale (1)."""
    p = batch.params
    weight_n = physics.mass_kg * GRAVITY_M_S2
    tau_nominal = max(physics.motor_time_constant_s, 1e-4)
    inertia_scale = jnp.mean(p.inertia_kg_m2 / jnp.asarray(physics.inertia_kg_m2, jnp.float32), axis=-1)
    columns = [batch.body.thrust_n / batch.max_thrust_n[:, None], p.force_disturbance_n / weight_n,
               p.torque_disturbance_nm / 1e-4, (p.mass_kg / physics.mass_kg)[:, None],
               (batch.max_thrust_n / physics.max_thrust_per_motor_n)[:, None],
               (p.motor_time_constant_s / tau_nominal)[:, None], batch.delay[:, None].astype(jnp.float32),
               inertia_scale[:, None]]
    return jnp.concatenate(columns, axis=-1)
