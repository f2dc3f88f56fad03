"""The VESC car's speed/steer controller and wheel odometry, as pure functions.

One I/O period (:mod:`drivers.car.vesc`) sends one drive command, chosen by :func:`drive_order`
from the newest command target, the backend's brake state and the measured wheel speed:

* a brake reason (``stop()``, the watchdog, the low-voltage cut-out, a VESC fault, a dead link, no
  command yet) ->
  ``COMM_SET_CURRENT_BRAKE`` at ``brake_current_a`` (the car brakes to a standstill and is held);
* speed mode -> ``COMM_SET_RPM`` with the set-point in ERPM (:func:`speed_to_erpm_arrays`): the
  VESC's own speed controller closes the loop at its control rate, as on F1TENTH cars; a zero
  set-point brakes instead (the firmware lets the motor coast below its ``s_pid_min_erpm``);
* throttle mode -> ``COMM_SET_DUTY`` (throttle x ``max_duty``) or ``COMM_SET_CURRENT`` (throttle x
  ``max_current_a``); a throttle within ``throttle_deadband`` brakes, and so does forward drive at or
  above ``max_speed_m_s`` measured (reverse drive beyond ``max_reverse_speed_m_s``) -- the
  contract's speed rule, checked every I/O period rather than every control period.

Steering: servo position ``servo_center + servo_per_rad * steering_rad`` (:func:`steering_to_servo_arrays`),
within the servo's stops. The rate limits and ranges are the contract's
:func:`~robot_rl.backends.car.clip_car_command`, applied in ``command()`` before any of this.

A coast reason (over-voltage) releases the motor instead (``COMM_SET_CURRENT`` 0 A): braking would
feed current back into a battery whose voltage is already too high.

The array functions take ``xp`` (``numpy`` or ``jax.numpy``) like every controller of the project.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from drivers.car import vesc_codec as codec
from drivers.car.config import VescConfig
from robot_rl.backends.car import SPEED, CarCommand


@dataclasses.dataclass(frozen=True)
class DriveOrder:
    """The drive command of one I/O period.

    Attributes:
        command_id: ``COMM_SET_RPM``, ``COMM_SET_DUTY``, ``COMM_SET_CURRENT`` or ``COMM_SET_CURRENT_BRAKE``.
        value: its value: ERPM, duty in [-1, 1], or amperes.
        reason: why: ``"speed"``, ``"throttle"``, ``"zero"`` (a zero set-point or throttle),
            ``"overspeed"``, or the brake reason given to :func:`drive_order`.
    """

    command_id: int
    value: float
    reason: str

    @property
    def braking(self) -> bool:
        return self.command_id == codec.COMM_SET_CURRENT_BRAKE

    def payload(self) -> bytes:
        encode = {codec.COMM_SET_RPM: codec.set_rpm, codec.COMM_SET_DUTY: codec.set_duty,
                  codec.COMM_SET_CURRENT: codec.set_current, codec.COMM_SET_CURRENT_BRAKE: codec.set_current_brake}
        return encode[self.command_id](self.value)


def drive_order(target: CarCommand | None, brake_reason: str | None, wheel_speed_m_s: float,
                config: VescConfig, coast: bool = False) -> DriveOrder:
    """What to send this I/O period (module docstring). ``target`` is the clipped command;
    ``wheel_speed_m_s`` the newest measurement (``nan`` if none: the speed rule is then skipped);
    ``coast`` (with a ``brake_reason``) releases the motor instead of braking."""
    if coast and brake_reason is not None:
        return DriveOrder(codec.COMM_SET_CURRENT, 0.0, brake_reason)
    brake = DriveOrder(codec.COMM_SET_CURRENT_BRAKE, config.brake_current_a, brake_reason or "zero")
    if brake_reason is not None or target is None:
        return dataclasses.replace(brake, reason=brake_reason or "no command")
    if target.mode == SPEED:
        erpm = float(speed_to_erpm_arrays(target.speed_m_s, config.erpm_per_m_s, math))
        return brake if abs(erpm) < 0.5 else DriveOrder(codec.COMM_SET_RPM, erpm, "speed")
    throttle = target.throttle
    if abs(throttle) <= config.throttle_deadband:
        return brake
    if (throttle > 0 and wheel_speed_m_s >= config.max_speed_m_s) or \
            (throttle < 0 and wheel_speed_m_s <= -config.max_reverse_speed_m_s):
        return dataclasses.replace(brake, reason="overspeed")
    if config.throttle_control == "duty":
        return DriveOrder(codec.COMM_SET_DUTY, throttle * config.max_duty, "throttle")
    return DriveOrder(codec.COMM_SET_CURRENT, throttle * config.max_current_a, "throttle")


# ----------------------------------------------------------------------------- array functions
def speed_to_erpm_arrays(speed_m_s: Any, erpm_per_m_s: float, xp: Any) -> Any:
    """Wheel surface speed [m/s] -> electrical RPM of the motor."""
    return speed_m_s * erpm_per_m_s


def erpm_to_speed_arrays(erpm: Any, erpm_per_m_s: float, xp: Any) -> Any:
    """Electrical RPM of the motor -> wheel surface speed [m/s]."""
    return erpm / erpm_per_m_s


def steering_to_servo_arrays(steering_rad: Any, servo_center: float, servo_per_rad: float, servo_min: float,
                             servo_max: float, xp: Any) -> Any:
    """Bicycle steering angle [rad, left +] -> servo position, within ``[servo_min, servo_max]``."""
    return xp.clip(servo_center + servo_per_rad * steering_rad, servo_min, servo_max)


def servo_to_steering_arrays(servo: Any, servo_center: float, servo_per_rad: float, xp: Any) -> Any:
    """Servo position -> bicycle steering angle [rad] (inverse of :func:`steering_to_servo_arrays`)."""
    return (servo - servo_center) / servo_per_rad
