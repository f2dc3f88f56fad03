"""The car family contract (``family = "car"``): a steered ground vehicle, simulated or real.

What a car backend declares (:class:`CarSpec`), reads (:class:`CarState`) and accepts
(:class:`CarCommand`), and the safety limits every car backend applies before sending
(:func:`clip_car_command`), so a simulator and the real car clip identically. No physics, no drivers.

Conventions for every quantity below:

* lengths in metres, angles in radians, time in seconds, battery in volts;
* "world frame" is the track/world frame: x, y on the ground plane, z up (right-handed, ENU-like);
  ``yaw_rad`` is the heading of the body x axis, counter-clockwise from world x, in ``(-pi, pi]``;
* "body frame, FLU" is fixed to the car at the rear axle centre: x forward, y left, z up;
* ``steering_rad`` is the bicycle-model front-wheel angle, positive turns left (counter-clockwise);
* a quantity a backend cannot measure is ``nan``, never a made-up zero.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Protocol, runtime_checkable

import numpy as np

from robot_rl.backends.base import Backend, CameraSpec
from robot_rl.backends.checks import check_cameras, check_range, frozen_array

FAMILY = "car"
SPEED = "speed"
THROTTLE = "throttle"
CAR_COMMAND_MODES = (SPEED, THROTTLE)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CarSpec:
    """What a car backend reads and accepts, known without a connected device.

    Attributes:
        wheelbase_m: front-to-rear axle distance.
        track_width_m: left-to-right wheel centre distance.
        max_steering_rad: steering angle limit, symmetric, in ``(0, pi/2)``.
        max_steering_rate_rad_s: steering slew limit.
        max_speed_m_s: forward speed limit (body x).
        max_reverse_speed_m_s: reverse speed limit, a magnitude (``0`` = no reverse).
        max_accel_m_s2: limit on the change of the speed set-point per second (speed mode).
        command_modes: which :class:`CarCommand` drive fields it accepts: ``"speed"`` (a
            set-point in m/s the backend's speed controller tracks) and/or ``"throttle"``
            (normalized drive effort in ``[-1, 1]``).
        cameras: the cameras whose frames are part of the observation, by name.
        render_cameras: every camera ``render()`` can produce; empty means ``cameras``.
        max_throttle: throttle magnitude limit, in ``(0, 1]`` (throttle mode).
        max_throttle_rate_per_s: throttle slew limit in full-scale units per second
            (``inf`` = none).
        watchdog_s: a real backend calls ``stop()`` when no fresh command came for this long.
        min_battery_v: below this battery voltage the drive is zeroed (``None`` = no rule).
    """

    wheelbase_m: float
    track_width_m: float
    max_steering_rad: float
    max_steering_rate_rad_s: float
    max_speed_m_s: float
    max_reverse_speed_m_s: float
    max_accel_m_s2: float
    command_modes: tuple[str, ...]
    cameras: Mapping[str, CameraSpec] = dataclasses.field(default_factory=dict)
    render_cameras: tuple[str, ...] = ()
    max_throttle: float = 1.0
    max_throttle_rate_per_s: float = math.inf
    watchdog_s: float = 0.2
    min_battery_v: float | None = None

    def __post_init__(self) -> None:
        for name in ("wheelbase_m", "track_width_m", "max_steering_rate_rad_s", "max_speed_m_s",
                     "max_accel_m_s2", "max_throttle_rate_per_s", "watchdog_s"):
            check_range(self, name, low=0.0, low_open=True)
        check_range(self, "max_steering_rad", low=0.0, high=math.pi / 2, low_open=True, high_open=True)
        check_range(self, "max_reverse_speed_m_s", low=0.0)
        check_range(self, "max_throttle", low=0.0, high=1.0, low_open=True)
        if self.min_battery_v is not None:
            check_range(self, "min_battery_v", low=0.0, low_open=True)
        modes = tuple(self.command_modes)
        if not modes or len(set(modes)) != len(modes) or not set(modes) <= set(CAR_COMMAND_MODES):
            raise ValueError(f"CarSpec.command_modes must be distinct names from {CAR_COMMAND_MODES}, got {modes}")
        object.__setattr__(self, "command_modes", modes)
        cameras, render = check_cameras("CarSpec", self.cameras, self.render_cameras)
        object.__setattr__(self, "cameras", cameras)
        object.__setattr__(self, "render_cameras", render)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class CarState:
    """One reading of a car (arrays are float64 copies, read-only).

    Attributes:
        time_s: backend clock (sim time, or monotonic time on a robot).
        pos_m: ``(2,)`` rear axle centre ``(x, y)``, world frame (``nan`` without localization).
        yaw_rad: heading, world frame, counter-clockwise from world x.
        vel_body_m_s: ``(2,)`` velocity ``(vx forward, vy left)``, body frame, FLU.
        yaw_rate_rad_s: angular velocity about body z (counter-clockwise positive).
        wheel_speed_m_s: mean surface speed of the driven wheels (wheel angular speed times
            wheel radius), positive forward; a VESC reports it from the motor ERPM.
        steering_rad: measured front-wheel angle, or the last commanded one; always finite.
        imu_accel_m_s2: ``(3,)`` specific force as an accelerometer measures it, body frame, FLU
            (about ``(0, 0, +9.81)`` at rest on flat ground).
        imu_gyro_rad_s: ``(3,)`` angular velocity, body frame, FLU.
        battery_v: battery voltage (``nan`` when unknown, e.g. in a simulator).
    """

    time_s: float
    pos_m: np.ndarray
    yaw_rad: float
    vel_body_m_s: np.ndarray
    yaw_rate_rad_s: float
    wheel_speed_m_s: float
    steering_rad: float
    imu_accel_m_s2: np.ndarray
    imu_gyro_rad_s: np.ndarray
    battery_v: float = math.nan

    def __post_init__(self) -> None:
        for name, shape in (("pos_m", (2,)), ("vel_body_m_s", (2,)), ("imu_accel_m_s2", (3,)),
                            ("imu_gyro_rad_s", (3,))):
            object.__setattr__(self, name, frozen_array("CarState", name, getattr(self, name), shape))
        if not math.isfinite(self.steering_rad):
            raise ValueError(f"CarState.steering_rad must be finite (the last commanded angle if not measured), "
                             f"got {self.steering_rad}")

    @property
    def forward_speed_m_s(self) -> float:
        """Measured forward speed: body ``vx``, else the wheel speed, else ``nan``."""
        vx = float(self.vel_body_m_s[0])
        return vx if math.isfinite(vx) else float(self.wheel_speed_m_s)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CarCommand:
    """A steering angle plus exactly one drive field.

    Attributes:
        steering_rad: front-wheel angle target, positive left.
        speed_m_s: forward speed set-point, body x (negative = reverse); ``"speed"`` mode.
        throttle: normalized drive effort, full scale ``[-1, 1]`` (``+1`` full forward drive, ``-1``
            full reverse drive or brake, as the backend's motor controller defines it); ``"throttle"`` mode.

    Construction checks the form only (finite numbers, one drive field); every range, the normalized
    throttle's included, is applied by :func:`clip_car_command`, so a policy's ``1 + 1e-7`` is clipped,
    not an error.
    """

    steering_rad: float
    speed_m_s: float | None = None
    throttle: float | None = None

    def __post_init__(self) -> None:
        if (self.speed_m_s is None) == (self.throttle is None):
            raise ValueError(f"CarCommand needs exactly one of speed_m_s or throttle, "
                             f"got speed_m_s={self.speed_m_s}, throttle={self.throttle}")
        for name in ("steering_rad", "speed_m_s", "throttle"):
            value = getattr(self, name)
            if value is not None:
                if not math.isfinite(value):
                    raise ValueError(f"CarCommand.{name} must be finite, got {value}")
                object.__setattr__(self, name, float(value))

    @property
    def mode(self) -> str:
        """``"speed"`` or ``"throttle"``: which drive field is set."""
        return SPEED if self.speed_m_s is not None else THROTTLE


@runtime_checkable
class CarBackend(Backend, Protocol):
    """A steered car, simulated or real (``family == "car"``).

    ``command()`` applies :func:`clip_car_command` (with the previous sent command and the control
    period) and returns the command it really sent. ``stop()`` brakes to standstill and holds the
    steering; the next ``command()`` drives again. A real backend calls ``stop()`` itself when no
    fresh command came for ``spec.watchdog_s`` (:class:`robot_rl.backends.watchdog.CommandWatchdog`).
    """

    family: str

    @property
    def spec(self) -> CarSpec: ...

    def read_state(self) -> CarState: ...

    def command(self, command: CarCommand) -> CarCommand: ...


@runtime_checkable
class CarSceneControl(Protocol):
    """Simulators can also place the car (tasks use this for their reset distribution)."""

    def set_pose(self, pos_m: np.ndarray, yaw_rad: float) -> None:
        """Put the car at ``pos_m`` ``(2,)`` [m] and ``yaw_rad``, world frame, at rest, steering 0."""
        ...


def clip_car_command(
    command: CarCommand, spec: CarSpec, state: CarState, previous: CarCommand | None, dt_s: float
) -> CarCommand:
    """Apply a car spec's safety limits to a command; shared by every car backend.

    Args:
        command: the wanted command; its mode must be in ``spec.command_modes``.
        spec: the limits.
        state: the newest reading (measured speed and steering).
        previous: the command sent one control period ago, or ``None`` for the first one.
        dt_s: the control period [s] the rate limits are measured over, ``> 0``.

    Rules, in order:

    * steering: slewed by at most ``max_steering_rate_rad_s * dt_s`` from the previous command's
      angle (else ``state.steering_rad``), then clipped to ``+-max_steering_rad`` (the range wins);
    * speed mode: the set-point moves at most ``max_accel_m_s2 * dt_s`` from the previous speed
      command (else the measured forward speed; ``0`` if unknown), then is clipped to
      ``[-max_reverse_speed_m_s, max_speed_m_s]`` (the range wins over the ramp);
    * throttle mode: slewed by ``max_throttle_rate_per_s * dt_s`` from the previous throttle
      (else ``0``), clipped to ``+-max_throttle``; no forward drive at or above ``max_speed_m_s``
      measured, no reverse drive at or beyond ``-max_reverse_speed_m_s`` (skipped while the speed is
      unknown);
    * low battery (``battery_v < min_battery_v``, known): the drive (speed or throttle) is ``0``.
    """
    if not isinstance(command, CarCommand):
        raise ValueError(f"a car backend takes a CarCommand, got {type(command).__name__}: {command!r}")
    if command.mode not in spec.command_modes:
        raise ValueError(f"car backend accepts {spec.command_modes} commands, got a {command.mode!r} command")
    if not dt_s > 0:
        raise ValueError(f"clip_car_command: dt_s must be > 0, got {dt_s}")
    steering = _clip_steering(command.steering_rad, spec, state, previous, dt_s)
    low_battery = spec.min_battery_v is not None and state.battery_v < spec.min_battery_v
    if command.mode == SPEED:
        speed = 0.0 if low_battery else _clip_speed(command.speed_m_s, spec, state, previous, dt_s)
        return CarCommand(steering_rad=steering, speed_m_s=speed)
    throttle = 0.0 if low_battery else _clip_throttle(command.throttle, spec, state, previous, dt_s)
    return CarCommand(steering_rad=steering, throttle=throttle)


def _clip_steering(steering_rad: float, spec: CarSpec, state: CarState, previous: CarCommand | None,
                   dt_s: float) -> float:
    reference = previous.steering_rad if previous is not None else state.steering_rad
    return float(clip_steering_arrays(steering_rad, reference, spec.max_steering_rate_rad_s * dt_s,
                                      spec.max_steering_rad, np))


def _clip_speed(speed_m_s: float, spec: CarSpec, state: CarState, previous: CarCommand | None,
                dt_s: float) -> float:
    if previous is not None and previous.speed_m_s is not None:
        reference = previous.speed_m_s
    else:
        measured = state.forward_speed_m_s
        reference = measured if math.isfinite(measured) else 0.0
    return float(clip_speed_arrays(speed_m_s, reference, spec.max_accel_m_s2 * dt_s, spec.max_reverse_speed_m_s,
                                   spec.max_speed_m_s, np))


def _clip_throttle(throttle: float, spec: CarSpec, state: CarState, previous: CarCommand | None,
                   dt_s: float) -> float:
    reference = previous.throttle if previous is not None and previous.throttle is not None else 0.0
    return float(clip_throttle_arrays(throttle, reference, spec.max_throttle_rate_per_s * dt_s, spec.max_throttle,
                                      state.forward_speed_m_s, spec.max_speed_m_s, spec.max_reverse_speed_m_s, np))


# ----------------------------------------------------------------------------- the rules as array functions
# The limits above, written once over ``xp`` arrays (``numpy`` or ``jax.numpy``, any leading batch shape), so
# a batched simulator (sim/car/jax_env.py) clips a batch of commands exactly as clip_car_command clips one.
def clip_steering_arrays(steering_rad, reference_rad, max_step_rad, max_steering_rad, xp):
    """Steering slewed at most ``max_step_rad`` from ``reference_rad``, then within ``+-max_steering_rad``."""
    steering = xp.clip(steering_rad, reference_rad - max_step_rad, reference_rad + max_step_rad)
    return xp.clip(steering, -max_steering_rad, max_steering_rad)


def clip_speed_arrays(speed_m_s, reference_m_s, max_step_m_s, max_reverse_speed_m_s, max_speed_m_s, xp):
    """Speed set-point ramped at most ``max_step_m_s`` from ``reference_m_s``, then within the range."""
    speed = xp.clip(speed_m_s, reference_m_s - max_step_m_s, reference_m_s + max_step_m_s)
    return xp.clip(speed, -max_reverse_speed_m_s, max_speed_m_s)


def clip_throttle_arrays(throttle, reference, max_step, max_throttle, measured_speed_m_s, max_speed_m_s,
                         max_reverse_speed_m_s, xp):
    """Throttle slewed and clipped; no forward drive at/above ``max_speed_m_s`` measured, no reverse drive
    at/beyond ``-max_reverse_speed_m_s`` (a ``nan`` speed compares false: no rule)."""
    throttle = xp.clip(throttle, reference - max_step, reference + max_step)
    throttle = xp.clip(throttle, -max_throttle, max_throttle)
    throttle = xp.where(measured_speed_m_s >= max_speed_m_s, xp.minimum(throttle, 0.0), throttle)
    return xp.where(measured_speed_m_s <= -max_reverse_speed_m_s, xp.maximum(throttle, 0.0), throttle)
