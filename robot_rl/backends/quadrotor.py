"""The quadrotor family contract (``family = "quadrotor"``): an X-frame quadrotor, simulated or real.

What a quadrotor backend declares (:class:`QuadSpec`), reads (:class:`QuadState`) and accepts (one
or more command levels, lowest first: :class:`MotorThrusts`, :class:`ThrustRates`,
:class:`AttitudeCommand`, :class:`VelocityCommand`), and the safety limits every quadrotor backend
applies before sending (:func:`clip_quad_command`). No physics, no drivers.

Conventions for every quantity below:

* lengths in metres, angles in radians, time in seconds, mass in kilograms, force in newtons;
* "world frame, ENU": x east, y north, z up; gravity points along world -z;
* "body frame, FLU": x forward (the nose), y left, z up (the thrust direction);
* quaternions are ``(w, x, y, z)``, rotating the body frame into the world frame;
* motor order (index ``0..3``): front-right, back-right, back-left, front-left, i.e. clockwise seen
  from above starting at the front-right arm; a driver maps its own motor numbering to this order;
* thrust fractions are linear in force (``1`` = ``max_thrust_per_motor_n`` per motor), not PWM duty:
  a driver applies its own thrust curve;
* a quantity a backend cannot measure is ``nan``, never a made-up zero.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, Mapping, Protocol, Union, runtime_checkable

import numpy as np

from robot_rl.backends.base import Backend, CameraSpec
# Spec checks shared with the car contract (they belong in a shared module; see car.py).
from robot_rl.backends.checks import check_cameras, check_range, frozen_array

FAMILY = "quadrotor"
STANDARD_GRAVITY_M_S2 = 9.80665
MOTOR_THRUSTS = "motor_thrusts"
THRUST_RATES = "thrust_rates"
ATTITUDE = "attitude"
VELOCITY = "velocity"
QUAD_COMMAND_LEVELS = (MOTOR_THRUSTS, THRUST_RATES, ATTITUDE, VELOCITY)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class QuadSpec:
    """What a quadrotor backend reads and accepts, known without a connected device.

    Attributes:
        mass_kg: take-off mass.
        arm_length_m: distance from the centre of mass to each motor axis.
        inertia_kg_m2: ``(3,)`` principal moments of inertia about body x, y, z (FLU).
        max_thrust_per_motor_n: the thrust of one motor at full command.
        motor_time_constant_s: first-order motor response time (``0`` = instantaneous).
        command_levels: the command levels it accepts, names from :data:`QUAD_COMMAND_LEVELS`.
        max_tilt_rad: largest angle between body z and world z an attitude command may ask for,
            in ``(0, pi/2)``.
        max_body_rate_rad_s: ``(3,)`` body-rate limits about body x, y, z (FLU); index 2 also
            limits every commanded yaw rate.
        max_speed_m_s: limit on the norm of a commanded world velocity.
        geofence_low_m, geofence_high_m: ``(3,)`` corners of the allowed box, world frame, ENU.
        cameras: the cameras whose frames are part of the observation, by name.
        render_cameras: every camera ``render()`` can produce; empty means ``cameras``.
        watchdog_s: a real backend calls ``stop()`` when no fresh command came for this long.
        min_battery_v: a real backend calls ``stop()`` (lands) below this voltage (``None`` = no
            rule); :func:`clip_quad_command` does not act on it (cutting thrust in the air is unsafe).
    """

    mass_kg: float
    arm_length_m: float
    inertia_kg_m2: np.ndarray
    max_thrust_per_motor_n: float
    motor_time_constant_s: float
    command_levels: tuple[str, ...]
    max_tilt_rad: float
    max_body_rate_rad_s: np.ndarray
    max_speed_m_s: float
    geofence_low_m: np.ndarray
    geofence_high_m: np.ndarray
    cameras: Mapping[str, CameraSpec] = dataclasses.field(default_factory=dict)
    render_cameras: tuple[str, ...] = ()
    watchdog_s: float = 0.2
    min_battery_v: float | None = None

    def __post_init__(self) -> None:
        for name in ("mass_kg", "arm_length_m", "max_thrust_per_motor_n", "max_speed_m_s", "watchdog_s"):
            check_range(self, name, low=0.0, low_open=True)
        check_range(self, "motor_time_constant_s", low=0.0)
        check_range(self, "max_tilt_rad", low=0.0, high=math.pi / 2, low_open=True, high_open=True)
        if self.min_battery_v is not None:
            check_range(self, "min_battery_v", low=0.0, low_open=True)
        for name in ("inertia_kg_m2", "max_body_rate_rad_s", "geofence_low_m", "geofence_high_m"):
            object.__setattr__(self, name, _finite_array("QuadSpec", name, getattr(self, name), (3,)))
        for name in ("inertia_kg_m2", "max_body_rate_rad_s"):
            if not np.all(getattr(self, name) > 0):
                raise ValueError(f"QuadSpec.{name} must be > 0 on every axis, got {getattr(self, name)}")
        if not np.all(self.geofence_low_m < self.geofence_high_m):
            raise ValueError(f"QuadSpec.geofence_low_m must be below geofence_high_m on every axis, "
                             f"got {self.geofence_low_m} and {self.geofence_high_m}")
        if self.hover_thrust_frac >= 1.0:
            raise ValueError(f"QuadSpec cannot hover: 4 x max_thrust_per_motor_n = {self.max_total_thrust_n} N "
                             f"is not above its weight {self.mass_kg * STANDARD_GRAVITY_M_S2:.4g} N")
        levels = tuple(self.command_levels)
        if not levels or len(set(levels)) != len(levels) or not set(levels) <= set(QUAD_COMMAND_LEVELS):
            raise ValueError(f"QuadSpec.command_levels must be distinct names from {QUAD_COMMAND_LEVELS}, "
                             f"got {levels}")
        object.__setattr__(self, "command_levels", levels)
        cameras, render = check_cameras("QuadSpec", self.cameras, self.render_cameras)
        object.__setattr__(self, "cameras", cameras)
        object.__setattr__(self, "render_cameras", render)

    @property
    def max_total_thrust_n(self) -> float:
        """All four motors at full command [N]."""
        return 4.0 * self.max_thrust_per_motor_n

    @property
    def hover_thrust_frac(self) -> float:
        """The collective thrust fraction that balances gravity, in ``(0, 1)`` for a valid spec."""
        return self.mass_kg * STANDARD_GRAVITY_M_S2 / self.max_total_thrust_n


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class QuadState:
    """One reading of a quadrotor (arrays are float64 copies, read-only).

    Attributes:
        time_s: backend clock (sim time, or monotonic time on a robot).
        pos_m: ``(3,)`` centre of mass, world frame, ENU.
        quat_wxyz: ``(4,)`` attitude, rotating body (FLU) into world (ENU).
        vel_m_s: ``(3,)`` linear velocity, world frame, ENU.
        body_rates_rad_s: ``(3,)`` angular velocity, body frame, FLU.
        armed: the motors may spin (``False`` until the first command, and after ``stop()`` lands).
        motor_speeds_rad_s: ``(4,)`` rotor speeds in motor order; ``nan`` where unknown.
        battery_v: battery voltage (``nan`` when unknown, e.g. in a simulator).
    """

    time_s: float
    pos_m: np.ndarray
    quat_wxyz: np.ndarray
    vel_m_s: np.ndarray
    body_rates_rad_s: np.ndarray
    armed: bool
    motor_speeds_rad_s: np.ndarray = dataclasses.field(default_factory=lambda: np.full(4, np.nan))
    battery_v: float = math.nan

    def __post_init__(self) -> None:
        for name, shape in (("pos_m", (3,)), ("quat_wxyz", (4,)), ("vel_m_s", (3,)), ("body_rates_rad_s", (3,)),
                            ("motor_speeds_rad_s", (4,))):
            object.__setattr__(self, name, frozen_array("QuadState", name, getattr(self, name), shape))
        object.__setattr__(self, "armed", bool(self.armed))


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class MotorThrusts:
    """Per-motor thrust, level ``"motor_thrusts"``.

    Attributes:
        thrust_frac: ``(4,)`` in motor order, fraction of ``max_thrust_per_motor_n``, range ``[0, 1]``.
    """

    level: ClassVar[str] = MOTOR_THRUSTS
    thrust_frac: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "thrust_frac", _finite_array("MotorThrusts", "thrust_frac", self.thrust_frac, (4,)))


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class ThrustRates:
    """Collective thrust plus body rates, level ``"thrust_rates"``.

    Attributes:
        collective_thrust_frac: total thrust as a fraction of ``4 * max_thrust_per_motor_n``, ``[0, 1]``.
        body_rates_rad_s: ``(3,)`` angular velocity target, body frame, FLU.
    """

    level: ClassVar[str] = THRUST_RATES
    collective_thrust_frac: float
    body_rates_rad_s: np.ndarray

    def __post_init__(self) -> None:
        _check_finite("ThrustRates", "collective_thrust_frac", self.collective_thrust_frac)
        object.__setattr__(self, "collective_thrust_frac", float(self.collective_thrust_frac))
        object.__setattr__(self, "body_rates_rad_s",
                           _finite_array("ThrustRates", "body_rates_rad_s", self.body_rates_rad_s, (3,)))


@dataclasses.dataclass(frozen=True, kw_only=True)
class AttitudeCommand:
    """Collective thrust, roll and pitch, and a yaw rate, level ``"attitude"``.

    Roll and pitch are the intrinsic Z-Y-X (yaw, pitch, roll) Euler angles of the body relative to
    the gravity-aligned heading frame, right-handed about body FLU axes: positive roll lowers the
    right side (accelerates toward body -y), positive pitch lowers the nose (accelerates forward).

    Attributes:
        collective_thrust_frac: total thrust as a fraction of ``4 * max_thrust_per_motor_n``, ``[0, 1]``.
        roll_rad, pitch_rad: attitude targets; their tilt is limited to ``max_tilt_rad``.
        yaw_rate_rad_s: yaw rate target about body z.
    """

    level: ClassVar[str] = ATTITUDE
    collective_thrust_frac: float
    roll_rad: float
    pitch_rad: float
    yaw_rate_rad_s: float

    def __post_init__(self) -> None:
        for name in ("collective_thrust_frac", "roll_rad", "pitch_rad", "yaw_rate_rad_s"):
            _check_finite("AttitudeCommand", name, getattr(self, name))
            object.__setattr__(self, name, float(getattr(self, name)))


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class VelocityCommand:
    """A world velocity and a yaw rate, level ``"velocity"`` (the backend's controller holds them).

    Attributes:
        vel_m_s: ``(3,)`` velocity target, world frame, ENU.
        yaw_rate_rad_s: yaw rate target about world z (counter-clockwise seen from above).
    """

    level: ClassVar[str] = VELOCITY
    vel_m_s: np.ndarray
    yaw_rate_rad_s: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "vel_m_s", _finite_array("VelocityCommand", "vel_m_s", self.vel_m_s, (3,)))
        _check_finite("VelocityCommand", "yaw_rate_rad_s", self.yaw_rate_rad_s)
        object.__setattr__(self, "yaw_rate_rad_s", float(self.yaw_rate_rad_s))


QuadCommand = Union[MotorThrusts, ThrustRates, AttitudeCommand, VelocityCommand]


@runtime_checkable
class QuadBackend(Backend, Protocol):
    """A quadrotor, simulated or real (``family == "quadrotor"``).

    ``connect()`` leaves it disarmed; the first ``command()`` arms it (a driver that needs an
    arming request sends it then) and ``read_state().armed`` says so. ``command()`` applies
    :func:`clip_quad_command` and returns the command it really sent, at the same level.
    ``stop()`` lands and disarms (on the ground: cuts the motors). A real backend calls ``stop()``
    itself when no fresh command came for ``spec.watchdog_s``
    (:class:`robot_rl.backends.watchdog.CommandWatchdog`), when ``battery_v`` falls below
    ``spec.min_battery_v``, and when it leaves the geofence while flying below the velocity level
    (:func:`inside_geofence`).
    """

    family: str

    @property
    def spec(self) -> QuadSpec: ...

    def read_state(self) -> QuadState: ...

    def command(self, command: QuadCommand) -> QuadCommand: ...


@runtime_checkable
class QuadSceneControl(Protocol):
    """Simulators can also set the vehicle's state (tasks use this for their reset distribution)."""

    def set_state(self, pos_m: np.ndarray, quat_wxyz: np.ndarray, vel_m_s: np.ndarray,
                  body_rates_rad_s: np.ndarray) -> None:
        """Place it: ``pos_m``, ``vel_m_s`` world frame (ENU), ``body_rates_rad_s`` body frame (FLU)."""
        ...


def inside_geofence(spec: QuadSpec, pos_m: np.ndarray) -> bool:
    """Whether ``pos_m`` (world frame, ENU) is inside the fence box, edges included; ``nan`` is not."""
    pos = np.asarray(pos_m, dtype=np.float64)
    return bool(np.all(pos >= spec.geofence_low_m) and np.all(pos <= spec.geofence_high_m))


def clip_quad_command(command: QuadCommand, spec: QuadSpec, state: QuadState) -> QuadCommand:
    """Apply a quadrotor spec's safety limits to a command; shared by every quadrotor backend.

    The command's level must be in ``spec.command_levels``. Per level:

    * motor thrusts and collective thrust: clipped to ``[0, 1]``;
    * body rates: each clipped to ``+-max_body_rate_rad_s``; every yaw rate to ``+-max_body_rate_rad_s[2]``;
    * attitude: roll and pitch each to ``+-max_tilt_rad``, then, if the tilt (the angle between
      body z and world z, ``arccos(cos roll * cos pitch)``) still exceeds ``max_tilt_rad``, scaled
      back to it keeping the tilt's direction;
    * velocity: scaled to norm ``<= max_speed_m_s``, then the geofence rule: on each axis where
      ``state.pos_m`` is below ``geofence_low_m`` a negative velocity component is zeroed, and above
      ``geofence_high_m`` a positive one, so outside the fence a command can only head back in or
      along it (an axis whose position is ``nan`` is left alone).

    Commands below the velocity level cannot be fenced per command; see :class:`QuadBackend`.
    """
    if command.level not in spec.command_levels:
        raise ValueError(f"quadrotor backend accepts {spec.command_levels} commands, got a {command.level!r} command")
    if isinstance(command, MotorThrusts):
        return MotorThrusts(thrust_frac=np.clip(command.thrust_frac, 0.0, 1.0))
    if isinstance(command, ThrustRates):
        return ThrustRates(collective_thrust_frac=_clip_unit(command.collective_thrust_frac),
                           body_rates_rad_s=np.clip(command.body_rates_rad_s, -spec.max_body_rate_rad_s,
                                                    spec.max_body_rate_rad_s))
    if isinstance(command, AttitudeCommand):
        roll_rad, pitch_rad = _limit_tilt(command.roll_rad, command.pitch_rad, spec.max_tilt_rad)
        return AttitudeCommand(collective_thrust_frac=_clip_unit(command.collective_thrust_frac), roll_rad=roll_rad,
                               pitch_rad=pitch_rad, yaw_rate_rad_s=_clip_yaw_rate(command.yaw_rate_rad_s, spec))
    if isinstance(command, VelocityCommand):
        return VelocityCommand(vel_m_s=_fence_velocity(command.vel_m_s, spec, state),
                               yaw_rate_rad_s=_clip_yaw_rate(command.yaw_rate_rad_s, spec))
    raise TypeError(f"not a quadrotor command: {command!r}")


def _limit_tilt(roll_rad: float, pitch_rad: float, max_tilt_rad: float) -> tuple[float, float]:
    """Roll and pitch with a tilt of at most ``max_tilt_rad``, the tilt's direction kept."""
    roll_rad = float(np.clip(roll_rad, -max_tilt_rad, max_tilt_rad))
    pitch_rad = float(np.clip(pitch_rad, -max_tilt_rad, max_tilt_rad))
    # Body z in the heading frame is (cos r sin p, -sin r, cos r cos p); its horizontal part has norm sin(tilt).
    z_x, z_y = math.cos(roll_rad) * math.sin(pitch_rad), -math.sin(roll_rad)
    sin_tilt = math.hypot(z_x, z_y)
    if sin_tilt <= math.sin(max_tilt_rad):
        return roll_rad, pitch_rad
    scale = math.sin(max_tilt_rad) / sin_tilt
    z_x, z_y = z_x * scale, z_y * scale
    return -math.asin(z_y), math.atan2(z_x, math.cos(max_tilt_rad))


def _fence_velocity(vel_m_s: np.ndarray, spec: QuadSpec, state: QuadState) -> np.ndarray:
    speed = float(np.linalg.norm(vel_m_s))
    vel = vel_m_s * (spec.max_speed_m_s / speed) if speed > spec.max_speed_m_s else vel_m_s.copy()
    outward = ((state.pos_m < spec.geofence_low_m) & (vel < 0)) | ((state.pos_m > spec.geofence_high_m) & (vel > 0))
    vel[outward] = 0.0
    return vel


def _clip_unit(value: float) -> float:
    return float(np.clip(value, 0.0, 1.0))


def _clip_yaw_rate(yaw_rate_rad_s: float, spec: QuadSpec) -> float:
    limit = float(spec.max_body_rate_rad_s[2])
    return float(np.clip(yaw_rate_rad_s, -limit, limit))


def _check_finite(owner: str, name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{owner}.{name} must be finite, got {value}")


def _finite_array(owner: str, name: str, value: object, shape: tuple[int, ...]) -> np.ndarray:
    array = frozen_array(owner, name, value, shape)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{owner}.{name} must be finite, got {array}")
    return array
