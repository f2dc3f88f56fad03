"""A VESC car's settings: serial link, drivetrain and servo calibration, limits (:class:`VescConfig`),
read from the rig's TOML file (:func:`load_vesc_rig`): device paths live there, never in code.

Example rig file (other tables belong to other drivers and are ignored here)::

    [car.vesc]
    port = "/dev/serial/by-id/usb-STMicroelectronics_ChibiOS_RT_Virtual_COM_Port_304-if00"
    io_hz = 100                  # serial I/O + keep-alive rate
    wheel_radius_m = 0.0508
    gear_ratio = 11.86           # motor turns per wheel turn (spur / pinion x differential)
    motor_pole_pairs = 2
    servo_center = 0.5304        # servo position for straight wheels
    servo_per_rad = -1.2135      # servo units per radian of (left-positive) steering
    servo_min = 0.1              # the servo positions at the steering's mechanical stops
    servo_max = 0.95
    max_steering_rad = 0.3
    max_speed_m_s = 2.0
    min_battery_v = 9.9          # 3S LiPo, 3.3 V per cell
    max_battery_v = 13.0         # a full 3S pack is 12.6 V: more means the wrong battery

Every field of :class:`VescConfig` may appear; ``robot_rl.make(..., backend="vesc", rig="car.toml")``
reads the file and options given there win over it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from robot_rl.backends.car import CAR_COMMAND_MODES, CarSpec

THROTTLE_CONTROLS = ("duty", "current")


class VescRigError(ValueError):
    """A rig file's ``[car.vesc]`` table is malformed; the message names the file and the field."""


@dataclasses.dataclass(frozen=True)
class VescConfig:
    """Attributes (units in the names):
        port: the VESC's serial device (``/dev/ttyACM0``, a ``/dev/serial/by-id/...`` path); from the rig file.
        baud: serial baud rate (a VESC on USB ignores it).
        io_hz: rate of the serial I/O thread: commands, keep-alive and telemetry request every
            period (>= 10 Hz: a keep-alive at least every 100 ms).
        reply_timeout_s: how long one I/O period waits for the telemetry reply (None: half a period).
        connect_timeout_s: ``connect()`` fails when the VESC has not answered by then.
        link_timeout_s: no telemetry for this long = the VESC stopped answering: safe state, error.
        wheel_radius_m, gear_ratio, motor_pole_pairs: wheel speed <-> ERPM
            (``gear_ratio`` = motor turns per wheel turn).
        servo_center, servo_per_rad: servo position = ``servo_center + servo_per_rad * steering_rad``
            (steering positive left).
        servo_min, servo_max: the servo positions never sent beyond (mechanical stops).
        wheelbase_m ... max_throttle_rate_per_s, watchdog_s, min_battery_v: the car's
            :class:`~robot_rl.backends.car.CarSpec` (the limits every command is clipped to).
        cutout_hysteresis_v: after a low-voltage cut-out the car drives again only once the battery
            is this far above ``min_battery_v``.
        max_battery_v: above this battery voltage the motor is released (``SET_CURRENT 0``: no
            regenerative braking that would raise it further) until it is ``cutout_hysteresis_v`` below
            (``None``: only the VESC's own ``OVER_VOLTAGE`` fault).
        throttle_control: throttle mode drives ``"duty"`` (``SET_DUTY``, throttle x ``max_duty``) or
            ``"current"`` (``SET_CURRENT``, throttle x ``max_current_a``).
        max_duty, max_current_a: full-scale throttle.
        brake_current_a: ``SET_CURRENT_BRAKE`` current of a stop, the watchdog, a cut-out and of a
            zero speed or throttle.
        throttle_deadband: a throttle of at most this magnitude brakes.
        rig: the rig file these settings came from (set by :func:`load_vesc_rig`; the backend's
            factory reads it when given as an option).
    """

    port: str | None = None
    baud: int = 115200
    io_hz: float = 100.0
    reply_timeout_s: float | None = None
    connect_timeout_s: float = 2.0
    link_timeout_s: float = 0.5
    wheel_radius_m: float = 0.05
    gear_ratio: float = 12.0
    motor_pole_pairs: int = 2
    servo_center: float = 0.5
    servo_per_rad: float = -1.0
    servo_min: float = 0.15
    servo_max: float = 0.85
    wheelbase_m: float = 0.33
    track_width_m: float = 0.27
    max_steering_rad: float = 0.34
    max_steering_rate_rad_s: float = 3.2
    max_speed_m_s: float = 3.0
    max_reverse_speed_m_s: float = 1.0
    max_accel_m_s2: float = 3.0
    max_throttle: float = 1.0
    max_throttle_rate_per_s: float = 5.0
    watchdog_s: float = 0.2
    min_battery_v: float | None = 9.9
    cutout_hysteresis_v: float = 0.3
    max_battery_v: float | None = 13.0
    throttle_control: str = "duty"
    max_duty: float = 0.3
    max_current_a: float = 20.0
    brake_current_a: float = 10.0
    throttle_deadband: float = 0.02
    rig: str | None = None

    def __post_init__(self) -> None:
        _check_numbers(self)
        if not 10.0 <= self.io_hz <= 1000.0:
            raise ValueError(f"VescConfig.io_hz must be in [10, 1000] (a keep-alive at least every 100 ms), "
                             f"got {self.io_hz}")
        if not self.watchdog_s > 1.0 / self.io_hz:
            raise ValueError(f"VescConfig.watchdog_s ({self.watchdog_s}) must exceed one I/O period ({1 / self.io_hz})")
        if self.port is not None and (not isinstance(self.port, str) or not self.port):
            raise ValueError(f"VescConfig.port must be a device path, got {self.port!r}")
        if self.throttle_control not in THROTTLE_CONTROLS:
            raise ValueError(f"VescConfig.throttle_control must be one of {THROTTLE_CONTROLS}, "
                             f"got {self.throttle_control!r}")
        if not 0.0 <= self.servo_min < self.servo_max <= 1.0:
            raise ValueError(f"VescConfig: need 0 <= servo_min < servo_max <= 1, got [{self.servo_min}, {self.servo_max}]")
        reach = abs(self.servo_per_rad) * self.max_steering_rad
        if not (self.servo_min <= self.servo_center - reach and self.servo_center + reach <= self.servo_max):
            raise ValueError(f"VescConfig: full steering (+-{self.max_steering_rad} rad) needs servo positions "
                             f"{self.servo_center - reach:.3f}..{self.servo_center + reach:.3f}, outside "
                             f"[servo_min, servo_max] = [{self.servo_min}, {self.servo_max}]: lower max_steering_rad")
        if not 0.0 < self.max_duty <= 0.95:
            raise ValueError(f"VescConfig.max_duty must be in (0, 0.95], got {self.max_duty}")
        if (self.max_battery_v is not None and self.min_battery_v is not None
                and not self.max_battery_v > self.min_battery_v + 2 * self.cutout_hysteresis_v):
            raise ValueError(f"VescConfig: max_battery_v ({self.max_battery_v}) must exceed min_battery_v "
                             f"({self.min_battery_v}) by more than twice cutout_hysteresis_v ({self.cutout_hysteresis_v})")
        top_erpm = max(self.max_speed_m_s, self.max_reverse_speed_m_s) * self.erpm_per_m_s
        if not top_erpm < 2**31:
            raise ValueError(f"VescConfig: max_speed_m_s is {top_erpm:.3g} ERPM with this drivetrain, beyond "
                             f"COMM_SET_RPM's int32")
        self.spec()  # CarSpec checks the limits

    @property
    def io_period_s(self) -> float:
        return 1.0 / self.io_hz

    @property
    def reply_wait_s(self) -> float:
        """How long one I/O period waits for the telemetry reply."""
        return 0.5 * self.io_period_s if self.reply_timeout_s is None else self.reply_timeout_s

    @property
    def erpm_per_m_s(self) -> float:
        """Electrical RPM per m/s of wheel surface speed (F1TENTH's ``speed_to_erpm_gain``)."""
        return self.motor_pole_pairs * self.gear_ratio * 60.0 / (2.0 * math.pi * self.wheel_radius_m)

    def spec(self) -> CarSpec:
        """The car contract's spec (no cameras; both command modes)."""
        return CarSpec(wheelbase_m=self.wheelbase_m, track_width_m=self.track_width_m,
                       max_steering_rad=self.max_steering_rad, max_steering_rate_rad_s=self.max_steering_rate_rad_s,
                       max_speed_m_s=self.max_speed_m_s, max_reverse_speed_m_s=self.max_reverse_speed_m_s,
                       max_accel_m_s2=self.max_accel_m_s2, command_modes=CAR_COMMAND_MODES,
                       max_throttle=self.max_throttle, max_throttle_rate_per_s=self.max_throttle_rate_per_s,
                       watchdog_s=self.watchdog_s, min_battery_v=self.min_battery_v)


_MAY_BE_ZERO = ("max_reverse_speed_m_s", "cutout_hysteresis_v", "throttle_deadband", "servo_min")
_SIGNED = ("servo_per_rad",)
_OPTIONAL = ("reply_timeout_s", "min_battery_v", "max_battery_v")
_INTEGERS = ("baud", "motor_pole_pairs")


def _check_numbers(config: VescConfig) -> None:
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name in ("port", "rig", "throttle_control") or value is None and field.name in _OPTIONAL:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if field.name in _INTEGERS:
            number = number and isinstance(value, int)
        low_ok = number and (field.name in _SIGNED or value > 0 or (field.name in _MAY_BE_ZERO and value == 0))
        if not low_ok:
            kind = "an integer" if field.name in _INTEGERS else "a finite number"
            bound = "" if field.name in _SIGNED else (" >= 0" if field.name in _MAY_BE_ZERO else " > 0")
            raise ValueError(f"VescConfig.{field.name} must be {kind}{bound}, got {value!r}")
    if config.servo_per_rad == 0:
        raise ValueError("VescConfig.servo_per_rad must not be 0 (the servo would not steer)")


def load_vesc_rig(path: str | os.PathLike, **overrides: Any) -> VescConfig:
    """The ``[car.vesc]`` table of a rig file as a :class:`VescConfig`; ``overrides`` win over the file."""
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as err:
        raise VescRigError(f"{path}: cannot read the rig file: {err}") from err
    except tomllib.TOMLDecodeError as err:
        raise VescRigError(f"{path}: not valid TOML: {err}") from err
    table = data.get("car", {}).get("vesc") if isinstance(data.get("car"), dict) else None
    if not isinstance(table, dict):
        raise VescRigError(f"{path}: no [car.vesc] table")
    known = {f.name for f in dataclasses.fields(VescConfig)} - {"rig"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise VescRigError(f"{path}: [car.vesc]: unknown field(s) {unknown}; known: {sorted(known)}")
    try:
        return VescConfig(**{**table, **overrides, "rig": str(path)})
    except (TypeError, ValueError) as err:
        raise VescRigError(f"{path}: [car.vesc]: {err}") from err
