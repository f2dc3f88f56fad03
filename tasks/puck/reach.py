"""puck_reach: push the puck onto a goal on the table and stop there.

Reset: puck at rest and a goal, both uniform in the spawn square (table frame) and at least
``min_goal_distance_m`` apart. Observation (``obs="state"``): ``[pos_m (2), vel_m_s (2),
goal_minus_pos_m (2)]``. With ``obs="pixels"`` the state vector is ``[pos_m, vel_m_s]`` and the
goal is seen, not told: the task draws it as a green disc through the simulator's
``set_goal_marker`` (:class:`~sim.puck.contract.PuckSceneControl`; on a real table the goal is a
physical mark). Success: within ``goal_tolerance_m`` of the goal AND slower than
``success_max_speed_m_s``; success terminates. Sparse reward 1 at success, or dense
``-distance_m`` per step. 100 steps (5 s at 20 Hz), then truncation. A PD expert reaches the goal.

**Write it once: the ``xp`` pattern** (the car and quadrotor families copy it). Observation,
reward, success, expert and the reset mapping are pure functions of arrays at the top of this
module (``observe_arrays``, ``reward_arrays``, ``success_arrays``, ``expert_arrays``,
``initial_arrays``). They are the only copy: :class:`PuckReach` calls them with ``xp=numpy`` on one
state; the JAX vector env (:mod:`sim.puck.jax_env`) calls the same functions with
``xp=jax.numpy`` on ``(num_envs, ...)`` arrays inside one ``jax.jit``. The rules that make one
function run under both:

* arrays carry their features on the last axis and any leading batch shape (``(2,)`` or
  ``(N, 2)``): index with ``x[..., i]``, reduce with ``axis=-1``;
* only the API numpy and ``jax.numpy`` share (``clip``, ``where``, ``sqrt``, ``sum``,
  ``concatenate``...), no in-place writes, no Python ``if`` on array values (``xp.where`` instead);
* a config choice that changes the formula (``dense``) is a plain Python value, branched while
  tracing, so nothing branches at run time;
* randomness comes in as uniform samples the caller draws (a ``numpy.random.Generator`` in
  ``reset``, ``jax.random`` in the vector env); the function only maps them;
* config numbers are bound once (:class:`ReachArrays`, ``task.arrays``), so both callers use
  the same values; results keep the inputs' dtype (float32 under JAX) and the numpy caller casts.

A batched simulator needs nothing else from a task: ``task.arrays`` (``initial``, ``observe``,
``reward``, ``success``, ``terminated``; ``expert`` for demos), plus the ordinary Task attributes
(``state_layout``, ``action_space``, ``max_episode_steps``, ``control_hz``).

tests/tasks/test_puck_reach.py checks numpy and ``jax.numpy`` give the same results, batched and not.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from sim.puck.contract import PuckBackend, PuckSceneControl, PuckSpec, PuckState
from tasks.puck.base import PuckTask


# ---------------------------------------------------------------------- array functions (xp)
def observe_arrays(pos_m: Any, vel_m_s: Any, goal_m: Any, xp: Any, include_goal: bool = True) -> Any:
    """``[pos_m, vel_m_s, goal_m - pos_m]`` on the last axis (without the goal part if not
    ``include_goal``). Inputs ``(..., 2)``, table frame."""
    parts = [pos_m, vel_m_s, goal_m - pos_m] if include_goal else [pos_m, vel_m_s]
    return xp.concatenate(parts, axis=-1)


def distance_arrays(pos_m: Any, goal_m: Any, xp: Any) -> Any:
    """Puck-to-goal distance [m], shape ``(...)``."""
    return xp.sqrt(xp.sum((goal_m - pos_m) ** 2, axis=-1))


def success_arrays(pos_m: Any, vel_m_s: Any, goal_m: Any, tolerance_m: float, max_speed_m_s: float, xp: Any) -> Any:
    """Within ``tolerance_m`` of the goal and slower than ``max_speed_m_s``: bool ``(...)``."""
    speed = xp.sqrt(xp.sum(vel_m_s**2, axis=-1))
    return (distance_arrays(pos_m, goal_m, xp) <= tolerance_m) & (speed <= max_speed_m_s)


def reward_arrays(pos_m: Any, vel_m_s: Any, goal_m: Any, tolerance_m: float, max_speed_m_s: float, dense: bool,
                  xp: Any) -> Any:
    """Sparse: 1 at success, else 0. Dense: ``-distance_m``. Shape ``(...)``."""
    if dense:
        return -distance_arrays(pos_m, goal_m, xp)
    success = success_arrays(pos_m, vel_m_s, goal_m, tolerance_m, max_speed_m_s, xp)
    return xp.where(success, 1.0, 0.0).astype(pos_m.dtype)


def expert_arrays(pos_m: Any, vel_m_s: Any, goal_m: Any, kp_per_m: float, kd_per_m_s: float, xp: Any) -> Any:
    """PD controller: ``action = clip(kp * (goal - pos) - kd * vel, -1, 1)``, shape ``(..., 2)``."""
    return xp.clip(kp_per_m * (goal_m - pos_m) - kd_per_m_s * vel_m_s, -1.0, 1.0)


def initial_arrays(uniform: Any, low_m: Any, high_m: Any, min_distance_m: float, xp: Any) -> tuple[Any, Any]:
    """Map uniform ``[0, 1)`` samples ``(..., 2, 2)`` to a start position and a goal ``(..., 2)``.

    Both are uniform in the square ``[low_m, high_m]``; a goal drawn closer than
    ``min_distance_m`` is pushed out along the puck->goal line to exactly that distance (the
    config keeps the pushed goal inside the arena).
    """
    low, high = xp.asarray(low_m), xp.asarray(high_m)
    pos = low + uniform[..., 0, :] * (high - low)
    goal = low + uniform[..., 1, :] * (high - low)
    offset = goal - pos
    distance = xp.sqrt(xp.sum(offset**2, axis=-1, keepdims=True))
    apart = distance > 1e-9
    direction = xp.where(apart, offset / xp.where(apart, distance, 1.0), xp.asarray([1.0, 0.0], dtype=offset.dtype))
    pushed = pos + min_distance_m * direction
    return pos, xp.where(distance < min_distance_m, pushed, goal)


# ---------------------------------------------------------------------- config and task
@dataclasses.dataclass(frozen=True)
class PuckReachConfig:
    """Every field can be overridden through ``robot_rl.make("puck_reach", field=value)``.

    Attributes:
        max_episode_steps: time limit in control steps (truncation).
        goal_tolerance_m: success radius around the goal.
        success_max_speed_m_s: success also needs the puck this slow (it must stop, not pass).
        dense_reward: ``-distance_m`` per step instead of the sparse success reward.
        spawn_low_m, spawn_high_m: (x, y) square, table frame, of the start and goal positions.
        min_goal_distance_m: the goal starts at least this far from the puck (> tolerance, so
            doing nothing never succeeds).
        expert_kp_per_m, expert_kd_per_m_s: the PD expert's gains in normalized action per metre
            of error and per m/s of velocity.
    """

    max_episode_steps: int = 100
    goal_tolerance_m: float = 0.02
    success_max_speed_m_s: float = 0.05
    dense_reward: bool = False
    spawn_low_m: tuple[float, float] = (-0.35, -0.35)
    spawn_high_m: tuple[float, float] = (0.35, 0.35)
    min_goal_distance_m: float = 0.1
    expert_kp_per_m: float = 4.0
    expert_kd_per_m_s: float = 1.0

    def __post_init__(self) -> None:
        if self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")
        if self.goal_tolerance_m <= 0 or self.success_max_speed_m_s <= 0:
            raise ValueError(f"goal_tolerance_m and success_max_speed_m_s must be > 0, got "
                             f"{self.goal_tolerance_m}, {self.success_max_speed_m_s}")
        low, high = np.asarray(self.spawn_low_m, dtype=float), np.asarray(self.spawn_high_m, dtype=float)
        if low.shape != (2,) or high.shape != (2,) or np.any(low >= high):
            raise ValueError(f"spawn_low_m {self.spawn_low_m} must be (x, y) below spawn_high_m {self.spawn_high_m}")
        object.__setattr__(self, "spawn_low_m", tuple(low.tolist()))  # hashable, also from a JSON list
        object.__setattr__(self, "spawn_high_m", tuple(high.tolist()))
        if not self.min_goal_distance_m > self.goal_tolerance_m:
            raise ValueError(f"min_goal_distance_m ({self.min_goal_distance_m}) must exceed goal_tolerance_m "
                             f"({self.goal_tolerance_m}) so that holding still never succeeds")

    def check_arena(self, spec: PuckSpec) -> None:
        """Starts and (pushed) goals must lie inside the walls of ``spec``'s arena."""
        extent = np.max(np.abs([self.spawn_low_m, self.spawn_high_m])) + self.min_goal_distance_m
        if extent > spec.reach_m:
            raise ValueError(f"puck_reach spawns up to {extent:.3f} m from the centre (spawn square + "
                             f"min_goal_distance_m) but the puck's centre can reach only {spec.reach_m:.3f} m")


@dataclasses.dataclass(frozen=True)
class ReachArrays:
    """puck_reach's array functions with its config bound: what a simulator needs, numpy or JAX."""

    config: PuckReachConfig

    def observe(self, pos_m: Any, vel_m_s: Any, goal_m: Any, xp: Any, include_goal: bool = True) -> Any:
        return observe_arrays(pos_m, vel_m_s, goal_m, xp, include_goal)

    def success(self, pos_m: Any, vel_m_s: Any, goal_m: Any, xp: Any) -> Any:
        c = self.config
        return success_arrays(pos_m, vel_m_s, goal_m, c.goal_tolerance_m, c.success_max_speed_m_s, xp)

    def terminated(self, pos_m: Any, vel_m_s: Any, goal_m: Any, xp: Any) -> Any:
        return self.success(pos_m, vel_m_s, goal_m, xp)  # success ends the episode; nothing else does

    def reward(self, pos_m: Any, vel_m_s: Any, goal_m: Any, xp: Any) -> Any:
        c = self.config
        return reward_arrays(pos_m, vel_m_s, goal_m, c.goal_tolerance_m, c.success_max_speed_m_s, c.dense_reward, xp)

    def expert(self, pos_m: Any, vel_m_s: Any, goal_m: Any, xp: Any) -> Any:
        return expert_arrays(pos_m, vel_m_s, goal_m, self.config.expert_kp_per_m, self.config.expert_kd_per_m_s, xp)

    def initial(self, uniform: Any, xp: Any) -> tuple[Any, Any]:
        c = self.config
        return initial_arrays(uniform, c.spawn_low_m, c.spawn_high_m, c.min_goal_distance_m, xp)


class PuckReach(PuckTask):
    """Backend-agnostic puck_reach for any :class:`~sim.puck.contract.PuckBackend`.

    The goal is the task's: drawn in ``reset`` with the env's rng and kept in ``goal_m``.
    """

    name = "puck_reach"

    def __init__(self, config: PuckReachConfig | None = None) -> None:
        self.config = config or PuckReachConfig()
        self.max_episode_steps = self.config.max_episode_steps
        self.arrays = ReachArrays(self.config)
        self.goal_m: np.ndarray | None = None

    def state_layout(self, spec: PuckSpec, obs_mode: str) -> dict[str, int]:
        layout = {"pos_m": 2, "vel_m_s": 2}
        if obs_mode == "state":
            layout["goal_minus_pos_m"] = 2
        return layout

    def reset(self, backend: PuckBackend, rng: np.random.Generator) -> PuckState:
        self.config.check_arena(backend.spec)
        pos, goal = self.arrays.initial(rng.uniform(size=(2, 2)), np)
        state = backend.reset(pos, np.zeros(2))
        self.goal_m = goal
        if isinstance(backend, PuckSceneControl):  # on a real table the goal is a physical mark
            backend.set_goal_marker(goal)
        return state

    def _goal(self) -> np.ndarray:
        if self.goal_m is None:
            raise RuntimeError("puck_reach has no goal yet: reset() draws it")
        return self.goal_m

    def observe(self, state: PuckState, obs_mode: str) -> np.ndarray:
        vector = self.arrays.observe(state.pos_m, state.vel_m_s, self._goal(), np, include_goal=obs_mode == "state")
        return vector.astype(np.float32)

    def reward(self, state: PuckState) -> float:
        return float(self.arrays.reward(state.pos_m, state.vel_m_s, self._goal(), np))

    def success(self, state: PuckState) -> bool:
        return bool(self.arrays.success(state.pos_m, state.vel_m_s, self._goal(), np))

    def terminated(self, state: PuckState) -> bool:
        return bool(self.arrays.terminated(state.pos_m, state.vel_m_s, self._goal(), np))

    def expert(self, state: PuckState) -> np.ndarray:
        """PD toward the goal (privileged: the task's own goal), normalized action ``(2,)``."""
        return self.arrays.expert(state.pos_m, state.vel_m_s, self._goal(), np).astype(np.float32)


def make_task(**options) -> PuckReach:
    """Registry entry point: options are :class:`PuckReachConfig` fields."""
    return PuckReach(PuckReachConfig(**options))
