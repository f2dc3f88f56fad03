"""The puck in JAX: ``num_envs`` pucks stepped by one jitted function, as a gymnasium VectorEnv.

Dynamics are MuJoCo's (:func:`sim.puck.model.euler_step_arrays`: same Euler step with implicit
damping, same timestep), so this env and the MuJoCo backend agree closely while the puck touches
no wall; the walls here clip the position and zero the outward velocity
(:func:`sim.puck.model.wall_arrays`). The task's observation, reward, success and reset mapping
are the task's own array functions (``task.arrays``, see :mod:`tasks.puck.reach`) called with
``jax.numpy``: nothing about the task is written twice. Domain randomization (mass, damping,
force gain; off by default) is drawn per sub-env at every reset.

Vector API (gymnasium 1.4, ``AutoresetMode.SAME_STEP``), laid out as ``SyncVectorEnv`` in that
mode lays out the infos of :class:`robot_rl.env.RobotEnv` sub-envs:

* ``reset(seed=s)`` -> ``obs (N, D) float32``, ``{"success": (N,) False, "_success": all True}``;
* ``step(actions (N, A))`` -> ``obs``, ``reward (N,) float64``, ``terminated``, ``truncated`` (bool);
  a sub-env that ends is reset in the same step, so its ``obs`` row is the new episode's first;
* ``info["success"]``, ``info["executed_action"] (N, A) float32`` (the action after the safety
  clip) and ``info["action_clipped"]``, with masks ``info["_<key>"]``: rows of sub-envs reset in
  this step hold their new episode's reset info (``success`` False, no action: masked out, zeros);
* only when some sub-env ended: ``info["final_obs"] (N, D) float32`` (its terminal observation;
  zeros elsewhere) with ``info["_final_obs"]`` the ended mask, and ``info["final_info"]``, a dict
  of ``success``, ``executed_action``, ``action_clipped`` of the ending step with their own masks,
  plus ``info["_final_info"]``. One difference to ``SyncVectorEnv``: there ``final_obs`` is an
  object array of per-env observations (``None`` elsewhere); here it is one dense array
  (``np.stack(info["final_obs"][info["_final_obs"]])`` works on both). And the three top-level
  keys are always present (``SyncVectorEnv`` leaves a key out when every sub-env was reset).

jax is imported here only, so ``import sim.puck`` stays cheap.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from robot_rl.vector import require_state_obs
from sim.jax_task_env import JittedTaskEnv
from sim.puck.contract import action_to_force_arrays, force_to_action_arrays
from sim.puck.model import PuckPhysics, euler_step_arrays, wall_arrays

Range = tuple[float, float]


@dataclasses.dataclass(frozen=True)
class JaxPuckConfig(PuckPhysics):
    """The JAX puck: the physics (:class:`~sim.puck.model.PuckPhysics` fields) plus

    Attributes:
        control_hz: control rate (default: the task's).
        mass_range_kg: per-episode puck mass drawn uniformly from this range (None: ``mass_kg``).
        damping_range_n_s_m: per-episode damping range (None: ``damping_n_s_m``).
        force_gain_range: per-episode actuator gain range: the applied force is the executed
            (clipped) force times the gain (None: 1, no randomization).
    """

    control_hz: float | None = None
    mass_range_kg: Range | None = None
    damping_range_n_s_m: Range | None = None
    force_gain_range: Range | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.control_hz is not None and not 0.1 <= self.control_hz <= self.physics_hz:
            raise ValueError(f"control_hz must be in [0.1, physics_hz={self.physics_hz}], got {self.control_hz}")
        for name, low_ok in (("mass_range_kg", 1e-6), ("damping_range_n_s_m", 0.0), ("force_gain_range", 0.0)):
            value = getattr(self, name)
            if value is not None and not (len(value) == 2 and low_ok <= value[0] <= value[1] < np.inf):
                raise ValueError(f"{name} must be None or (low, high) with {low_ok} <= low <= high, got {value!r}")
            if value is not None:  # a JSON list from --env-kwargs becomes a (hashable) tuple
                object.__setattr__(self, name, (float(value[0]), float(value[1])))


class PuckBatch(NamedTuple):
    """Every sub-env's state, leading axis ``N``: positions/velocities/goals ``(N, 2)`` [m, m/s]
    (table frame), elapsed control steps ``(N,)`` and this episode's dynamics ``(N,)``."""

    pos_m: Any
    vel_m_s: Any
    goal_m: Any
    steps: Any
    mass_kg: Any
    damping_n_s_m: Any
    force_gain: Any


def _draw_params(key: Any, n: int, nominal: float, value_range: Range | None) -> Any:
    if value_range is None:
        return jnp.full((n,), nominal, dtype=jnp.float32)
    return jax.random.uniform(key, (n,), jnp.float32, value_range[0], value_range[1])


def _select(done: Any, reset: PuckBatch, stepped: PuckBatch) -> PuckBatch:
    """Per sub-env: the ``reset`` state where ``done`` ``(N,)``, else the ``stepped`` one."""
    return jax.tree.map(lambda a, b: jnp.where(done.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), reset, stepped)


@functools.lru_cache(maxsize=16)
def _build(arrays: Any, max_steps: int, physics: JaxPuckConfig, num_envs: int, control_hz: float) -> tuple[Any, Any]:
    """The jitted ``reset(key)`` and ``step(batch, key, actions)`` for ``num_envs`` pucks of a task
    (its bound array functions and time limit). Cached: envs of equal settings share one compile."""
    dt_s, substeps = physics.timestep_s, physics.substeps(1.0 / control_hz)
    max_force_n, reach_m = physics.max_force_n, physics.arena_half_size_m - physics.puck_radius_m

    def fresh(key: Any) -> PuckBatch:
        keys = jax.random.split(key, 4)
        pos, goal = arrays.initial(jax.random.uniform(keys[0], (num_envs, 2, 2), jnp.float32), jnp)
        zeros = jnp.zeros((num_envs, 2), jnp.float32)
        return PuckBatch(pos, zeros, goal, jnp.zeros((num_envs,), jnp.int32),
                         _draw_params(keys[1], num_envs, physics.mass_kg, physics.mass_range_kg),
                         _draw_params(keys[2], num_envs, physics.damping_n_s_m, physics.damping_range_n_s_m),
                         _draw_params(keys[3], num_envs, 1.0, physics.force_gain_range))

    def reset(key: Any) -> tuple[PuckBatch, Any, Any]:
        key, sub = jax.random.split(key)
        batch = fresh(sub)
        return batch, key, arrays.observe(batch.pos_m, batch.vel_m_s, batch.goal_m, jnp)

    def physics_step(batch: PuckBatch, force_n: Any) -> tuple[Any, Any]:
        applied = force_n * batch.force_gain[:, None]
        mass, damping = batch.mass_kg[:, None], batch.damping_n_s_m[:, None]

        def substep(_: Any, pos_vel: tuple[Any, Any]) -> tuple[Any, Any]:
            pos, vel = euler_step_arrays(*pos_vel, applied, mass, damping, dt_s, jnp)
            return wall_arrays(pos, vel, reach_m, jnp)

        # a loop, not unrolled: XLA fuses an unrolled chain into one kernel that recomputes (3x slower)
        return jax.lax.fori_loop(0, substeps, substep, (batch.pos_m, batch.vel_m_s))

    def step(batch: PuckBatch, key: Any, actions: Any) -> tuple[PuckBatch, Any, tuple]:
        action = jnp.clip(actions, -1.0, 1.0)
        force_n = action_to_force_arrays(action, max_force_n, jnp)  # the safety clip every puck backend applies
        executed = force_to_action_arrays(force_n, max_force_n, jnp)
        pos, vel = physics_step(batch, force_n)
        stepped = batch._replace(pos_m=pos, vel_m_s=vel, steps=batch.steps + 1)
        obs = arrays.observe(pos, vel, batch.goal_m, jnp)
        success = arrays.success(pos, vel, batch.goal_m, jnp)
        terminated = arrays.terminated(pos, vel, batch.goal_m, jnp)
        truncated = ~terminated & (stepped.steps >= max_steps)
        done = terminated | truncated
        key, sub = jax.random.split(key)
        new = jax.lax.cond(done.any(), lambda: _select(done, fresh(sub), stepped), lambda: stepped)
        clipped = jnp.max(jnp.abs(executed - action), axis=-1) > 1e-4
        out = (arrays.observe(new.pos_m, new.vel_m_s, new.goal_m, jnp), arrays.reward(pos, vel, batch.goal_m, jnp),
               terminated, truncated, success, executed, clipped, jnp.where(done[:, None], obs, 0.0))
        return new, key, out

    return jax.jit(reset), jax.jit(step)


class PuckVectorEnv(JittedTaskEnv):
    """``num_envs`` puck envs of one task, stepped together in JAX (state observations only).

    See the module docstring for the info layout. ``dynamics_params`` shows each sub-env's
    (randomized) mass, damping and force gain.
    """

    def __init__(self, task: Any, num_envs: int, config: JaxPuckConfig | None = None) -> None:
        config = config or JaxPuckConfig()
        super().__init__(task, "puck", num_envs, config.spec(), config.control_hz)
        self.config = config
        self._reset_fn, self._step_fn = _build(task.arrays, task.max_episode_steps, self.config, self.num_envs,
                                               self.control_hz)

    @property
    def dynamics_params(self) -> dict[str, np.ndarray]:
        """This episode's ``mass_kg``, ``damping_n_s_m`` and ``force_gain`` per sub-env, ``(N,)``."""
        if self._batch is None:
            raise RuntimeError("call reset() first")
        return {name: np.asarray(getattr(self._batch, name)) for name in ("mass_kg", "damping_n_s_m", "force_gain")}


def make_vector_env(task: Any, obs: str, num_envs: int, **options: Any) -> PuckVectorEnv:
    """Registry entry point of the batched ``jax`` backend. Options are :class:`JaxPuckConfig`
    fields; ``obs`` must be ``"state"`` (this simulator renders nothing)."""
    require_state_obs(obs, "puck")
    return PuckVectorEnv(task, num_envs, JaxPuckConfig(**options))
