"""The quadrotor in JAX: ``num_envs`` vehicles stepped by one jitted function, as a gymnasium VectorEnv.

Dynamics, flight controller and randomization are :mod:`sim.quad.jax_core`'s (the equations of
:mod:`sim.quad.dynamics`, the same ODE MuJoCo integrates for our MJCF); observation, reward, success,
crash and the action mapping are the task's own array functions (``task.arrays_for(spec)``, see
:mod:`tasks.quad.hover`) called with ``jax.numpy``: nothing about the task is written twice.

Vector API (gymnasium 1.4, ``AutoresetMode.SAME_STEP``), laid out exactly as the puck's JAX env
(:mod:`sim.puck.jax_env`), i.e. as ``SyncVectorEnv`` in that mode lays out :class:`robot_rl.env.RobotEnv`
sub-envs:

* ``reset(seed=s)`` -> ``obs (N, 18) float32``, ``{"success": (N,) False, "_success": all True}``;
* ``step(actions (N, 4))`` -> ``obs``, ``reward (N,) float64``, ``terminated``, ``truncated`` (bool);
  a sub-env that ends is reset in the same step, so its ``obs`` row is the new episode's first;
* ``info["success"]``, ``info["executed_action"] (N, 4) float32`` (the action after the safety
  limits) and ``info["action_clipped"]``, with masks ``info["_<key>"]``: rows of sub-envs reset in
  this step hold their new episode's reset info (``success`` False, no action: masked out, zeros);
* only when some sub-env ended: ``info["final_obs"] (N, 18) float32`` (its terminal observation,
  zeros elsewhere) with ``info["_final_obs"]``, and ``info["final_info"]`` (``success``,
  ``executed_action``, ``action_clipped`` of the ending step with their masks) with ``info["_final_info"]``.
  ``final_obs`` is one dense array where ``SyncVectorEnv`` has an object array.

``functional`` gives the jitted ``reset(key)`` / ``step(batch, key, actions)`` pair for fused loops,
``privileged`` the simulator's extra state for an asymmetric critic, ``expert`` the task's expert.
jax is imported here only, so ``import sim.quad`` stays cheap.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax.numpy as jnp
import numpy as np

from robot_rl.vector import require_state_obs
from sim.jax_task_env import JittedTaskEnv
from sim.quad.jax_core import JaxQuadConfig, build, goal_arrays, privileged_arrays, rows_first, vehicle_arrays


@dataclasses.dataclass(frozen=True)
class RewardTermsArrays:
    """A task's bound array functions whose ``reward`` gives its ``reward_terms`` instead: built into the
    step of :attr:`QuadVectorEnv.functional_reward_terms` (everything else is the task's)."""

    arrays: Any

    def __getattr__(self, name: str) -> Any:
        if name == "arrays":  # not set yet (copy, unpickle): no recursion
            raise AttributeError(name)
        return getattr(self.arrays, name)

    def reward(self, pos_m: Any, quat_wxyz: Any, vel_m_s: Any, rates_rad_s: Any, target_m: Any, xp: Any) -> Any:
        return self.arrays.reward_terms(pos_m, quat_wxyz, vel_m_s, rates_rad_s, target_m, xp)


class QuadVectorEnv(JittedTaskEnv):
    """``num_envs`` quadrotor envs of one task, stepped together in JAX (state observations only).

    See the module docstring for the info layout; ``dynamics_params`` shows each sub-env's
    (randomized) dynamics.
    """

    def __init__(self, task: Any, num_envs: int, config: JaxQuadConfig | None = None) -> None:
        config = config or JaxQuadConfig()
        super().__init__(task, "quadrotor", num_envs, config.spec(), config.control_hz, needs="arrays_for")
        self.config = config
        if self.control_hz > self.config.physics_hz:
            raise ValueError(f"control_hz {self.control_hz} exceeds physics_hz {self.config.physics_hz}")
        task.config.check_fence(self.backend_spec)
        self.arrays = task.arrays_for(self.backend_spec)
        self._reset_fn, self._step_fn = build(self.arrays, task.max_episode_steps, self.config, self.num_envs,
                                              self.control_hz)

    @property
    def functional(self) -> tuple[Any, Any]:
        """The jitted ``reset(key) -> (batch, key, obs)`` and ``step(batch, key, actions) -> (batch, key,
        out)`` (:func:`sim.quad.jax_core.build`), for loops fused under ``jit``/``lax.scan``."""
        return self._reset_fn, self._step_fn

    @property
    def functional_reward_terms(self) -> tuple[Any, Any]:
        """:attr:`functional`'s pair, except that the step's reward slot holds the task's reward terms
        ``(N, 5)`` (``task.arrays_for(spec).reward_terms``): a fused loop turns them into the reward with
        its own cost weights through :attr:`reward_from_terms` (a curriculum on reward weights)."""
        owner = {name: next((k for k in type(self.arrays).__mro__ if name in vars(k)), None)
                 for name in ("reward", "reward_terms")}
        if owner["reward_terms"] is None or owner["reward"] is not owner["reward_terms"]:  # e.g. a subclass's own reward
            raise ValueError(f"task {self.task.name!r} does not expose the terms of its reward (`reward_terms` beside "
                             f"`reward` in {type(self.arrays).__name__}): no curriculum on its reward weights")
        return build(RewardTermsArrays(self.arrays), self.task.max_episode_steps, self.config, self.num_envs,
                     self.control_hz)

    @property
    def reward_from_terms(self) -> Any:
        """``reward_from_terms(terms (N, 5), weights (4,), extra_cost=None) -> (N,)`` (traceable; at
        :attr:`cost_weights` and no extra cost: the task's reward)."""
        return functools.partial(self.arrays.reward_from_terms, xp=jnp)

    @property
    def cost_weights(self) -> tuple[float, ...]:
        """The task's cost weights, the order :attr:`reward_from_terms` takes them in."""
        return tuple(self.arrays.cost_weights)

    @property
    def privileged(self) -> Any:
        """``privileged(batch) -> (N, 15)`` (:func:`sim.quad.jax_core.privileged_arrays`): motor thrusts,
        disturbances and randomized dynamics, for an asymmetric critic in a fused loop (traceable)."""
        return functools.partial(privileged_arrays, physics=self.config)

    @property
    def expert(self) -> Any:
        """``expert(batch) -> (N, 4)``: the task's scripted expert's action for every sub-env's true
        state and target (traceable; a fused loop's guide, see :mod:`robot_rl.fused.td3`)."""
        arrays, control_hz = self.arrays, self.control_hz

        def expert(batch: Any) -> Any:
            b = vehicle_arrays(batch)
            return arrays.expert(b.pos_m, b.quat_wxyz, b.vel_m_s, goal_arrays(batch, arrays, control_hz), jnp)

        return expert

    @property
    def dynamics_params(self) -> dict[str, np.ndarray]:
        """This episode's dynamics per sub-env: ``mass_kg (N,)``, ``inertia_kg_m2 (N, 3)``,
        ``max_thrust_per_motor_n (N,)``, ``motor_time_constant_s (N,)``, ``force_disturbance_n (N, 3)``,
        ``torque_disturbance_nm (N, 3)``, ``action_delay_steps (N,)``."""
        if self._batch is None:
            raise RuntimeError("call reset() first")
        p = self._batch.params
        values = {"mass_kg": p.mass_kg, "inertia_kg_m2": rows_first(p.inertia_kg_m2),
                  "max_thrust_per_motor_n": self._batch.max_thrust_n, "motor_time_constant_s": p.motor_time_constant_s,
                  "force_disturbance_n": rows_first(p.force_disturbance_n),
                  "torque_disturbance_nm": rows_first(p.torque_disturbance_nm), "action_delay_steps": self._batch.delay}
        return {name: np.asarray(value) for name, value in values.items()}

    @property
    def vehicle_state(self) -> dict[str, np.ndarray]:
        """The true state per sub-env (privileged): ``pos_m``, ``quat_wxyz``, ``vel_m_s``,
        ``rates_rad_s``, ``thrust_n`` (the motors'), ``target_m`` (the episode's draw) and ``goal`` (what
        the task's array functions take as ``target_m``: :func:`sim.quad.jax_core.goal_arrays`)."""
        if self._batch is None:
            raise RuntimeError("call reset() first")
        return {**{name: np.asarray(value) for name, value in vehicle_arrays(self._batch)._asdict().items()},
                "target_m": np.asarray(rows_first(self._batch.target_m)),
                "goal": np.asarray(goal_arrays(self._batch, self.arrays, self.control_hz))}


def make_vector_env(task: Any, obs: str, num_envs: int, **options: Any) -> QuadVectorEnv:
    """Registry entry point of the batched ``jax`` backend. Options are :class:`~sim.quad.jax_core.JaxQuadConfig`
    fields; ``obs`` must be ``"state"`` (this simulator renders nothing)."""
    require_state_obs(obs, "quadrotor")
    return QuadVectorEnv(task, num_envs, JaxQuadConfig(**options))
