"""The car family on standard ROS 2 messages (F1TENTH-style topics).

State (``CarState`` <-> messages):

* ``odom`` (``nav_msgs/Odometry``, required): pose of the rear axle centre in the world frame
  (``header.frame_id = frames.world``): position ``(x, y, 0)`` [m], orientation a rotation by
  ``yaw_rad`` about z; twist in the body frame (``child_frame_id = frames.base``, FLU, as ROS
  defines Odometry): ``linear = (vx, vy, 0)`` [m/s], ``angular.z = yaw_rate_rad_s``. Unknown
  (no localization): nan.
* ``drive_state`` (``ackermann_msgs/AckermannDriveStamped``, required), the drive feedback F1TENTH
  stacks publish: ``drive.steering_angle`` = measured (or last commanded) front-wheel angle
  [rad, positive left], ``drive.speed`` = wheel surface speed [m/s, positive forward]; the rates
  it cannot report are nan. float32 on the wire.
* ``imu`` (``sensor_msgs/Imu``, optional, ``frames.base``): gyro [rad/s] and specific force
  [m/s^2], body FLU; orientation marked unknown (REP 145) — the heading is in ``odom``.
* ``battery`` (``sensor_msgs/BatteryState``, optional): ``voltage`` [V] (float32).

Commands (``CarCommand`` <-> a message, speed mode only):

* ``ackermann`` (``ackermann_msgs/AckermannDriveStamped``): ``steering_angle`` [rad],
  ``speed`` [m/s]; rates and accelerations 0 ("as fast as the vehicle can", as the message defines:
  our backend's clip function applies the spec's slew limits).
* ``cmd_vel`` (``geometry_msgs/Twist``, body frame): ``linear.x`` = speed [m/s], ``angular.z`` =
  yaw rate [rad/s] = ``v * tan(steering) / wheelbase`` (kinematic bicycle). Below
  :data:`MIN_SPEED_FOR_YAW_RATE_M_S` in magnitude (standstill included) the conversion uses that
  creep speed (sign of ``v``, forward at 0), so the wheels can be steered at standstill, the angle
  stays bounded in ``(-pi/2, pi/2)`` and the two directions are exact inverses; other Twist fields
  are ignored.

A throttle-mode ``CarCommand`` (normalized drive effort) has no field in either standard message:
converting one raises ValueError (run such a backend in speed mode behind ROS).
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from drivers.ros2 import messages_common as common
from drivers.ros2.messages_common import Frames, Topic
from drivers.ros2.msg_dicts import Message, header
from robot_rl.backends.car import CarCommand, CarSpec, CarState

ACKERMANN = "ackermann_msgs/msg/AckermannDriveStamped"
MIN_SPEED_FOR_YAW_RATE_M_S = 0.1


class CarMessages:
    """Conversions between the car contract (robot_rl/backends/car.py) and ROS 2 messages."""

    family = "car"
    state_topics = (
        Topic("odom", common.ODOMETRY, "odom", True),
        Topic("drive_state", ACKERMANN, "drive_state", True),
        Topic("imu", common.IMU, "imu", False),
        Topic("battery", common.BATTERY, "battery", False),
    )
    command_topics = (
        Topic("ackermann", ACKERMANN, "cmd/ackermann", False),
        Topic("cmd_vel", common.TWIST, "cmd_vel", False),
    )

    def state_to_messages(self, state: CarState, spec: CarSpec, time_ns: int, frames: Frames) -> dict[str, Message]:
        pos = (float(state.pos_m[0]), float(state.pos_m[1]), 0.0)
        vel = (float(state.vel_body_m_s[0]), float(state.vel_body_m_s[1]), 0.0)
        nan = math.nan
        return {
            "odom": common.odometry(time_ns, frames.world, frames.base, pos, common.quat_from_yaw(state.yaw_rad),
                                    vel, (0.0, 0.0, state.yaw_rate_rad_s)),
            "drive_state": _ackermann(time_ns, frames.base, state.steering_rad, state.wheel_speed_m_s, nan),
            "imu": common.imu(time_ns, frames.base, None, state.imu_gyro_rad_s, state.imu_accel_m_s2),
            "battery": common.battery(time_ns, frames.base, state.battery_v),
        }

    def state_from_messages(self, messages: Mapping[str, Message], spec: CarSpec) -> CarState:
        common.check_roles(self.family, messages, self.state_topics)
        pos, quat, linvel, angvel = common.odometry_parts(messages["odom"], "odom", require_pose=False)
        steering, wheel_speed = _ackermann_parts(messages["drive_state"], "drive_state")
        common.require_finite(steering, f"drive_state ({ACKERMANN}).drive.steering_angle")
        gyro = accel = np.full(3, np.nan)
        if messages.get("imu") is not None:
            gyro, accel = common.imu_parts(messages["imu"], "imu")
        yaw = common.yaw_from_quat(quat) if np.all(np.isfinite(quat)) else math.nan
        return CarState(time_s=common.newest_time_s(messages), pos_m=pos[:2], yaw_rad=yaw,
                        vel_body_m_s=linvel[:2], yaw_rate_rad_s=float(angvel[2]), wheel_speed_m_s=wheel_speed,
                        steering_rad=steering, imu_accel_m_s2=accel, imu_gyro_rad_s=gyro,
                        battery_v=common.battery_voltage(messages, "battery"))

    def command_to_message(self, command: CarCommand, spec: CarSpec, role: str, time_ns: int,
                           frames: Frames) -> Message:
        common.check_role(role, self.command_topics, self.family)
        if not isinstance(command, CarCommand):
            raise ValueError(f"car: a CarCommand is needed, got {type(command).__name__}")
        if command.speed_m_s is None:
            raise ValueError(f"car: a throttle-mode CarCommand (throttle={command.throttle}) has no field in "
                             f"{ACKERMANN} or {common.TWIST}; only speed-mode commands travel over ROS")
        if role == "ackermann":
            return _ackermann(time_ns, frames.base, command.steering_rad, command.speed_m_s, 0.0)
        yaw_rate = yaw_rate_from_steering(command.speed_m_s, command.steering_rad, spec.wheelbase_m)
        return common.twist((command.speed_m_s, 0.0, 0.0), (0.0, 0.0, yaw_rate))

    def command_from_message(self, role: str, message: Message, spec: CarSpec,
                             previous: CarCommand | None = None) -> CarCommand:
        """The command of one message (complete on its own: ``previous`` is not needed)."""
        common.check_role(role, self.command_topics, self.family)
        if role == "ackermann":
            steering, speed = _ackermann_parts(message, role)
            common.require_finite((steering, speed), f"{role} ({ACKERMANN}) drive.steering_angle, drive.speed")
        else:
            where = f"{role} ({common.TWIST})"
            try:
                speed = float(common.xyz_of(message["linear"], f"{where}.linear")[0])
                yaw_rate = float(common.xyz_of(message["angular"], f"{where}.angular")[2])
            except (KeyError, TypeError):
                raise ValueError(f"{where}: needs linear and angular, got {message!r:.120}") from None
            common.require_finite((speed, yaw_rate), f"{where} linear.x, angular.z")
            steering = steering_from_yaw_rate(speed, yaw_rate, spec.wheelbase_m)
        return CarCommand(steering_rad=steering, speed_m_s=speed)

    def command_from_messages(self, messages: Mapping[str, Message], spec: CarSpec) -> CarCommand:
        """The command of exactly one present command role (``ackermann`` or ``cmd_vel``)."""
        present = [role for role, message in messages.items() if message is not None]
        if len(present) != 1:
            raise ValueError(f"car: one command message is needed (ackermann or cmd_vel), got roles {present}")
        return self.command_from_message(present[0], messages[present[0]], spec)


def _creep_speed(speed_m_s: float) -> float:
    if abs(speed_m_s) >= MIN_SPEED_FOR_YAW_RATE_M_S:
        return speed_m_s
    return math.copysign(MIN_SPEED_FOR_YAW_RATE_M_S, speed_m_s) if speed_m_s != 0 else MIN_SPEED_FOR_YAW_RATE_M_S


def yaw_rate_from_steering(speed_m_s: float, steering_rad: float, wheelbase_m: float) -> float:
    """Kinematic-bicycle yaw rate [rad/s] of a front-wheel angle at a speed (creep speed near standstill)."""
    return _creep_speed(speed_m_s) * math.tan(steering_rad) / wheelbase_m


def steering_from_yaw_rate(speed_m_s: float, yaw_rate_rad_s: float, wheelbase_m: float) -> float:
    """The front-wheel angle [rad] in ``(-pi/2, pi/2)`` giving a yaw rate at a speed; inverse of the above."""
    return math.atan(wheelbase_m * yaw_rate_rad_s / _creep_speed(speed_m_s))


def _ackermann(time_ns: int, frame: str, steering_rad: float, speed_m_s: float, rates: float) -> Message:
    return {"header": header(time_ns, frame),
            "drive": {"steering_angle": float(steering_rad), "steering_angle_velocity": rates,
                      "speed": float(speed_m_s), "acceleration": rates, "jerk": rates}}


def _ackermann_parts(message: Message, role: str) -> tuple[float, float]:
    try:
        drive = message["drive"]
        return float(drive["steering_angle"]), float(drive["speed"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{role} ({ACKERMANN}): needs drive.steering_angle and drive.speed, "
                         f"got {message!r:.120}") from None
