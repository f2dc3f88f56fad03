"""MuJoCo implementation of the car contract (:class:`robot_rl.backends.car.CarBackend`).

The scene is :func:`sim.car.model.mjcf`: our 1/10 car on the walled track of the config's
``track_seed`` (:mod:`sim.car.track`). ``command()`` applies :func:`~robot_rl.backends.car.clip_car_command`
(rate limits over the last ``sync`` period) and holds the result; every physics step of
``sync(period_s)`` runs the car's own low-level loop, as its ESC and servo would
(:mod:`sim.car.dynamics`, at ``low_level_hz``): speed mode -> speed controller -> throttle; throttle -> DC motor force
-> wheel torques (4WD); the steering servo slews toward its target (after ``steering_delay_s``)
and the two front knuckles follow at Ackermann angles. ``stop()`` brakes to a standstill
(speed set-point 0 at once, steering held). Scene control: ``set_pose`` (the contract's
:class:`~robot_rl.backends.car.CarSceneControl`), ``track`` (the centreline tasks read,
:class:`~sim.car.track.TrackScene`; known before ``connect()``) and ``randomize_visuals``.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import mujoco
import numpy as np

from robot_rl.backends.base import CameraSpec
from robot_rl.backends.car import SPEED, CarCommand, CarState, clip_car_command
from sim.car import dynamics
from sim.car.model import CAMERAS, FLOOR_MATERIALS, WALL_MATERIALS, WHEELS, mjcf
from sim.car.params import CarPhysics
from sim.car.track import Track, TrackSettings
from sim.rendering import OffscreenCameras, observed_cameras
from sim.scene import MujocoScene

DEFAULT_PERIOD_S = 0.05  # the rate-limit period before the first sync() says the real one


@dataclasses.dataclass(frozen=True)
class MujocoCarConfig(CarPhysics, TrackSettings):
    """The simulated car: its physics (:class:`~sim.car.params.CarPhysics`), its track
    (:class:`~sim.car.track.TrackSettings`), and

    Attributes:
        physics_hz: MuJoCo's rate (the ESC/servo loop runs at ``low_level_hz``).
        cameras: cameras observed with ``obs="pixels"`` (subset of ``front``, ``chase``, ``top``).
        image_height, image_width: camera image size in pixels.
        visual_seed: the texture colours of the scene's materials.
    """

    physics_hz: float = 500.0
    cameras: tuple[str, ...] = ("front",)
    image_height: int = 64
    image_width: int = 64
    visual_seed: int = 0

    def __post_init__(self) -> None:
        CarPhysics.__post_init__(self)
        TrackSettings.__post_init__(self)
        if not 100.0 <= self.physics_hz <= 5000.0:
            raise ValueError(f"physics_hz must be in [100, 5000], got {self.physics_hz}")
        if not self.low_level_hz <= self.physics_hz:
            raise ValueError(f"low_level_hz ({self.low_level_hz}) must not exceed physics_hz ({self.physics_hz})")
        unknown = set(self.cameras) - set(CAMERAS)
        if unknown:
            raise ValueError(f"unknown cameras {sorted(unknown)}; the sim car has {list(CAMERAS)}")
        object.__setattr__(self, "cameras", tuple(self.cameras))
        if self.image_height <= 0 or self.image_width <= 0:
            raise ValueError(f"image size must be positive, got {self.image_height}x{self.image_width}")


class MujocoCar(MujocoScene):
    """The simulated car. Nothing happens in ``__init__``; ``connect()`` compiles the scene and puts
    the car at rest on the track's start line."""

    family = "car"

    def __init__(self, config: MujocoCarConfig | None = None) -> None:
        self.config = c = config or MujocoCarConfig()
        cameras = {name: CameraSpec(name, c.image_height, c.image_width) for name in c.cameras}
        super().__init__(c.spec(cameras, CAMERAS), OffscreenCameras(CAMERAS, "the sim car", (c.image_height, c.image_width)))

    @functools.cached_property
    def track(self) -> Track:
        """The scene's track (from ``config.track_seed``), known before ``connect()``."""
        return self.config.track()

    # ------------------------------------------------------------------ lifecycle
    def _compile(self) -> mujoco.MjModel:
        c = self.config
        return mujoco.MjModel.from_xml_string(mjcf(c, self.track, c.physics_hz, c.wall_height_m,
                                                   (c.image_height, c.image_width), c.visual_seed))

    def _bind(self) -> None:
        m = self.model
        self._free_q = m.jnt_qposadr[m.joint("car").id]
        self._free_v = m.jnt_dofadr[m.joint("car").id]
        self._rear_wheel_v = [m.jnt_dofadr[m.joint(f"wheel_{n}").id] for n in ("rl", "rr")]
        self._steer_ctrl = [m.actuator(f"steer_{n}").id for n in ("fl", "fr")]
        self._drive_ctrl = [m.actuator(f"drive_{n}").id for n in WHEELS]
        self._sensor = {name: slice(m.sensor_adr[m.sensor(name).id], m.sensor_adr[m.sensor(name).id] + 3)
                        for name in ("vel", "gyro", "accel")}
        self._floor, self._walls = m.geom("floor").id, [i for i in range(m.ngeom) if m.geom(i).name.startswith("wall_")]
        self._materials = {name: m.material(name).id for name in FLOOR_MATERIALS + WALL_MATERIALS}
        self._period_s = DEFAULT_PERIOD_S
        self.set_pose(*self.track.pose_at(0))

    # ------------------------------------------------------------------ control
    def read_state(self) -> CarState:
        _, d = self._require()
        q = d.qpos[self._free_q:self._free_q + 7]
        w, x, y, z = q[3:7]
        vel, gyro = d.sensordata[self._sensor["vel"]], d.sensordata[self._sensor["gyro"]]
        return CarState(time_s=float(d.time), pos_m=q[:2], yaw_rad=math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)),
                        vel_body_m_s=vel[:2], yaw_rate_rad_s=float(gyro[2]), wheel_speed_m_s=self._wheel_speed_m_s(),
                        steering_rad=self._servo_rad, imu_accel_m_s2=d.sensordata[self._sensor["accel"]],
                        imu_gyro_rad_s=gyro)

    def _wheel_speed_m_s(self) -> float:
        """Mean surface speed of the rear wheels (what the speed controller tracks)."""
        return float(np.mean(self.data.qvel[self._rear_wheel_v])) * self.config.wheel_radius_m

    def command(self, command: CarCommand) -> CarCommand:
        """Clip (:func:`~robot_rl.backends.car.clip_car_command` over the last sync period), hold until
        the next command, return what was applied."""
        _, d = self._require()
        executed = clip_car_command(command, self._spec, self.read_state(), self._last, self._period_s)
        self._old_target_rad, self._target_changed_s = self._target_rad, float(d.time)
        self._target_rad, self._last, self._braking = executed.steering_rad, executed, False
        return executed

    def stop(self) -> None:
        """Brake to a standstill now: speed set-point 0 (no ramp), steering held where it is."""
        self._require()
        self._braking = True
        self._target_rad = self._old_target_rad = self._servo_rad
        self._last = CarCommand(steering_rad=self._servo_rad, speed_m_s=0.0)

    def sync(self, period_s: float) -> None:
        """Advance physics by ``period_s`` (whole low-level steps, at least one): every ``1 / low_level_hz``
        the ESC and servo loop updates the wheel torques and knuckle targets, physics runs in between."""
        m, d = self._require()
        if not period_s > 0:
            raise ValueError(f"sync period_s must be > 0, got {period_s}")
        self._period_s = float(period_s)
        c = self.config
        physics_steps = max(1, round(c.physics_hz / c.low_level_hz))
        for _ in range(max(1, round(period_s * c.low_level_hz))):
            self._low_level_step(physics_steps * m.opt.timestep)
            mujoco.mj_step(m, d, nstep=physics_steps)
        if not np.all(np.isfinite(d.qpos)):
            raise FloatingPointError("car simulation diverged (non-finite state)")

    def _low_level_step(self, dt_s: float) -> None:
        """One ESC + servo update (held for ``dt_s``): wheel torques and knuckle angle targets in ``ctrl``."""
        c, d = self.config, self.data
        delayed = d.time - self._target_changed_s < c.steering_delay_s - 1e-9
        target = self._old_target_rad if delayed else self._target_rad
        self._servo_rad = float(dynamics.servo_arrays(self._servo_rad, target, c.max_steering_rate_rad_s * dt_s, np))
        d.ctrl[self._steer_ctrl] = dynamics.ackermann_arrays(self._servo_rad, c.wheelbase_m, c.track_width_m, np)
        wheel_speed = self._wheel_speed_m_s()
        if self._last is None or self._last.mode == SPEED:
            speed_set = 0.0 if self._last is None else self._last.speed_m_s
            throttle = dynamics.speed_controller_arrays(speed_set, wheel_speed, c.free_speed_m_s, c.speed_gain_per_m_s, np)
        else:
            throttle = self._last.throttle
        force = dynamics.motor_force_arrays(throttle, wheel_speed, c.max_drive_force_n, c.free_speed_m_s, np)
        d.ctrl[self._drive_ctrl] = force * c.wheel_radius_m / len(WHEELS)

    # ------------------------------------------------------------------ scene control
    def set_pose(self, pos_m: np.ndarray, yaw_rad: float) -> None:
        """Put the car's rear axle at ``pos_m`` ``(2,)`` with heading ``yaw_rad`` (world frame), at rest,
        steering 0, no command (the speed controller holds it still)."""
        m, d = self._require()
        pos = np.asarray(pos_m, dtype=np.float64)
        if pos.shape != (2,) or not np.all(np.isfinite(pos)) or not math.isfinite(yaw_rad):
            raise ValueError(f"set_pose needs a finite pos_m (2,) and yaw_rad, got {pos_m!r}, {yaw_rad!r}")
        mujoco.mj_resetData(m, d)
        d.qpos[self._free_q:self._free_q + 7] = [*pos, self.config.wheel_radius_m + 1e-3,
                                                 math.cos(yaw_rad / 2), 0.0, 0.0, math.sin(yaw_rad / 2)]
        self._servo_rad = self._target_rad = self._old_target_rad = 0.0
        self._target_changed_s, self._last, self._braking = 0.0, None, True
        mujoco.mj_forward(m, d)

    def randomize_visuals(self, rng: np.random.Generator) -> None:
        """Draw the floor's and the walls' texture and tint, and the light, from ``rng`` (render only)."""
        m, _ = self._require()
        floor = self._materials[FLOOR_MATERIALS[rng.integers(len(FLOOR_MATERIALS))]]
        wall = self._materials[WALL_MATERIALS[rng.integers(len(WALL_MATERIALS))]]
        m.geom_matid[self._floor], m.geom_matid[self._walls] = floor, wall
        m.mat_rgba[floor, :3], m.mat_rgba[wall, :3] = rng.uniform(0.5, 1.0, 3), rng.uniform(0.4, 1.0, 3)
        m.light_diffuse[0] = rng.uniform(0.2, 0.8) * np.ones(3)
        direction = np.array([*rng.uniform(-0.6, 0.6, 2), -1.0])
        m.light_dir[0] = direction / np.linalg.norm(direction)
        m.vis.headlight.ambient[:] = rng.uniform(0.2, 0.6) * np.ones(3)


def make_backend(task, obs: str, **options) -> MujocoCar:
    """Registry entry point: the sim car. Options are :class:`MujocoCarConfig` fields; with
    ``obs="state"`` no camera is rendered per step unless ``cameras`` is given."""
    return MujocoCar(observed_cameras(MujocoCarConfig(**options), obs, options))
