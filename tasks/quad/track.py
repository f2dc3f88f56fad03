"""quad_track: follow a moving reference, a figure-eight (Lissajous 1:2) in a horizontal plane.

Reference (world ENU), with ``theta = 2 pi t / period_s + phase``::

    ref(t) = centre + (ax sin(theta), ay sin(2 theta), 0)

one closed figure-eight per ``period_s``, ``2 ax`` wide (x) and ``2 ay`` deep (y), at the centre's
height. The centre is drawn per episode in quad_hover's target box (``target_low_m`` ..
``target_high_m``; one point by default), the phase is ``phase_rad`` plus, with ``random_phase``, a
uniform draw in [0, 2 pi).

Reset: quad_hover's random starts (:func:`tasks.quad.hover.initial_arrays`) around the reference's
first point instead of a fixed target, tilted by up to ``max_initial_tilt_rad`` (30 deg by default).
800 steps at 100 Hz (8 s: the settle time and one lap after it), then truncation.

Observation (``18 + 3 + 3 L`` floats, plus quad_hover's optional action history before the last
two parts): quad_hover's ``[pos - ref(t), R (9), vel, body rates]`` (:func:`tasks.quad.hover.observe_arrays`
with the current reference point as its target), the reference velocity ``ref'(t)`` [m/s], and
with ``lookahead_steps=L`` the future reference points ``ref(t + k lookahead_dt_s) - pos``,
``k = 1..L``.

Reward: quad_hover's cost (:func:`tasks.quad.hover.cost_arrays`) on the tracking errors: position
error to ``ref(t)``, velocity error to ``ref'(t)``, tilt and rates; ``exp(-cost)``, a crash (as
quad_hover: ground or fence) scores ``crash_reward`` and terminates. Success (reported): within
``success_tolerance_m`` of ``ref(t)`` and within ``success_max_speed_m_s`` of ``ref'(t)``.

Expert: the position controller tracking ``ref(t)`` with velocity feed-forward (velocity target
``ref'(t) + P (ref - pos)``) and, by default, the reference acceleration fed forward through the
velocity loop (``+ ref''(t) / velocity_p_per_s``, so the loop asks for exactly ``ref''`` when on
track); heading 0.

Time enters the array functions through the goal vector ``[centre (3), phase (1), elapsed_s (1)]``
that they take in quad_hover's ``target_m`` place: :class:`QuadTrack` builds it from the backend
clock since reset, the JAX env (:func:`sim.quad.jax_core.goal_arrays`, ``TrackArrays.timed``) from
the step count. Episode metrics (:func:`tracking_metrics`): position error RMS after
``settle_time_s``, time to settle, crash.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from drivers.quad.control import heading_to_yaw_rate_arrays
from robot_rl.backends.quadrotor import QuadSpec, QuadState
from tasks.quad.hover import (
    UNIFORM_SIZE as HOVER_UNIFORM_SIZE,
    HoverArrays,
    QuadHover,
    QuadHoverConfig,
    cost_arrays,
    initial_arrays,
    observe_arrays,
    reward_arrays,
    success_arrays,
)

UNIFORM_SIZE = HOVER_UNIFORM_SIZE + 1  # quad_hover's 15, then the phase
GOAL_SIZE = 5  # centre (3), phase (1), elapsed time (1)


# ---------------------------------------------------------------------- array functions (xp)
def reference_arrays(centre_m: Any, phase_rad: Any, time_s: Any, amplitude_m: tuple[float, float], period_s: float,
                     xp: Any) -> tuple[Any, Any, Any]:
    """The figure-eight's ``(pos_m, vel_m_s, acc_m_s2)``, each ``(..., 3)`` world ENU, at ``time_s (...)``
    (``centre_m (..., 3)``, ``phase_rad (...)``; see the module docstring)."""
    omega = 2.0 * math.pi / period_s
    theta = omega * time_s + phase_rad
    ax, ay = amplitude_m
    s1, c1, s2, c2 = xp.sin(theta), xp.cos(theta), xp.sin(2.0 * theta), xp.cos(2.0 * theta)
    zero = 0.0 * theta
    pos = centre_m + xp.stack([ax * s1, ay * s2, zero], axis=-1)
    vel = xp.stack([ax * omega * c1, 2.0 * ay * omega * c2, zero], axis=-1)
    acc = xp.stack([-ax * omega * omega * s1, -4.0 * ay * omega * omega * s2, zero], axis=-1)
    return pos, vel, acc


def split_goal_arrays(goal: Any) -> tuple[Any, Any, Any]:
    """``[centre (3), phase, elapsed_s]`` on the last axis -> ``(centre_m, phase_rad, elapsed_s)``."""
    return goal[..., 0:3], goal[..., 3], goal[..., 4]


def lookahead_arrays(pos_m: Any, goal: Any, amplitude_m: tuple[float, float], period_s: float, steps: int,
                     dt_s: float, xp: Any) -> Any:
    """``ref(t + k dt_s) - pos`` for ``k = 1..steps``, flattened to ``(..., 3 steps)``."""
    centre, phase, elapsed = split_goal_arrays(goal)
    ahead_s = elapsed[..., None] + dt_s * xp.arange(1, steps + 1, dtype=goal.dtype)
    future, _, _ = reference_arrays(centre[..., None, :], phase[..., None], ahead_s, amplitude_m, period_s, xp)
    return xp.reshape(future - pos_m[..., None, :], pos_m.shape[:-1] + (3 * steps,))


def tracking_metrics(errors_m: Any, dt_s: float, settle_time_s: float, settle_tolerance_m: float, crashed: bool,
                     hold_s: float = 1.0) -> dict[str, float]:
    """One episode's metrics from its per-step position errors ``(T,)`` [m] (step ``i`` at ``(i + 1) dt_s``):
    ``rms_m`` and ``max_m`` over the steps after ``settle_time_s`` (NaN if none); ``settle_s``, the
    time from which the error stays within ``settle_tolerance_m`` to the end, if that lasts at least
    ``hold_s`` (else NaN: never settled; NaN too after a crash); ``crashed`` (1.0 / 0.0)."""
    errors = np.asarray(errors_m, dtype=float)
    if errors.ndim != 1 or errors.size == 0 or dt_s <= 0:
        raise ValueError(f"tracking_metrics needs a non-empty 1-D error series and dt_s > 0, got {errors.shape}, {dt_s}")
    times = dt_s * np.arange(1, errors.size + 1)
    late = errors[times > settle_time_s]
    outside = np.flatnonzero(errors > settle_tolerance_m)
    settle = float(times[outside[-1]]) if outside.size else 0.0
    if crashed or times[-1] - settle < hold_s - 1e-9:
        settle = math.nan
    return {"rms_m": float(np.sqrt(np.mean(late ** 2))) if late.size else math.nan,
            "max_m": float(late.max()) if late.size else math.nan, "settle_s": settle, "crashed": float(crashed)}


# ---------------------------------------------------------------------- config and task
@dataclasses.dataclass(frozen=True)
class QuadTrackConfig(QuadHoverConfig):
    """quad_hover's fields (``target_low_m`` .. ``target_high_m`` is the figure-eight's centre box; the
    starts lie within ``start_offset_m`` of its first point) with tracking defaults, plus:

    Attributes:
        amplitude_m: the figure-eight's half width along x and half depth along y [m].
        period_s: one figure-eight [s].
        phase_rad: the reference's phase at reset.
        random_phase: add a uniform [0, 2 pi) draw to the phase per episode.
        lookahead_steps, lookahead_dt_s: future reference points in the observation, this far apart.
        accel_feedforward: the expert feeds the reference acceleration forward too.
        settle_time_s, settle_tolerance_m: the metrics' settle time (RMS after it) and the error bound
            that counts as settled.
    """

    max_episode_steps: int = 800
    target_low_m: tuple[float, float, float] = (0.0, 0.0, 1.5)
    target_high_m: tuple[float, float, float] = (0.0, 0.0, 1.5)
    start_offset_m: tuple[float, float, float] = (0.3, 0.3, 0.3)
    max_initial_tilt_rad: float = math.pi / 6
    max_initial_speed_m_s: float = 0.5
    max_initial_rate_rad_s: float = 0.5
    success_tolerance_m: float = 0.1
    success_max_speed_m_s: float = 0.3
    amplitude_m: tuple[float, float] = (1.0, 0.5)
    period_s: float = 6.0
    phase_rad: float = 0.0
    random_phase: bool = False
    lookahead_steps: int = 0
    lookahead_dt_s: float = 0.1
    accel_feedforward: bool = True
    settle_time_s: float = 2.0
    settle_tolerance_m: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        amplitude = np.asarray(self.amplitude_m, dtype=float)
        if amplitude.shape != (2,) or not np.all(np.isfinite(amplitude)) or np.any(amplitude < 0):
            raise ValueError(f"amplitude_m must be 2 finite numbers >= 0 (x, y), got {self.amplitude_m!r}")
        object.__setattr__(self, "amplitude_m", tuple(amplitude.tolist()))
        if not (math.isfinite(self.period_s) and self.period_s > 0 and math.isfinite(self.phase_rad)):
            raise ValueError(f"period_s must be > 0 and phase_rad finite, got {self.period_s}, {self.phase_rad}")
        if not (isinstance(self.lookahead_steps, int) and 0 <= self.lookahead_steps <= 64 and self.lookahead_dt_s > 0):
            raise ValueError(f"lookahead_steps must be an integer in [0, 64] and lookahead_dt_s > 0, got "
                             f"{self.lookahead_steps!r}, {self.lookahead_dt_s}")
        if not (self.settle_time_s >= 0 and self.settle_tolerance_m > 0):
            raise ValueError(f"settle_time_s must be >= 0 and settle_tolerance_m > 0, got {self.settle_time_s}, "
                             f"{self.settle_tolerance_m}")
        reach = np.array([*amplitude, 0.0]) + self.start_offset_m
        low, high = np.subtract(self.target_low_m, reach), np.add(self.target_high_m, reach)
        if np.any(low <= self.fence_low_m) or np.any(high >= self.fence_high_m):
            raise ValueError(f"quad_track's figure-eight and starts span [{low.tolist()}, {high.tolist()}] (centre box "
                             f"+- amplitude_m +- start_offset_m), which must lie inside the fence "
                             f"{self.fence_low_m}..{self.fence_high_m}")


@dataclasses.dataclass(frozen=True)
class TrackArrays(HoverArrays):
    """quad_track's array functions bound to its config: quad_hover's interface (a batched simulator
    calls them the same way) with the goal vector in ``target_m``'s place (module docstring)."""

    config: QuadTrackConfig
    timed = True  # the goal moves: the JAX env appends the elapsed time (sim.quad.jax_core.goal_arrays)
    uniform_size = UNIFORM_SIZE

    def reference(self, goal: Any, xp: Any) -> tuple[Any, Any, Any]:
        """``(pos_m, vel_m_s, acc_m_s2)`` of the reference at the goal's time."""
        centre, phase, elapsed = split_goal_arrays(goal)
        return reference_arrays(centre, phase, elapsed, self.config.amplitude_m, self.config.period_s, xp)

    def initial(self, uniform: Any, xp: Any) -> tuple[Any, Any, Any, Any, Any]:
        """``(episode (..., 4) = [centre, phase], pos_m, quat_wxyz, vel_m_s, rates_rad_s)`` from ``(..., 16)`` uniforms."""
        c = self.config
        centre, pos, quat, vel, rates = initial_arrays(
            uniform[..., :HOVER_UNIFORM_SIZE], c.target_low_m, c.target_high_m, c.start_offset_m,
            c.max_initial_tilt_rad, c.max_initial_speed_m_s, c.max_initial_rate_rad_s, xp)
        phase = c.phase_rad + (2.0 * math.pi * uniform[..., HOVER_UNIFORM_SIZE] if c.random_phase else
                               0.0 * uniform[..., HOVER_UNIFORM_SIZE])
        first, _, _ = reference_arrays(centre, phase, 0.0 * phase, c.amplitude_m, c.period_s, xp)
        return xp.concatenate([centre, phase[..., None]], axis=-1), pos - centre + first, quat, vel, rates

    def observe(self, pos_m: Any, quat_wxyz: Any, vel_m_s: Any, rates_rad_s: Any, target_m: Any, xp: Any,
                action_history: Any = None) -> Any:
        """quad_hover's observation to ``ref(t)``, then ``ref'(t)`` and the look-ahead, ``(..., 21 + 4 k + 3 L)``."""
        if (action_history is None) != (self.history_steps == 0):
            raise ValueError(f"quad_track observes {self.history_steps} past actions; got "
                             f"{'none' if action_history is None else 'an action history'}")
        ref_pos, ref_vel, _ = self.reference(target_m, xp)
        parts = [observe_arrays(pos_m, quat_wxyz, vel_m_s, rates_rad_s, ref_pos, xp, action_history),
                 ref_vel.astype(pos_m.dtype)]
        c = self.config
        if c.lookahead_steps:
            parts.append(lookahead_arrays(pos_m, target_m, c.amplitude_m, c.period_s, c.lookahead_steps,
                                          c.lookahead_dt_s, xp).astype(pos_m.dtype))
        return xp.concatenate(parts, axis=-1)

    def success(self, pos_m: Any, vel_m_s: Any, target_m: Any, xp: Any) -> Any:
        c = self.config
        ref_pos, ref_vel, _ = self.reference(target_m, xp)
        return success_arrays(pos_m, vel_m_s - ref_vel, ref_pos, c.success_tolerance_m, c.success_max_speed_m_s, xp)

    def reward(self, pos_m: Any, quat_wxyz: Any, vel_m_s: Any, rates_rad_s: Any, target_m: Any, xp: Any) -> Any:
        c = self.config
        ref_pos, ref_vel, _ = self.reference(target_m, xp)
        cost = cost_arrays(pos_m, quat_wxyz, vel_m_s - ref_vel, rates_rad_s, ref_pos,
                           (c.pos_weight, c.vel_weight, c.tilt_weight, c.rate_weight), xp)
        return reward_arrays(cost, self.terminated(pos_m, xp), c.crash_reward, xp)

    def expert(self, pos_m: Any, quat_wxyz: Any, vel_m_s: Any, target_m: Any, xp: Any) -> Any:
        """The position controller on ``ref(t)`` with velocity (and acceleration) feed-forward, heading 0."""
        controller = self.actions.controller
        ref_pos, ref_vel, ref_acc = self.reference(target_m, xp)
        vel_target = ref_vel + controller.position_to_velocity(pos_m, ref_pos, xp)
        if self.config.accel_feedforward:
            vel_target = vel_target + ref_acc / max(controller.gains.velocity_p_per_s, 1e-9)
        yaw_rate = heading_to_yaw_rate_arrays(quat_wxyz, 0.0 * pos_m[..., 0], controller.gains.yaw_p_per_s, xp)
        collective, rates = controller.velocity_to_thrust_rates(vel_target, yaw_rate, vel_m_s, quat_wxyz, xp)
        return self.actions.to_action(collective, rates, vel_m_s, quat_wxyz, xp)


class QuadTrack(QuadHover):
    """Backend-agnostic quad_track (quad_hover's task with a moving target). The episode's centre and
    phase are drawn in ``reset`` (``target_m`` holds ``[centre, phase]``); the elapsed time is the
    backend clock since then."""

    name = "quad_track"
    config: QuadTrackConfig

    def __init__(self, config: QuadTrackConfig | None = None) -> None:
        super().__init__(config or QuadTrackConfig())
        self._start_s = 0.0

    def arrays_for(self, spec: QuadSpec) -> TrackArrays:
        return TrackArrays(self.config, self.actions_for(spec))

    def state_layout(self, spec: QuadSpec, obs_mode: str) -> dict[str, int]:
        layout = {**super().state_layout(spec, obs_mode), "ref_vel_m_s": 3}
        if self.config.lookahead_steps:
            layout["lookahead_error_m"] = 3 * self.config.lookahead_steps
        return layout

    def reset(self, backend: Any, rng: np.random.Generator) -> QuadState:
        """quad_hover's reset with this task's draw (``target_m`` = ``[centre, phase]``); the clock starts."""
        state = super().reset(backend, rng)
        self._start_s = float(state.time_s)
        return state

    def marker_m(self, target: np.ndarray) -> np.ndarray:
        """A simulator shows the reference's first point."""
        return self._bound()[0].reference(np.concatenate([target, [0.0]]), np)[0]

    def goal(self, state: QuadState) -> np.ndarray:
        """The goal vector ``[centre, phase, elapsed_s]`` at ``state``'s time."""
        _, episode = self._bound()
        return np.concatenate([episode, [float(state.time_s) - self._start_s]])

    def reference(self, state: QuadState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The reference ``(pos_m, vel_m_s, acc_m_s2)`` at ``state``'s time."""
        return self._bound()[0].reference(self.goal(state), np)

    def observe(self, state: QuadState, obs_mode: str) -> np.ndarray:
        return self._bound()[0].observe(state.pos_m, state.quat_wxyz, state.vel_m_s, state.body_rates_rad_s,
                                        self.goal(state), np, self._history).astype(np.float32)

    def reward(self, state: QuadState) -> float:
        return float(self._bound()[0].reward(state.pos_m, state.quat_wxyz, state.vel_m_s, state.body_rates_rad_s,
                                             self.goal(state), np))

    def success(self, state: QuadState) -> bool:
        return bool(self._bound()[0].success(state.pos_m, state.vel_m_s, self.goal(state), np))

    def tracking_error_m(self, state: QuadState) -> float:
        """Distance to the current reference point [m]."""
        return float(np.linalg.norm(state.pos_m - self.reference(state)[0]))

    def progress(self, state: QuadState) -> float:
        """For the simulated human's stall test: minus the tracking error [m]; on track
        (:meth:`success`) the elapsed time [s], so keeping up counts as progress."""
        if self.success(state):
            return float(state.time_s) - self._start_s
        return -self.tracking_error_m(state)

    def info(self, state: QuadState) -> dict[str, float]:
        """Per step: ``tracking_error_m`` (the metrics' input, see :func:`tracking_metrics`)."""
        return {"tracking_error_m": self.tracking_error_m(state)}

    def expert(self, state: QuadState) -> np.ndarray:
        """The position controller tracking the reference (privileged: the task's reference), ``(4,)``."""
        return self._bound()[0].expert(state.pos_m, state.quat_wxyz, state.vel_m_s, self.goal(state),
                                       np).astype(np.float32)


def make_task(**options) -> QuadTrack:
    """Registry entry point: options are :class:`QuadTrackConfig` fields."""
    return QuadTrack(QuadTrackConfig(**options))
