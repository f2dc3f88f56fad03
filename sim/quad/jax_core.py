"""The JAX quadrotor's functional core: ``num_envs`` vehicles reset and stepped by two jitted pure
functions (``reset(key) -> batch, key, obs`` and ``step(batch, key, actions) -> batch, key, out``),
which :class:`sim.quad.jax_env.QuadVectorEnv` wraps as a gymnasium VectorEnv and which a fused
training loop can call under its own ``jit``/``lax.scan`` (benchmarks/quad.py does).

One control step: the task's action mapping (``task.arrays_for(spec).actions``: a residual on the
hover fallback, computed from the true state with the nominal controller) gives a thrust + rates
command inside the spec's limits; it is queued for this episode's action delay; then, per physics
step, the body-rate PID and the mixer of :mod:`drivers.quad.control` (nominal gains and inertia,
as a flight controller knows them) turn it into motor commands, and :func:`sim.quad.dynamics.rk4_step_components`
integrates the vehicle with this episode's (randomized) parameters and disturbances. Observation,
reward, success and crash are the task's array functions; observation noise is added to what the
policy sees only. Ended episodes restart in the same step (SAME_STEP), only in steps where some
episode ended (``lax.cond``), and when few did, only for them (``sparse_restarts``): their new
starts are those rows of the draw for all (:mod:`sim.quad.jax_draws`), so steady flight pays nothing
for resets and random flight (~60 of 16,384 restarting per step) pays per restart, not per sub-env.

Speed notes (XLA on a 2-core CPU; benchmarks/quad.py): the batch is component-major (the sub-env axis
last, each component a contiguous row, see :class:`QuadBatch`): with ``(N, 3)`` rows XLA split the
step into ~60 strided kernels, ~1.4x slower with hold actions and ~2.4x with random ones (restarts
drawn for all). The physics is written per component (:func:`sim.quad.dynamics.rk4_step_components`)
and the controllers avoid reductions over short axes and trigonometry in the hot path (see
drivers/quad), which XLA on CPU turns into separate, slow kernels (5-10x slower when written the
obvious way).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from drivers.quad.control import GRAVITY_M_S2
from sim.quad.dynamics import BodyParams, RigidState, param_components, rk4_step_components
from sim.quad.jax_draws import normal_rows, uniform_rows
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
    """Every sub-env's state, **component-major**: the sub-env axis ``N`` comes last in every leaf, so
    each component is one contiguous row (XLA on CPU then reads and writes contiguous rows; with
    ``(N, 3)`` rows the RK4 alone ran ~7x slower, in ~40 kernels of strided loads). The vehicle
    (:class:`~sim.quad.dynamics.RigidState` fields ``(3, N)``, ``(4, N)``, ``(3, N)``, ``(3, N)``,
    ``(4, N)``; :func:`vehicle_arrays` gives the ``(N, k)`` views), the task's episode draw ``(P, N)``
    (the target, ``P = 3``), elapsed control steps ``(N,)``, the rate PID's integral and previous
    rates ``(3, N)``, the queued commands ``(max_delay + 1, 4, N)`` (newest first) with this episode's
    delay ``(N,)``, this episode's dynamics (:class:`~sim.quad.dynamics.BodyParams` fields, vectors
    ``(3, N)``, and the motors' maximum thrust ``(N,)`` [N]), and the executed actions the
    observation shows ``(k, 4, N)`` (newest first; ``k = 0`` unless the task asks for a history)."""

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


def rows_first(a: Any) -> Any:
    """A component-major leaf ``(..., N)`` as the task's array functions take it, ``(N, ...)``."""
    return jnp.moveaxis(a, -1, 0)


def rows_last(a: Any) -> Any:
    """``(N, ...)`` -> component-major ``(..., N)``."""
    return jnp.moveaxis(a, 0, -1)


def vehicle_arrays(batch: QuadBatch) -> RigidState:
    """The vehicles' state as ``(N, 3)`` / ``(N, 4)`` arrays (the task's and the controllers' layout)."""
    return RigidState(*(rows_first(a) for a in batch.body))


def _uniform(key: Any, rows: Any, n: int, width: int, value_range: Range | None, nominal: float) -> Any:
    """Per sub-env values ``(m,)`` (``width`` 1) or ``(width, m)``: ``nominal``, or drawn from ``value_range``
    (the rows ``rows`` of the draw for all ``n``; ``None``: all)."""
    m = n if rows is None else rows.shape[0]
    shape = (m,) if width == 1 else (width, m)
    if value_range is None:
        return jnp.full(shape, nominal, jnp.float32)
    draw = uniform_rows(key, rows, n, width, value_range[0], value_range[1])
    return draw[:, 0] if width == 1 else draw.T


def _draw_params(key: Any, rows: Any, n: int, physics: JaxQuadConfig) -> tuple[BodyParams, Any]:
    keys = jax.random.split(key, 6)
    mass = physics.mass_kg * _uniform(keys[0], rows, n, 1, physics.mass_scale_range, 1.0)
    inertia = jnp.asarray(physics.inertia_kg_m2, jnp.float32)[:, None] * _uniform(
        keys[1], rows, n, 3, physics.inertia_scale_range, 1.0)
    nominal_ttw = 4.0 * physics.max_thrust_per_motor_n / (physics.mass_kg * GRAVITY_M_S2)
    max_thrust = _uniform(keys[2], rows, n, 1, physics.thrust_to_weight_range, nominal_ttw) * mass * GRAVITY_M_S2 / 4.0
    tau = _uniform(keys[3], rows, n, 1, physics.motor_time_constant_range_s, max(physics.motor_time_constant_s, 1e-4))
    # a zero disturbance is not drawn (the draw times zero, up to the sign of zero)
    force, torque = ((scale * _uniform(k, rows, n, 3, (-1.0, 1.0), 0.0) if scale else 0.0 * inertia)
                     for k, scale in ((keys[4], physics.max_disturbance_force_n),
                                      (keys[5], physics.max_disturbance_torque_nm)))
    drag = jnp.full(mass.shape, physics.linear_drag_n_s_m, jnp.float32)
    # The geometry is the same for every env: bound in the step, not carried (None leaves no pytree leaf).
    return BodyParams(mass, inertia, tau, drag, force, torque, None, None), max_thrust


def _select(done: Any, reset: Any, stepped: Any) -> Any:
    """Per sub-env: the ``reset`` leaf where ``done`` ``(N,)``, else the ``stepped`` one (sub-env axis last)."""
    return jax.tree.map(lambda a, b: jnp.where(done, a, b), reset, stepped)


def _set_rows(batch: QuadBatch, rows: Any, new: QuadBatch) -> QuadBatch:
    """``batch`` with the sub-envs ``rows`` replaced by ``new``'s (rows ``>= N`` are dropped)."""
    return jax.tree.map(lambda old, row: old.at[..., rows].set(row, mode="drop"), batch, new)


def goal_arrays(batch: QuadBatch, arrays: Any, control_hz: float) -> Any:
    """What the task's array functions take as ``target_m``: the episode's target ``(N, 3)``, or for a
    task whose goal moves (``arrays.timed``, e.g. tasks/quad/track.py) the episode's parameters drawn at
    reset with the elapsed time [s] appended, ``(N, P + 1)``."""
    target = rows_first(batch.target_m)
    if not getattr(arrays, "timed", False):
        return target
    elapsed_s = batch.steps.astype(target.dtype) / control_hz
    return jnp.concatenate([target, elapsed_s[:, None]], axis=-1)


def _pack(c: tuple) -> RigidState:
    return RigidState(jnp.stack(c[0:3]), jnp.stack(c[3:7]), jnp.stack(c[7:10]), jnp.stack(c[10:13]), jnp.stack(c[13:17]))


STAGES_ONCE_MIN_ENVS = 256


def computed_once(pred: Any) -> Callable[[Callable], Callable]:
    """``once(f)``: ``f`` behind a conditional whose predicate ``pred`` (traced) is always true and whose
    branches are both ``f``. XLA on CPU drops ``lax.optimization_barrier``, but a conditional's operands
    and results are computed once and kept: a fusion barrier. Without one it recomputes cheap shared
    chains inside each consumer's kernel (the rate PID inside the RK4's kernels, an RK4 stage's
    derivative inside the next stages': 1,655 arithmetic operations per sub-env in the RK4's kernels
    against ~650 in its formula)."""
    return lambda f: (lambda *args: jax.lax.cond(pred, f, f, *args))


def fly_arrays(batch: QuadBatch, command: Any, controller: Any, physics: JaxQuadConfig, substeps: int) -> QuadBatch:
    """The flight controller (rate PID + mixer, nominal gains) and RK4 over one control period
    (``substeps`` physics steps), for the commands ``(N, 4)`` (collective, body-rate targets).

    From :data:`STAGES_ONCE_MIN_ENVS` sub-envs on, each RK4 stage's derivative is computed once
    (:func:`computed_once`): on one core at 8,192 sub-envs, hold actions, 1.3x the env steps/s
    (7.6-8.3e6 -> 10.3-10.8e6); with few sub-envs the conditionals' fixed cost outweighs it (the
    fused trainer's 32: 7-17% slower per iteration)."""
    dt_s = physics.timestep_s
    p = param_components(batch.params._replace(arm_length_m=physics.arm_length_m,
                                               yaw_torque_per_thrust_m=physics.yaw_torque_per_thrust_m), True)
    collective, rates_target = command[:, 0], command[:, 1:]
    max_thrust = batch.max_thrust_n[:, None]
    once = computed_once(batch.steps[0] >= 0)
    stages_once = once if command.shape[0] >= STAGES_ONCE_MIN_ENVS else None

    def integrate(c: tuple, cmd: tuple) -> tuple:
        return rk4_step_components(c, cmd, p, dt_s, jnp, physics.instant_motors, stages_once)

    def substep(_: Any, carry: tuple) -> tuple:
        c, integral, prev = carry
        rates = jnp.stack(c[10:13], axis=-1)
        torque, integral = controller.rates_to_torque(rates_target, rates, jnp, rows_first(integral),
                                                      rows_first(prev), dt_s)
        thrust_cmd = controller.motor_fractions(collective, torque, jnp) * max_thrust
        cmd = tuple(thrust_cmd[:, i] for i in range(4))
        new = once(integrate)(c, cmd)  # the rate PID and mixer computed once, not in each RK4 kernel (~12%)
        return new, rows_last(integral), jnp.stack(c[10:13])

    carry = (tuple(row for part in batch.body for row in part), batch.integral_rad, batch.prev_rates_rad_s)
    c, integral, prev = substep(0, carry) if substeps == 1 else jax.lax.fori_loop(0, substeps, substep, carry)
    return batch._replace(body=_pack(c), integral_rad=integral, prev_rates_rad_s=prev, steps=batch.steps + 1)


def fresh_batch(key: Any, rows: Any, arrays: Any, physics: JaxQuadConfig, num_envs: int) -> QuadBatch:
    """New episodes (the task's start draw, this config's dynamics) for all ``num_envs`` sub-envs
    (``rows=None``), or for the sub-envs ``rows`` alone: the same numbers as those rows of the former."""
    n, history_steps = num_envs, getattr(arrays, "history_steps", 0)
    delay_low, delay_high = physics.action_delay_steps
    k_init, k_params, k_delay = jax.random.split(key, 3)
    uniform = uniform_rows(k_init, rows, n, getattr(arrays, "uniform_size", UNIFORM_SIZE))
    target, pos, quat, vel, rates = arrays.initial(uniform, jnp)
    params, max_thrust = _draw_params(k_params, rows, n, physics)
    m = params.mass_kg.shape[0]
    hover_n = params.mass_kg * GRAVITY_M_S2 / 4.0  # flying: motors at hover thrust, rate loop at rest
    body = RigidState(rows_last(pos), rows_last(quat), rows_last(vel), rows_last(rates), jnp.broadcast_to(hover_n, (4, m)))
    delay = jnp.zeros((m,), jnp.int32)
    if delay_high:
        delay = jax.random.randint(k_delay, (n,), delay_low, delay_high + 1)
        delay = delay if rows is None else delay[jnp.minimum(rows, n - 1)]
    queue = jnp.zeros((delay_high + 1, 4, m), jnp.float32).at[:, 0].set(physics.hover_thrust_frac)
    return QuadBatch(body, rows_last(target), jnp.zeros((m,), jnp.int32), jnp.zeros((3, m), jnp.float32),
                     rows_last(rates), queue, delay, params, max_thrust, jnp.zeros((history_steps, 4, m), jnp.float32))


def _sparse_tiers(num_envs: int, sparse_restarts: int | None) -> tuple[int, ...]:
    """Row counts up to which restarts are built for the restarting sub-envs alone, smallest first."""
    if sparse_restarts is None:
        return tuple(sorted({max(8, num_envs // 128), num_envs // 16})) if num_envs >= 1024 else ()
    if not (isinstance(sparse_restarts, int) and 0 <= sparse_restarts <= num_envs):
        raise ValueError(f"sparse_restarts must be None or an integer in [0, num_envs={num_envs}], got {sparse_restarts!r}")
    return (sparse_restarts,) if sparse_restarts else ()


@functools.lru_cache(maxsize=16)
def build(arrays: Any, max_steps: int, physics: JaxQuadConfig, num_envs: int, control_hz: float,
          sparse_restarts: int | None = None) -> tuple[Any, Any]:
    """The jitted ``reset(key)`` and ``step(batch, key, actions)`` for ``num_envs`` vehicles of a task
    (``arrays``: its bound array functions, ``task.arrays_for(spec)``). Cached: equal settings share
    one compile. ``step`` returns ``(batch, key, (obs, reward, terminated, truncated, success,
    executed_action, action_clipped, final_obs))``, ``final_obs`` zero where no episode ended.

    ``sparse_restarts``: in a step where at most this many sub-envs restart, their new episodes are
    drawn and built for them alone (:mod:`sim.quad.jax_draws`: the same numbers as for all; 0: always
    for all). Default: from 1,024 sub-envs on, two tiers, ``num_envs // 128`` (at least 8) and
    ``num_envs // 16`` rows (random actions restart ~60 of 16,384 per step), else 0."""
    substeps = physics.substeps(1.0 / control_hz)
    actions = arrays.actions
    # The flight controller below the policy: the task's nominal cascade plus the mixer's torque coefficient.
    controller = dataclasses.replace(actions.controller, yaw_torque_per_thrust_m=physics.yaw_torque_per_thrust_m)
    delay_high = physics.action_delay_steps[1]
    n, history_steps = num_envs, getattr(arrays, "history_steps", 0)
    tiers = _sparse_tiers(num_envs, sparse_restarts)

    def fresh(key: Any, rows: Any = None) -> QuadBatch:
        return fresh_batch(key, rows, arrays, physics, n)

    def observe(batch: QuadBatch, key: Any, rows: Any = None) -> Any:
        """The policy's observation of every sub-env of ``batch`` (those of ``rows``: its noise rows)."""
        b = vehicle_arrays(batch)
        history = rows_first(batch.action_history) if history_steps else None
        obs = arrays.observe(b.pos_m, b.quat_wxyz, b.vel_m_s, b.rates_rad_s, goal_arrays(batch, arrays, control_hz),
                             jnp, history)
        if physics.obs_noise_std > 0:
            obs = obs + physics.obs_noise_std * normal_rows(key, rows, n, obs.shape[-1])
        return obs

    def reset(key: Any) -> tuple[QuadBatch, Any, Any]:
        key, sub, noise = jax.random.split(key, 3)
        batch = fresh(sub)
        return batch, key, observe(batch, noise)

    def restart(done: Any, stepped: QuadBatch, final_obs: Any, k_reset: Any, k_noise: Any) -> tuple[QuadBatch, Any]:
        """Sub-envs where ``done`` start new episodes; their rows of the observation are the new ones'."""
        def every() -> tuple[QuadBatch, Any]:
            new = _select(done, fresh(k_reset), stepped)
            return new, jnp.where(done[:, None], observe(new, k_noise), final_obs)

        def few(size: int) -> tuple[QuadBatch, Any]:
            rows = jnp.nonzero(done, size=size, fill_value=n)[0]  # n: no row (dropped)
            new = fresh(k_reset, rows)
            return _set_rows(stepped, rows, new), final_obs.at[rows].set(observe(new, k_noise, rows), mode="drop")

        count, pick = done.sum(), every
        for size in reversed(tiers):  # the smallest tier that holds this step's restarts
            pick = functools.partial(jax.lax.cond, count <= size, functools.partial(few, size), pick)
        return pick()

    def command_arrays(batch: QuadBatch, action: Any) -> tuple[Any, Any, Any, Any]:
        """``(applied command (N, 4), executed action (N, 4), queue, action history)`` for this step."""
        b = vehicle_arrays(batch)
        collective, rates, executed = actions.to_thrust_rates_and_back(action, b.vel_m_s, b.quat_wxyz, jnp)
        command = jnp.concatenate([collective[:, None], rates], axis=-1)
        queue = jnp.concatenate([rows_last(command)[None], batch.queue[:-1]], axis=0)
        applied = rows_first(jnp.take_along_axis(queue, batch.delay[None, None, :], axis=0)[0]) if delay_high else command
        history = batch.action_history
        if history_steps:
            history = rows_last(arrays.push_history(rows_first(history), executed, jnp))
        return applied, executed, queue, history

    def step(batch: QuadBatch, key: Any, action_in: Any) -> tuple[QuadBatch, Any, tuple]:
        action = jnp.clip(action_in, -1.0, 1.0)
        applied, executed, queue, history = command_arrays(batch, action)
        stepped = fly_arrays(batch._replace(queue=queue, action_history=history), applied, controller, physics, substeps)
        s = vehicle_arrays(stepped)
        key, k_reset, k_noise, k_final = jax.random.split(key, 4)
        terminated = arrays.terminated(s.pos_m, jnp)
        truncated = ~terminated & (stepped.steps >= max_steps)
        done = terminated | truncated
        goal = goal_arrays(stepped, arrays, control_hz)
        reward = arrays.reward(s.pos_m, s.quat_wxyz, s.vel_m_s, s.rates_rad_s, goal, jnp)
        success = arrays.success(s.pos_m, s.vel_m_s, goal, jnp)
        final_obs = observe(stepped, k_final)
        # Resets are drawn only in steps where some episode ended; the observation is then recomputed.
        new, obs = jax.lax.cond(done.any(), lambda: restart(done, stepped, final_obs, k_reset, k_noise),
                                lambda: (stepped, final_obs))
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
    inertia_scale = jnp.mean(rows_first(p.inertia_kg_m2) / jnp.asarray(physics.inertia_kg_m2, jnp.float32), axis=-1)
    columns = [rows_first(batch.body.thrust_n) / batch.max_thrust_n[:, None], rows_first(p.force_disturbance_n) / weight_n,
               rows_first(p.torque_disturbance_nm) / 1e-4, (p.mass_kg / physics.mass_kg)[:, None],
               (batch.max_thrust_n / physics.max_thrust_per_motor_n)[:, None],
               (p.motor_time_constant_s / tau_nominal)[:, None], batch.delay[:, None].astype(jnp.float32),
               inertia_scale[:, None]]
    return jnp.concatenate(columns, axis=-1)
