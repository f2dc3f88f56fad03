"""car_lap's logic written once as ``xp`` array functions: checkpoints and progress, lap timing,
collision/stuck/flip detection, observation, reward, the reset distribution and the expert.

The task's whole per-car state is a :class:`LapTracker` (0-d numpy arrays in
:class:`tasks.car.lap.CarLap` over MuJoCo or a real car; ``(N,)`` ``jax.numpy`` arrays in the
JAX vector env), advanced once per control step by :meth:`LapArrays.step`; observation, reward,
success and the episode's end are functions of the tracker and the car's state. The xp rules are
those of :mod:`tasks.puck.reach`; config numbers are bound once in :class:`LapArrays`.

Checkpoints and progress: the track's centreline points (``spacing_m`` apart) are the
checkpoints, in order. The car's footprint centre is located on the centreline every step
(:func:`~tasks.car.track_arrays.locate_arrays`, moving on from the previous checkpoint, so
checkpoints cannot be skipped); its arc-length gain since the previous step is the progress
toward the next checkpoints. Reward = progress per second [m/s] (negative when driving the
wrong way), minus ``crash_penalty`` on the step the car hits a wall or flips. A lap is one
track length of progress; its time runs from the episode's start or the previous lap.

An episode ends (truncated, never terminated: the task goes on) when the footprint reaches a
wall (collision), when the car is upside down (``imu_accel_m_s2[2] < 0`` at every step for ``flip_s``:
one sample is not enough, since a wheel's contact with the floor can spike the accelerometer for a
physics step), or when it is stuck:
no new best progress of ``stuck_min_progress_m`` for ``stuck_s`` seconds *while the policy asks
it to drive* (holding still is a choice, not stuck: it ends at the time limit).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

from tasks.car.base import DriveMapping
from tasks.car.expert import PurePursuit, pure_pursuit_arrays
from tasks.car.track_arrays import (
    TrackArrays,
    heading_error_arrays,
    locate_arrays,
    lookahead_arrays,
    track_arrays,
    wall_clearance_arrays,
    wrap_arc_arrays,
)

RECOVERIES = ("align", "reverse")


@dataclasses.dataclass(frozen=True)
class CarLapConfig:
    """Every field can be overridden through ``robot_rl.make("car_lap", field=value)``.

    Attributes:
        max_episode_steps: time limit in control steps (truncation).
        drive, min_speed_m_s, max_speed_m_s: the action's drive mapping (:class:`tasks.car.base.DriveMapping`).
        crash_penalty: subtracted from the reward on the step of a collision or a flip.
        flip_s: flipped = the accelerometer reads upside down (``z < 0``) at every step for this long.
        stuck_s, stuck_min_progress_m: stuck = no new best progress of this much for this long while driving.
        car_length_m, car_width_m, rear_overhang_m: the car's footprint (F1TENTH size by default) and
            where its rear axle is (ahead of the rear bumper) for collision detection.
        collision_margin_m: a collision is declared this far before the footprint touches a wall.
        lookahead_m: distances ahead of the car of the centreline points in the observation.
        start_lateral_m, start_heading_rad: random starts are this far off the centreline / its direction.
        respawn: in sim, start every episode at a random point of the track instead of where the
            previous one ended (after recovery); the JAX env always respawns.
        recovery: the manoeuvre after a collision, flip or stuck (:mod:`tasks.car.recovery`): ``"align"``
            (default) reverses away turning toward the track direction, then turns the car in forward and
            reverse legs until it faces along the track within ``recovery_heading_tol_rad``; ``"reverse"``
            (FastRLAP's) reverses with a random steering angle and can leave it facing backwards.
        recovery_s, recovery_speed_m_s: the manoeuvre's first, reversing leg: this long at most, at this speed.
        recovery_heading_tol_rad: ``"align"`` ends with the car this close to the track direction (or
            after 8 legs; a car still against a wall is then put back on the track in sim).
        course: a course file (:func:`tasks.car.course.save_course`: checkpoints from one demonstration
            lap) to race instead of the scene's generated track: how car_lap runs on a real car. The
            car's pose must then be in the course's frame.
        randomize_visuals: draw new floor/wall textures and lighting at every reset (sim backends
            that support it; for pixel policies).
        expert_max_speed_m_s, expert_lateral_accel_m_s2: the pure-pursuit expert's speed cap and curve limit.
    """

    max_episode_steps: int = 400
    drive: str = "speed"
    min_speed_m_s: float = 0.0
    max_speed_m_s: float = 4.0
    crash_penalty: float = 10.0
    stuck_s: float = 3.0
    flip_s: float = 0.25
    stuck_min_progress_m: float = 0.3
    car_length_m: float = 0.58
    car_width_m: float = 0.31
    rear_overhang_m: float = 0.12
    collision_margin_m: float = 0.0
    lookahead_m: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0)
    start_lateral_m: float = 0.2
    start_heading_rad: float = 0.2
    respawn: bool = False
    recovery: str = "align"
    recovery_s: float = 1.0
    recovery_speed_m_s: float = 1.0
    recovery_heading_tol_rad: float = 0.35
    course: str | None = None
    randomize_visuals: bool = False
    expert_max_speed_m_s: float = 3.0
    expert_lateral_accel_m_s2: float = 4.0

    def __post_init__(self) -> None:
        if self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")
        for name in ("stuck_s", "flip_s", "stuck_min_progress_m", "car_length_m", "car_width_m", "recovery_s",
                     "recovery_speed_m_s", "recovery_heading_tol_rad"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("crash_penalty", "collision_margin_m", "start_lateral_m", "start_heading_rad", "rear_overhang_m"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.rear_overhang_m < self.car_length_m:
            raise ValueError(f"rear_overhang_m {self.rear_overhang_m} must be shorter than car_length_m {self.car_length_m}")
        if self.recovery not in RECOVERIES:
            raise ValueError(f"recovery must be one of {RECOVERIES}, got {self.recovery!r}")
        lookahead = tuple(float(d) for d in self.lookahead_m)  # a JSON list from --env-kwargs too
        if not lookahead or min(lookahead) < 0:
            raise ValueError(f"lookahead_m must be distances >= 0, got {self.lookahead_m!r}")
        object.__setattr__(self, "lookahead_m", lookahead)
        DriveMapping(self.drive, self.min_speed_m_s, self.max_speed_m_s)  # checks the mapping
        PurePursuit(self.expert_max_speed_m_s, self.expert_lateral_accel_m_s2)

    def check_track(self, half_width_m: float) -> None:
        """Random starts must leave the car's footprint clear of the walls."""
        reach = self.start_lateral_m + 0.5 * self.car_length_m * math.sin(self.start_heading_rad) + 0.5 * self.car_width_m
        if reach + self.collision_margin_m >= half_width_m:
            raise ValueError(f"car_lap starts reach {reach:.2f} m from the centreline (start_lateral_m, start_heading_rad, "
                             f"car size) but the track's walls are {half_width_m} m away")


class LapTracker(NamedTuple):
    """One car's (or a batch's) task state; see the module docstring. Times from the backend's clock."""

    index: Any          # the footprint centre's centreline segment
    s_m: Any            # its arc length along the track
    progress_m: Any     # arc length gained since the episode's start
    best_m: Any         # best progress so far (stuck detection)
    stuck_s: Any        # time driving without a new best
    upside_down_s: Any  # time the accelerometer has read upside down without a break
    time_s: Any         # clock at the last update
    dt_s: Any           # length of the last step
    lap_start_s: Any    # clock at the start of the running lap
    lap_start_m: Any    # progress at the start of the running lap
    laps: Any           # laps completed this episode
    lap_time_s: Any     # time of the last completed lap (inf before the first: no lap yet)
    ds_m: Any           # progress of the last step
    lateral_m: Any      # footprint centre's signed distance from the centreline (left positive)
    sin_err: Any        # heading relative to the track direction
    cos_err: Any
    crashed: Any        # the last step reached a wall
    stuck: Any
    flipped: Any


@dataclasses.dataclass(frozen=True)
class LapArrays:
    """car_lap's array functions with its config bound: what a simulator needs, numpy or JAX."""

    config: CarLapConfig

    @property
    def mapping(self) -> DriveMapping:
        c = self.config
        return DriveMapping(c.drive, c.min_speed_m_s, c.max_speed_m_s)

    def track_arrays(self, track: Any, xp: Any, dtype: Any) -> Any:
        """The scene's track as the arrays these functions read (:func:`tasks.car.track_arrays.track_arrays`)."""
        if self.config.course is not None:
            raise NotImplementedError("course= (a demonstration lap's checkpoints) is for car_lap on the MuJoCo or a "
                                      "real car; the JAX car races the track its config generates")
        return track_arrays(track, xp, dtype)

    @property
    def centre_m(self) -> float:
        """Footprint centre ahead of the rear axle."""
        return 0.5 * self.config.car_length_m - self.config.rear_overhang_m

    def centre_arrays(self, pos_m: Any, yaw_rad: Any, xp: Any) -> Any:
        return pos_m + self.centre_m * xp.stack([xp.cos(yaw_rad), xp.sin(yaw_rad)], axis=-1)

    def start_pose(self, track: TrackArrays, uniform: Any, xp: Any) -> tuple[Any, Any, Any]:
        """Uniform samples ``(..., 3)`` -> a random start: ``(index, rear-axle pos_m (..., 2), yaw_rad)``,
        footprint centre near centreline point ``index``, facing roughly along the track."""
        c, count = self.config, track.num_points
        index = xp.minimum((uniform[..., 0] * count).astype(xp.int32), count - 1)
        row = track.table[index]
        tangent = row[..., 2:4]
        normal = xp.stack([-tangent[..., 1], tangent[..., 0]], axis=-1)
        centre = row[..., 0:2] + (c.start_lateral_m * (2 * uniform[..., 1:2] - 1)) * normal
        yaw = xp.arctan2(tangent[..., 1], tangent[..., 0]) + c.start_heading_rad * (2 * uniform[..., 2] - 1)
        return index, centre - self.centre_m * xp.stack([xp.cos(yaw), xp.sin(yaw)], axis=-1), yaw

    def start(self, track: TrackArrays, index: Any, pos_m: Any, yaw_rad: Any, time_s: Any, xp: Any,
              iterations: int = 3) -> LapTracker:
        """A fresh episode's tracker for a car at rest at ``pos_m`` (rear axle), ``yaw_rad``, near segment
        ``index`` (``iterations=0``: exactly on segment ``index``, as :meth:`start_pose` puts it)."""
        index, s_m, lateral, tangent = locate_arrays(track, self.centre_arrays(pos_m, yaw_rad, xp), index, xp,
                                                     iterations)
        sin_err, cos_err = heading_error_arrays(tangent, yaw_rad, xp)
        zero, false = xp.zeros_like(s_m), xp.zeros(s_m.shape, dtype=bool)
        time = zero + time_s
        return LapTracker(index, s_m, zero, zero, zero, zero, time, zero, time, zero, xp.zeros_like(index),
                          zero + xp.inf, zero, lateral, sin_err, cos_err, false, false, false)

    def step(self, track: TrackArrays, tracker: LapTracker, pos_m: Any, yaw_rad: Any, accel_z_m_s2: Any,
             driving: Any, time_s: Any, xp: Any) -> LapTracker:
        """The tracker after one control step that left the car at ``pos_m``/``yaw_rad`` at ``time_s``;
        ``driving``: whether the policy asked the car to move."""
        c = self.config
        index, s_m, lateral, sin_err, cos_err, clearance = self.locate_car(track, tracker.index, pos_m, yaw_rad, xp)
        ds = wrap_arc_arrays(s_m - tracker.s_m, track.length_m, xp)
        progress = tracker.progress_m + ds
        improved = progress > tracker.best_m + c.stuck_min_progress_m
        dt = time_s - tracker.time_s
        stuck_s = xp.where(improved, 0.0, tracker.stuck_s + xp.where(driving, dt, 0.0))
        upside_down_s = xp.where(accel_z_m_s2 < 0.0, tracker.upside_down_s + dt, 0.0)
        lap_done = progress - tracker.lap_start_m >= track.length_m
        crashed = clearance <= 0.0
        return LapTracker(
            index, s_m, progress, xp.where(improved, progress, tracker.best_m), stuck_s, upside_down_s,
            tracker.time_s + dt, dt,
            xp.where(lap_done, time_s, tracker.lap_start_s), tracker.lap_start_m + xp.where(lap_done, track.length_m, 0.0),
            tracker.laps + lap_done.astype(tracker.laps.dtype), xp.where(lap_done, time_s - tracker.lap_start_s,
                                                                         tracker.lap_time_s),
            ds, lateral, sin_err, cos_err, crashed, stuck_s >= c.stuck_s, upside_down_s >= c.flip_s - 1e-9)

    def locate_car(self, track: TrackArrays, index: Any, pos_m: Any, yaw_rad: Any, xp: Any) -> tuple[Any, ...]:
        """The footprint centre of a car at ``pos_m``/``yaw_rad`` located from segment ``index``:
        ``(index, s_m, lateral_m, sin_err, cos_err, wall_clearance_m)`` (the heading relative to the
        track direction; the footprint's distance from the nearer wall, ``<= 0``: a collision)."""
        c = self.config
        index, s_m, lateral, tangent = locate_arrays(track, self.centre_arrays(pos_m, yaw_rad, xp), index, xp)
        sin_err, cos_err = heading_error_arrays(tangent, yaw_rad, xp)
        clearance = wall_clearance_arrays(lateral, sin_err, cos_err, 0.5 * c.car_length_m, 0.5 * c.car_width_m,
                                          track.half_width_m - c.collision_margin_m, xp)
        return index, s_m, lateral, sin_err, cos_err, clearance

    def ended(self, tracker: LapTracker, xp: Any) -> Any:
        """The episode ends (truncated) after this step: collision, flip or stuck."""
        return tracker.crashed | tracker.flipped | tracker.stuck

    def reward(self, tracker: LapTracker, xp: Any) -> Any:
        """Progress per second [m/s] of the last step, minus ``crash_penalty`` on a collision or flip."""
        rate = tracker.ds_m / xp.maximum(tracker.dt_s, 1e-6)
        return rate - self.config.crash_penalty * (tracker.crashed | tracker.flipped).astype(rate.dtype)

    def success(self, tracker: LapTracker, xp: Any) -> Any:
        """At least one lap completed this episode."""
        return tracker.laps >= 1

    def observe(self, track: TrackArrays, tracker: LapTracker, pos_m: Any, yaw_rad: Any, vel_body_m_s: Any,
                yaw_rate_rad_s: Any, steering_rad: Any, include_track: bool, xp: Any) -> Any:
        """``[vel_body_m_s (2), yaw_rate_rad_s, steering_rad]``, then with ``include_track``
        ``[lateral_m, heading sin, cos, lookahead points (2K), body frame]`` (layout: ``CarLap.state_layout``)."""
        parts = [vel_body_m_s, yaw_rate_rad_s[..., None], steering_rad[..., None]]
        if include_track:
            parts += [tracker.lateral_m[..., None], tracker.sin_err[..., None], tracker.cos_err[..., None],
                      lookahead_arrays(track, tracker.index, pos_m, yaw_rad, self.config.lookahead_m, xp)]
        return xp.concatenate([xp.asarray(p, dtype=vel_body_m_s.dtype) for p in parts], axis=-1)

    def expert(self, track: TrackArrays, tracker: LapTracker, pos_m: Any, yaw_rad: Any, speed_m_s: Any,
               wheelbase_m: float, max_steering_rad: float, xp: Any) -> Any:
        c = self.config
        expert = PurePursuit(c.expert_max_speed_m_s, c.expert_lateral_accel_m_s2)
        return pure_pursuit_arrays(expert, self.mapping, track, tracker.index, pos_m, yaw_rad, speed_m_s,
                                   wheelbase_m, max_steering_rad, xp)
