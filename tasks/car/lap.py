"""car_lap: drive laps of a walled track as fast as possible without touching the walls.

The logic (checkpoints, progress reward, lap timing, collision/stuck/flip detection, observation,
reset distribution, pure-pursuit expert) is :mod:`tasks.car.lap_arrays`, written once over ``xp``
arrays; :class:`CarLap` runs it with numpy on any car backend whose scene has a track
(:class:`sim.car.track.TrackScene`: the MuJoCo car; the JAX vector env runs the same functions
batched). Observation (``obs="state"``): ``vel_body_m_s (2), yaw_rate_rad_s, steering_rad,
lateral_m, heading_sin_cos (2), lookahead_body_m (2 x 5)``; with ``obs="pixels"`` the state vector
is the first four parts and the track is seen through the ``front`` camera. Reward: progress
along the centreline per second, ``crash_penalty`` on a collision or flip. Success: a lap
completed in this episode. 400 steps (20 s at 20 Hz).

**Episodes and recovery.** A collision, a flip or being stuck ends the episode as *truncated*
(never terminated: the car goes on driving afterwards, so the value of its state is not zero).
The recovery manoeuvre (:mod:`tasks.car.recovery`; by default: reverse away from the wall, then
turn the car until it faces along the track; ``recovery="reverse"``: reverse with random steering)
runs inside the next ``reset()``, through the backend, at the task's control rate; its steps are
not part of any episode, and the next episode starts where it left the car. So resets are:

* a reset with a *new* random generator -- gymnasium's ``reset(seed=...)`` makes one -- or the first
  one, or any reset with ``respawn=True``: a fresh start at a random point of the track
  (``set_pose``, in sim; reproducible for a seed);
* any other reset (``reset()``, vector autoresets): the car continues from where it is, after the
  recovery manoeuvre if the episode ended in a collision, flip or stuck (else after braking to a
  standstill); either way it starts at rest with its wheels straight. If the car is still against a wall or upside down after recovering, a simulator
  puts it back on the centreline there.

RobotEnv truncates at ``max_episode_steps`` and wherever the task's ``truncated(state)`` says so
(a collision, a flip, being stuck).

Metrics: :attr:`CarLap.metrics` (laps and lap time of this episode, best lap, collisions per lap
over the task's life); ``info(state)`` puts the per-step ones (``laps_completed``, ``lap_time_s``,
``collided``) into every step's ``info``, as the JAX env does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from robot_rl.backends.car import CarBackend, CarSceneControl, CarSpec, CarState
from sim.car.track import Track, TrackScene
from tasks.car.base import CarTask
from tasks.car.course import check_pose_source, load_course
from tasks.car.lap_arrays import CarLapConfig, LapArrays, LapTracker
from tasks.car.recovery import (
    brake_to_standstill,
    reverse_out,
    straighten_wheels,
    turn_along_track,
)
from tasks.car.track_arrays import TrackArrays, track_arrays

PROPRIO_LAYOUT = {"vel_body_m_s": 2, "yaw_rate_rad_s": 1, "steering_rad": 1}


class CarLap(CarTask):
    """Backend-agnostic car_lap for any car backend with a track (module docstring)."""

    name = "car_lap"

    def __init__(self, config: CarLapConfig | None = None) -> None:
        self.config = config or CarLapConfig()
        self.arrays = LapArrays(self.config)
        self.mapping = self.arrays.mapping
        self.track: Track | None = None
        self.tracker: LapTracker | None = None
        self._track_arrays: TrackArrays | None = None
        self._spec: CarSpec | None = None
        self._rng: np.random.Generator | None = None
        self._last_state: CarState | None = None
        self.max_episode_steps = self.config.max_episode_steps
        self._driving = False
        self.totals = {"laps": 0, "collisions": 0, "best_lap_time_s": math.inf}

    def state_layout(self, spec: CarSpec, obs_mode: str) -> dict[str, int]:
        layout = dict(PROPRIO_LAYOUT)
        if obs_mode == "state":
            layout.update(lateral_m=1, heading_sin_cos=2, lookahead_body_m=2 * len(self.config.lookahead_m))
        return layout

    # ------------------------------------------------------------------ reset
    def reset(self, backend: CarBackend, rng: np.random.Generator) -> CarState:
        track = self._track_of(backend)
        self._spec, period_s = backend.spec, 1.0 / self.control_hz
        fresh = rng is not self._rng or self.tracker is None or self.config.respawn
        if fresh and isinstance(backend, CarSceneControl):
            _, pos, yaw = self.arrays.start_pose(self._track_arrays, rng.uniform(size=3), np)
            backend.set_pose(pos, float(yaw))
            state = brake_to_standstill(backend, period_s)
        elif not fresh and bool(self.arrays.ended(self.tracker, np)):
            state = self._recover(backend, rng, period_s)
        else:
            state = straighten_wheels(backend, period_s)
        state = self._back_on_track(backend, state, period_s)
        if self.config.randomize_visuals:
            if not hasattr(backend, "randomize_visuals"):
                raise ValueError(f"randomize_visuals=True, but {type(backend).__name__} cannot randomize its visuals")
            backend.randomize_visuals(rng)
        self._rng = rng
        self.tracker = self.arrays.start(self._track_arrays, np.asarray(track.nearest(self._centre(state))),
                                         state.pos_m, np.asarray(state.yaw_rad), state.time_s, np)
        self._last_state, self._driving = state, False
        return state

    def _track_of(self, backend: CarBackend) -> Track:
        """The course (``config.course``) or else the scene's track; checks the car has a pose."""
        if self.config.course is not None:
            track = self.track if self.track is not None else load_course(self.config.course)
        elif isinstance(backend, TrackScene):
            track = backend.track
        else:
            raise ValueError(f"car_lap needs a course: a simulator's generated track (sim/car backends) or, on a "
                             f"real car, course=PATH, a course built from one demonstration lap "
                             f"(tasks.car.course); {type(backend).__name__} has no track and no course was given")
        check_pose_source(backend, backend.read_state())
        if track is not self.track:
            self.track = track
            self.config.check_track(self.track.half_width_m)
            self._track_arrays = track_arrays(self.track)
        return self.track

    def _centre(self, state: CarState) -> np.ndarray:
        return self.arrays.centre_arrays(state.pos_m, np.asarray(state.yaw_rad), np)

    def _recover(self, backend: CarBackend, rng: np.random.Generator, period_s: float) -> CarState:
        """The recovery manoeuvre of ``config.recovery``; ``"align"`` locates the car on the track as it turns."""
        c = self.config
        if c.recovery == "reverse":
            return reverse_out(backend, rng, period_s, c.recovery_s, c.recovery_speed_m_s)
        index = self.tracker.index

        def where(state: CarState) -> tuple[float, float, float]:
            nonlocal index
            index, _, lateral, sin_err, cos_err, clearance = self.arrays.locate_car(
                self._track_arrays, index, state.pos_m, np.asarray(state.yaw_rad), np)
            return math.atan2(float(sin_err), float(cos_err)), float(lateral), float(clearance)

        return turn_along_track(backend, where, period_s, c.recovery_s, c.recovery_speed_m_s,
                                c.recovery_heading_tol_rad)

    def _back_on_track(self, backend: CarBackend, state: CarState, period_s: float) -> CarState:
        """After recovery: a car still against a wall or upside down is put back on the centreline (sim)."""
        probe = self.arrays.start(self._track_arrays, np.asarray(self.track.nearest(self._centre(state))), state.pos_m,
                                  np.asarray(state.yaw_rad), state.time_s, np)
        probe = self.arrays.step(self._track_arrays, probe, state.pos_m, np.asarray(state.yaw_rad),
                                 state.imu_accel_m_s2[2], False, state.time_s, np)
        upside_down = state.imu_accel_m_s2[2] < 0.0  # at rest after the manoeuvre one sample tells (no contact spikes)
        if not bool(probe.crashed | upside_down):
            return state
        if not isinstance(backend, CarSceneControl):
            raise RuntimeError("car_lap: the car is still against a wall or upside down after the recovery "
                               "manoeuvre; put it back on the track")
        backend.set_pose(*self.track.pose_at(int(probe.index) - round(self.arrays.centre_m / self.track.spacing_m)))
        return brake_to_standstill(backend, period_s)

    # ------------------------------------------------------------------ one step
    def action_to_command(self, action: np.ndarray, state: CarState, spec: CarSpec) -> Any:
        command = super().action_to_command(action, state, spec)
        self._driving = bool(self.mapping.driving(command.speed_m_s if command.speed_m_s is not None
                                                  else command.throttle, np))
        return command

    def _update(self, state: CarState) -> LapTracker:
        """Advance the tracker once per new state (every step's first call of terminated/reward/... does it)."""
        if self.tracker is None:
            raise RuntimeError("car_lap has no track position yet: reset() first")
        if state is self._last_state:
            return self.tracker
        tracker = self.arrays.step(self._track_arrays, self.tracker, state.pos_m, np.asarray(state.yaw_rad),
                                   state.imu_accel_m_s2[2], self._driving, state.time_s, np)
        self.totals["laps"] += int(tracker.laps) - int(self.tracker.laps)
        self.tracker, self._last_state = tracker, state
        if int(tracker.laps) and float(tracker.lap_time_s) < self.totals["best_lap_time_s"]:
            self.totals["best_lap_time_s"] = float(tracker.lap_time_s)
        if bool(self.arrays.ended(tracker, np)):
            self.totals["collisions"] += int(bool(tracker.crashed | tracker.flipped))
        return tracker

    def observe(self, state: CarState, obs_mode: str) -> np.ndarray:
        t = self._update(state)
        return self.arrays.observe(self._track_arrays, t, state.pos_m, np.asarray(state.yaw_rad), state.vel_body_m_s,
                                   np.asarray(state.yaw_rate_rad_s), np.asarray(state.steering_rad),
                                   obs_mode == "state", np).astype(np.float32)

    def reward(self, state: CarState) -> float:
        return float(self.arrays.reward(self._update(state), np))

    def success(self, state: CarState) -> bool:
        return bool(self.arrays.success(self._update(state), np))

    def progress(self, state: CarState) -> float:
        """Metres gained along the centreline this episode: the simulated human's stall test (the
        reward, a speed, levels off on a car driving well)."""
        return float(self._update(state).progress_m)

    def terminated(self, state: CarState) -> bool:
        """Never: collisions, flips and being stuck truncate (:meth:`truncated`)."""
        self._update(state)
        return False

    def truncated(self, state: CarState) -> bool:
        """A collision, a flip or being stuck: the episode stops; the next reset recovers."""
        return bool(self.arrays.ended(self._update(state), np))

    def info(self, state: CarState) -> dict[str, Any]:
        """This step's lap metrics for ``info`` (``laps_completed``, ``lap_time_s``, ``collided``)."""
        self._update(state)
        metrics = self.metrics
        return {key: metrics[key] for key in ("laps_completed", "lap_time_s", "collided")}

    def expert(self, state: CarState) -> np.ndarray:
        """Pure pursuit along the centreline (privileged: the track), normalized action ``(2,)``."""
        t, spec = self._update(state), self._spec
        return self.arrays.expert(self._track_arrays, t, state.pos_m, np.asarray(state.yaw_rad),
                                  np.asarray(state.forward_speed_m_s), spec.wheelbase_m, spec.max_steering_rad,
                                  np).astype(np.float32)

    @property
    def metrics(self) -> dict[str, float]:
        """``laps_completed``/``lap_time_s`` (this episode; inf before a lap), ``collided`` (the
        last step), and over the task's life ``best_lap_time_s`` and ``collisions_per_lap``."""
        t, totals = self.tracker, self.totals
        return {"laps_completed": int(t.laps), "lap_time_s": float(t.lap_time_s),
                "collided": bool(t.crashed | t.flipped), "best_lap_time_s": totals["best_lap_time_s"],
                "collisions_per_lap": totals["collisions"] / totals["laps"] if totals["laps"] else math.nan}


def make_task(**options: Any) -> CarLap:
    """Registry entry point: options are :class:`~tasks.car.lap_arrays.CarLapConfig` fields."""
    return CarLap(CarLapConfig(**options))
