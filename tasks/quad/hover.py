"""quad_hover: reach a target in the air and hold it, from random initial states.

Reset: a target uniform in a box (world ENU), the vehicle within ``start_offset_m`` of it per axis,
tilted by up to ``max_initial_tilt_rad`` (default 90 deg) about a random horizontal axis with a
random heading, moving at up to ``max_initial_speed_m_s`` per axis and turning at up to
``max_initial_rate_rad_s`` per axis; motors at hover thrust. 500 steps at 100 Hz (5 s), then
truncation.

Observation (``obs="state"`` and the ``state`` part of ``obs="pixels"``; 18 floats):
``[pos_error_m (3) = pos - target, rotation_matrix (9, body -> world, row-major), vel_m_s (3) world
ENU, body_rates_rad_s (3) body FLU]``; with ``action_history_steps=k`` also the last ``k`` executed
actions, newest first (``4 k`` floats, zeros after a reset): what lets a policy infer the motors' lag
(the Learning-to-Fly setting). Pixels add the onboard ``fpv`` camera; the target is told in
both modes (from on board it is rarely in view).

Reward (dense, in (0, 1] while flying): ``exp(-cost)``, ``cost = pos_weight |e| + vel_weight |v| +
tilt_weight (1 - cos tilt) + rate_weight |rates|``; a crash scores ``crash_reward`` and terminates.
Crash = ground contact (``z < crash_height_m``) or leaving the task's fence. Success (reported, not
terminating: the task is to *hold* the target): within ``success_tolerance_m`` and slower than
``success_max_speed_m_s``. The scripted expert is the position controller
(:meth:`drivers.quad.control.QuadController.position_to_thrust_rates`) toward the target, heading 0.

Every rule above is an array function of this module (``initial_arrays``, ``observe_arrays``,
``cost_arrays``, ``reward_arrays``, ``success_arrays``, ``crashed_arrays``), bound to the config in
:class:`HoverArrays`; :class:`QuadHover` calls them with numpy on one state (MuJoCo, a real drone)
and :mod:`sim.quad.jax_env` with ``jax.numpy`` on ``(num_envs, ...)`` arrays (the pattern of
``tasks/puck/reach.py``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from drivers.quad.rotations import (
    cos_tilt_arrays,
    dot3_arrays,
    quat_to_matrix_arrays,
    tilted_quat_arrays,
)
from robot_rl.backends.quadrotor import QuadSceneControl, QuadSpec, QuadState
from tasks.quad.base import QuadActionArrays, QuadTargetMarker, QuadTask

UNIFORM_SIZE = 15  # uniform samples per reset: target 3, offset 3, heading, tilt axis, tilt, velocity 3, rates 3
Vec3 = tuple[float, float, float]


# ---------------------------------------------------------------------- array functions (xp)
def initial_arrays(uniform: Any, target_low_m: Vec3, target_high_m: Vec3, start_offset_m: Vec3, max_tilt_rad: float,
                   max_speed_m_s: float, max_rate_rad_s: float, xp: Any) -> tuple[Any, Any, Any, Any, Any]:
    """Map uniform ``[0, 1)`` samples ``(..., 15)`` to ``(target_m, pos_m, quat_wxyz, vel_m_s, rates_rad_s)``."""
    low, high = xp.asarray(target_low_m, dtype=uniform.dtype), xp.asarray(target_high_m, dtype=uniform.dtype)
    target = low + uniform[..., 0:3] * (high - low)
    pos = target + (2.0 * uniform[..., 3:6] - 1.0) * xp.asarray(start_offset_m, dtype=uniform.dtype)
    quat = tilted_quat_arrays((2.0 * uniform[..., 6] - 1.0) * math.pi, 2.0 * math.pi * uniform[..., 7],
                              max_tilt_rad * uniform[..., 8], xp)
    vel = (2.0 * uniform[..., 9:12] - 1.0) * max_speed_m_s
    rates = (2.0 * uniform[..., 12:15] - 1.0) * max_rate_rad_s
    return target, pos, quat, vel, rates


def observe_arrays(pos_m: Any, quat_wxyz: Any, vel_m_s: Any, rates_rad_s: Any, target_m: Any, xp: Any,
                   action_history: Any = None) -> Any:
    """``[pos - target, R (9, row-major), vel, rates]`` on the last axis, ``(..., 18)``; with an
    ``action_history (..., k, 4)`` (newest first) also its ``4 k`` numbers, ``(..., 18 + 4 k)``."""
    rotation = quat_to_matrix_arrays(quat_wxyz, xp)
    flat = xp.reshape(rotation, rotation.shape[:-2] + (9,))
    parts = [pos_m - target_m, flat, vel_m_s, rates_rad_s]
    if action_history is not None:
        parts.append(xp.reshape(action_history, action_history.shape[:-2] + (-1,)).astype(pos_m.dtype))
    return xp.concatenate(parts, axis=-1)


def push_action_history_arrays(action_history: Any, action: Any, xp: Any) -> Any:
    """``action_history (..., k, A)`` (newest first) with ``action (..., A)`` in front and the oldest dropped."""
    return xp.concatenate([action[..., None, :].astype(action_history.dtype), action_history[..., :-1, :]], axis=-2)


def _norm(vec: Any, xp: Any) -> Any:
    return xp.sqrt(dot3_arrays(vec, vec))


def crashed_arrays(pos_m: Any, fence_low_m: Vec3, fence_high_m: Vec3, crash_height_m: float, xp: Any) -> Any:
    """Ground contact (``z < crash_height_m``) or outside the fence box: bool ``(...)``."""
    low, high = xp.asarray(fence_low_m, dtype=pos_m.dtype), xp.asarray(fence_high_m, dtype=pos_m.dtype)
    out = (pos_m < low) | (pos_m > high)
    return out[..., 0] | out[..., 1] | out[..., 2] | (pos_m[..., 2] < crash_height_m)


def success_arrays(pos_m: Any, vel_m_s: Any, target_m: Any, tolerance_m: float, max_speed_m_s: float, xp: Any) -> Any:
    """Within ``tolerance_m`` of the target and slower than ``max_speed_m_s``: bool ``(...)``."""
    return (_norm(pos_m - target_m, xp) <= tolerance_m) & (_norm(vel_m_s, xp) <= max_speed_m_s)


def cost_terms_arrays(pos_m: Any, quat_wxyz: Any, vel_m_s: Any, rates_rad_s: Any, target_m: Any, xp: Any) -> tuple:
    """The cost's unweighted terms ``(|e| m, |v| m/s, 1 - cos tilt, |rates| rad/s)``, four arrays ``(...)``
    (kept apart: stacking them would make the JAX step materialize an ``(N, 4)`` array)."""
    return _norm(pos_m - target_m, xp), _norm(vel_m_s, xp), 1.0 - cos_tilt_arrays(quat_wxyz, xp), _norm(rates_rad_s, xp)


def weighted_cost_arrays(terms: Any, weights: Any) -> Any:
    """``pos_w |e| + vel_w |v| + tilt_w (1 - cos tilt) + rate_w |rates|`` from :func:`cost_terms_arrays`'s
    four ``terms``; ``weights`` 4 numbers or an array ``(..., 4)`` (e.g. a curriculum's, traced)."""
    pos_w, vel_w, tilt_w, rate_w = (weights[..., i] for i in range(4)) if hasattr(weights, "shape") else weights
    return pos_w * terms[0] + vel_w * terms[1] + tilt_w * terms[2] + rate_w * terms[3]


def cost_arrays(pos_m: Any, quat_wxyz: Any, vel_m_s: Any, rates_rad_s: Any, target_m: Any,
                weights: tuple[float, float, float, float], xp: Any) -> Any:
    """``pos_w |e| + vel_w |v| + tilt_w (1 - cos tilt) + rate_w |rates|``, ``(...)``, >= 0."""
    return weighted_cost_arrays(cost_terms_arrays(pos_m, quat_wxyz, vel_m_s, rates_rad_s, target_m, xp), weights)


def reward_arrays(cost: Any, crashed: Any, crash_reward: float, xp: Any) -> Any:
    """``exp(-cost)`` while flying (never negative: crashing never pays), ``crash_reward`` on a crash."""
    return xp.where(crashed, crash_reward, xp.exp(-cost)).astype(cost.dtype)


# ---------------------------------------------------------------------- config and task
def _vec3(owner: str, name: str, value: Any) -> Vec3:
    array = np.asarray(value, dtype=float)
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise ValueError(f"{owner}.{name} must be 3 finite numbers (x, y, z), got {value!r}")
    return tuple(array.tolist())


@dataclasses.dataclass(frozen=True)
class QuadHoverConfig:
    """Every field can be overridden through ``robot_rl.make("quad_hover", field=value)``.

    Attributes:
        max_episode_steps: time limit in control steps (truncation).
        fallback_residual: actions are residuals on the hover-in-place fallback (tasks/quad/base.py).
        target_low_m, target_high_m: the target's box, world ENU.
        start_offset_m: the start is the target plus a uniform offset within +- this, per axis.
        max_initial_tilt_rad, max_initial_speed_m_s, max_initial_rate_rad_s: the reset distribution's
            tilt, velocity per axis (world) and body rate per axis.
        fence_low_m, fence_high_m: leaving this box (world ENU) is a crash.
        crash_height_m: below this height (the vehicle's centre) it touches the ground: a crash.
        success_tolerance_m, success_max_speed_m_s: the hold criterion.
        pos_weight, vel_weight, tilt_weight, rate_weight: cost weights per m, m/s, (1 - cos tilt), rad/s.
        crash_reward: the reward of the step that crashes.
        action_history_steps: the last this many executed actions (newest first) end the observation.
    """

    max_episode_steps: int = 500
    fallback_residual: bool = True
    target_low_m: Vec3 = (-0.5, -0.5, 1.5)
    target_high_m: Vec3 = (0.5, 0.5, 2.0)
    start_offset_m: Vec3 = (0.5, 0.5, 0.5)
    max_initial_tilt_rad: float = math.pi / 2
    max_initial_speed_m_s: float = 1.0
    max_initial_rate_rad_s: float = 1.0
    fence_low_m: Vec3 = (-2.0, -2.0, 0.0)
    fence_high_m: Vec3 = (2.0, 2.0, 3.5)
    crash_height_m: float = 0.03
    success_tolerance_m: float = 0.05
    success_max_speed_m_s: float = 0.2
    pos_weight: float = 1.0
    vel_weight: float = 0.1
    tilt_weight: float = 0.2
    rate_weight: float = 0.02
    crash_reward: float = -10.0
    action_history_steps: int = 0

    def __post_init__(self) -> None:
        if self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")
        if not (isinstance(self.action_history_steps, int) and 0 <= self.action_history_steps <= 64):
            raise ValueError(f"action_history_steps must be an integer in [0, 64], got {self.action_history_steps!r}")
        for name in ("target_low_m", "target_high_m", "start_offset_m", "fence_low_m", "fence_high_m"):
            object.__setattr__(self, name, _vec3("QuadHoverConfig", name, getattr(self, name)))
        if not np.all(np.less_equal(self.target_low_m, self.target_high_m)):
            raise ValueError(f"target_low_m {self.target_low_m} must not exceed target_high_m {self.target_high_m}")
        starts_low = np.subtract(self.target_low_m, self.start_offset_m)
        starts_high = np.add(self.target_high_m, self.start_offset_m)
        if np.any(starts_low <= self.fence_low_m) or np.any(starts_high >= self.fence_high_m) or \
                starts_low[2] <= self.crash_height_m:
            raise ValueError(f"quad_hover starts in [{starts_low.tolist()}, {starts_high.tolist()}] (target box +- "
                             f"start_offset_m), which must lie inside the fence {self.fence_low_m}..{self.fence_high_m} "
                             f"and above crash_height_m {self.crash_height_m}")
        if not 0 <= self.max_initial_tilt_rad <= math.pi:
            raise ValueError(f"max_initial_tilt_rad must be in [0, pi], got {self.max_initial_tilt_rad}")
        for name in ("max_initial_speed_m_s", "max_initial_rate_rad_s", "success_tolerance_m", "success_max_speed_m_s",
                     "pos_weight", "vel_weight", "tilt_weight", "rate_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def check_fence(self, spec: QuadSpec) -> None:
        """The task's fence must lie inside the backend's geofence."""
        if np.any(np.less(self.fence_low_m, spec.geofence_low_m)) or np.any(np.greater(self.fence_high_m,
                                                                                      spec.geofence_high_m)):
            raise ValueError(f"quad_hover's fence {self.fence_low_m}..{self.fence_high_m} reaches outside the "
                             f"backend's geofence {spec.geofence_low_m.tolist()}..{spec.geofence_high_m.tolist()}")


@dataclasses.dataclass(frozen=True)
class HoverArrays:
    """quad_hover's array functions with its config and the action mapping bound: all a batched
    simulator needs from the task (``initial``, ``observe``, ``reward``, ``success``, ``terminated``,
    ``expert``, ``actions``)."""

    config: QuadHoverConfig
    actions: QuadActionArrays
    uniform_size = UNIFORM_SIZE  # uniform samples ``initial`` maps per reset (a class constant, not a field)

    def initial(self, uniform: Any, xp: Any) -> tuple[Any, Any, Any, Any, Any]:
        c = self.config
        return initial_arrays(uniform, c.target_low_m, c.target_high_m, c.start_offset_m, c.max_initial_tilt_rad,
                              c.max_initial_speed_m_s, c.max_initial_rate_rad_s, xp)

    @property
    def history_steps(self) -> int:
        """Executed actions kept in the observation (``action_history_steps``)."""
        return self.config.action_history_steps

    def push_history(self, action_history: Any, action: Any, xp: Any) -> Any:
        return push_action_history_arrays(action_history, action, xp)

    def observe(self, pos_m: Any, quat_wxyz: Any, vel_m_s: Any, rates_rad_s: Any, target_m: Any, xp: Any,
                action_history: Any = None) -> Any:
        """The observation; ``action_history (..., k, 4)`` is required when ``history_steps`` is k > 0."""
        if (action_history is None) != (self.history_steps == 0):
            raise ValueError(f"quad_hover observes {self.history_steps} past actions; got "
                             f"{'none' if action_history is None else 'an action history'}")
        return observe_arrays(pos_m, quat_wxyz, vel_m_s, rates_rad_s, target_m, xp, action_history)

    def terminated(self, pos_m: Any, xp: Any) -> Any:
        c = self.config
        return crashed_arrays(pos_m, c.fence_low_m, c.fence_high_m, c.crash_height_m, xp)

    def success(self, pos_m: Any, vel_m_s: Any, target_m: Any, xp: Any) -> Any:
        c = self.config
        return success_arrays(pos_m, vel_m_s, target_m, c.success_tolerance_m, c.success_max_speed_m_s, xp)

    def reward(self, pos_m: Any, quat_wxyz: Any, vel_m_s: Any, rates_rad_s: Any, target_m: Any, xp: Any) -> Any:
        c = self.config
        cost = cost_arrays(pos_m, quat_wxyz, vel_m_s, rates_rad_s, target_m,
                           (c.pos_weight, c.vel_weight, c.tilt_weight, c.rate_weight), xp)
        return reward_arrays(cost, self.terminated(pos_m, xp), c.crash_reward, xp)

    @property
    def cost_weights(self) -> tuple[float, float, float, float]:
        """The task's ``(pos_weight, vel_weight, tilt_weight, rate_weight)``."""
        c = self.config
        return c.pos_weight, c.vel_weight, c.tilt_weight, c.rate_weight

    def reward_terms(self, pos_m: Any, quat_wxyz: Any, vel_m_s: Any, rates_rad_s: Any, target_m: Any, xp: Any) -> Any:
        """What :meth:`reward` is made of, ``(..., 5)``: :func:`cost_terms_arrays`' four terms and the crash
        flag (1.0 or 0.0), for :meth:`reward_from_terms` with other weights (a fused trainer's curriculum)."""
        terms = cost_terms_arrays(pos_m, quat_wxyz, vel_m_s, rates_rad_s, target_m, xp)
        return xp.stack([*terms, self.terminated(pos_m, xp).astype(terms[0].dtype)], axis=-1)

    def reward_from_terms(self, terms: Any, weights: Any, xp: Any, extra_cost: Any = None) -> Any:
        """The reward of :meth:`reward_terms`' ``terms (..., 5)`` with cost ``weights`` (4, or ``(..., 4)``)
        plus ``extra_cost`` (e.g. an action penalty); at the task's :attr:`cost_weights` and no extra
        cost it is :meth:`reward`."""
        cost = weighted_cost_arrays([terms[..., i] for i in range(4)], weights)
        if extra_cost is not None:
            cost = cost + extra_cost
        return reward_arrays(cost, terms[..., 4] > 0.5, self.config.crash_reward, xp)

    def expert(self, pos_m: Any, quat_wxyz: Any, vel_m_s: Any, target_m: Any, xp: Any) -> Any:
        """The position controller toward the target (heading 0), as an action ``(..., 4)``."""
        controller = self.actions.controller
        collective, rates = controller.position_to_thrust_rates(pos_m, vel_m_s, quat_wxyz, target_m,
                                                                0.0 * target_m[..., 0], xp)
        return self.actions.to_action(collective, rates, vel_m_s, quat_wxyz, xp)


class QuadHover(QuadTask):
    """Backend-agnostic quad_hover for any :class:`~robot_rl.backends.quadrotor.QuadBackend` that can
    be placed (:class:`~robot_rl.backends.quadrotor.QuadSceneControl`). The target is the task's:
    drawn in ``reset`` with the env's rng and kept in ``target_m``."""

    name = "quad_hover"

    def __init__(self, config: QuadHoverConfig | None = None) -> None:
        self.config = config or QuadHoverConfig()
        self.max_episode_steps = self.config.max_episode_steps
        self.fallback_residual = self.config.fallback_residual
        self.target_m: np.ndarray | None = None
        self._spec: QuadSpec | None = None
        self._history = self._no_history()

    def _no_history(self) -> np.ndarray | None:
        steps = self.config.action_history_steps
        return np.zeros((steps, 4), dtype=np.float32) if steps else None

    def arrays_for(self, spec: QuadSpec) -> HoverArrays:
        return HoverArrays(self.config, self.actions_for(spec))

    def state_layout(self, spec: QuadSpec, obs_mode: str) -> dict[str, int]:
        layout = {"pos_error_m": 3, "rotation_matrix": 9, "vel_m_s": 3, "body_rates_rad_s": 3}
        if self.config.action_history_steps:
            layout["action_history"] = 4 * self.config.action_history_steps
        return layout

    def reset(self, backend: Any, rng: np.random.Generator) -> QuadState:
        self.config.check_fence(backend.spec)
        if not isinstance(backend, QuadSceneControl):
            raise TypeError(f"{self.name} resets by placing the vehicle (QuadSceneControl.set_state, a simulator's); "
                            f"{type(backend).__name__} cannot be placed")
        self._spec = backend.spec
        arrays = self.arrays_for(backend.spec)
        target, pos, quat, vel, rates = arrays.initial(rng.uniform(size=arrays.uniform_size), np)
        backend.set_state(pos, quat, vel, rates)
        self.target_m = target
        self._history = self._no_history()
        if isinstance(backend, QuadTargetMarker):
            backend.set_target_marker(self.marker_m(target))
        return backend.read_state()

    def marker_m(self, target: np.ndarray) -> np.ndarray:
        """Where a simulator shows the episode's target (``reset`` draws ``target``): the target itself."""
        return target

    def _bound(self) -> tuple[HoverArrays, np.ndarray]:
        if self.target_m is None or self._spec is None:
            raise RuntimeError("quad_hover has no target yet: reset() draws it")
        return self.arrays_for(self._spec), self.target_m

    def observe(self, state: QuadState, obs_mode: str) -> np.ndarray:
        arrays, target = self._bound()
        return arrays.observe(state.pos_m, state.quat_wxyz, state.vel_m_s, state.body_rates_rad_s, target,
                              np, self._history).astype(np.float32)

    def command_to_action(self, command: Any, state: QuadState, spec: QuadSpec) -> np.ndarray:
        """The executed action (RobotEnv asks once per step, after the backend applied the command);
        with ``action_history_steps`` it also enters the history the next observation shows."""
        action = super().command_to_action(command, state, spec)
        if self._history is not None:
            self._history = push_action_history_arrays(self._history, action, np)
        return action

    def reward(self, state: QuadState) -> float:
        arrays, target = self._bound()
        return float(arrays.reward(state.pos_m, state.quat_wxyz, state.vel_m_s, state.body_rates_rad_s, target, np))

    def success(self, state: QuadState) -> bool:
        arrays, target = self._bound()
        return bool(arrays.success(state.pos_m, state.vel_m_s, target, np))

    def progress(self, state: QuadState) -> float:
        """For the simulated human's stall test: minus the distance to the target [m]; while the
        target is held (:meth:`success`) the backend clock [s], so holding counts as progress (the
        reward levels off there and read as a stall)."""
        if self.success(state):
            return float(state.time_s)
        return -float(np.linalg.norm(state.pos_m - self._bound()[1]))

    def terminated(self, state: QuadState) -> bool:
        arrays, _ = self._bound()
        return bool(arrays.terminated(state.pos_m, np))

    def expert(self, state: QuadState) -> np.ndarray:
        """The position controller toward the target (privileged: the task's target), action ``(4,)``."""
        arrays, target = self._bound()
        return arrays.expert(state.pos_m, state.quat_wxyz, state.vel_m_s, target, np).astype(np.float32)


def make_task(**options) -> QuadHover:
    """Registry entry point: options are :class:`QuadHoverConfig` fields."""
    return QuadHover(QuadHoverConfig(**options))
