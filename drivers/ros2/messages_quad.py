"""The quadrotor family on standard ROS 2 messages.

State (``QuadState`` <-> messages):

* ``odom`` (``nav_msgs/Odometry``, required): pose of the centre of mass in the world frame, ENU
  (``header.frame_id = frames.world``), orientation rotating body FLU into world; twist in the
  body frame (``child_frame_id = frames.base``, FLU), as ROS defines Odometry: ``linear`` is our
  world-frame ``vel_m_s`` rotated into the body frame (``R^T v``), ``angular`` the body rates
  [rad/s]. Position and orientation must be finite.
* ``imu`` (``sensor_msgs/Imu``, optional, ``frames.base``): orientation and gyro (body rates);
  the specific force is not part of ``QuadState`` and is marked unknown (REP 145). Used for the
  body rates only when the odometry's angular twist is nan.
* ``battery`` (``sensor_msgs/BatteryState``, optional): ``voltage`` [V] (float32).
* ``armed`` (``std_msgs/Bool``, optional): ``QuadState.armed``; absent reads as not armed.

``motor_speeds_rad_s`` has no standard message: it reads back as nan.

Commands, two alternative roles (a stack takes one or both; :class:`~drivers.ros2.ros_backend.RosQuadBackend`
publishes on the role of each command's level):

* ``cmd_vel`` (``geometry_msgs/Twist``) <-> ``VelocityCommand``: ``linear`` the velocity target in the world
  frame, ENU [m/s], ``angular.z`` the yaw rate about world z [rad/s] (as MAVROS'
  ``setpoint_velocity/cmd_vel_unstamped`` reads a Twist; ``angular.x/y`` are ignored).
* ``attitude_target`` (``mavros_msgs/AttitudeTarget``, default topic ``cmd/attitude_target``; remap it to
  MAVROS' ``setpoint_raw/attitude``) <-> ``ThrustRates``, the message PX4 and ArduPilot take collective thrust
  + body rates through: ``type_mask = IGNORE_ATTITUDE`` (the orientation is ignored and written as the
  identity), ``body_rate`` our ``body_rates_rad_s`` in the **body frame FLU** [rad/s] -- MAVROS takes body
  rates in the ROS body frame (base_link, FLU) and converts them to the autopilot's FRD itself -- and
  ``thrust`` our ``collective_thrust_frac`` (float32, normalized ``0..1``; MAVROS 1's setpoint_raw multiplies it by its
  ``thrust_scaling`` parameter, so set that to 1 -- not checked on the ROS 2 branch -- and the autopilot's thrust curve maps it to the motors, where
  ours is linear in force). ``header.frame_id`` is ``frames.base``. A message that does not ignore the
  attitude, or ignores a rate or the thrust, is not a ThrustRates: refused (ValueError).

The other levels (attitude with roll/pitch angles, motor thrusts) have no message here: converting one raises
ValueError.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from drivers.ros2 import messages_common as common
from drivers.ros2.messages_common import Frames, Topic
from drivers.ros2.msg_dicts import Message, header
from robot_rl.backends.quadrotor import THRUST_RATES, VELOCITY, QuadSpec, QuadState, ThrustRates, VelocityCommand

BOOL = "std_msgs/msg/Bool"
ATTITUDE_TARGET = "mavros_msgs/msg/AttitudeTarget"
# mavros_msgs/AttitudeTarget's type_mask bits (its constants; drivers/ros2/msg/AttitudeTarget.msg)
IGNORE_ROLL_RATE, IGNORE_PITCH_RATE, IGNORE_YAW_RATE, IGNORE_THRUST, IGNORE_ATTITUDE = 1, 2, 4, 64, 128
THRUST_RATES_MASK = IGNORE_ATTITUDE  # thrust + the three body rates
#: The command role that carries each command level.
LEVEL_ROLES = {VELOCITY: "cmd_vel", THRUST_RATES: "attitude_target"}


class QuadMessages:
    """Conversions between the quadrotor contract (robot_rl/backends/quadrotor.py) and ROS 2 messages."""

    family = "quadrotor"
    state_topics = (
        Topic("odom", common.ODOMETRY, "odom", True),
        Topic("imu", common.IMU, "imu", False),
        Topic("battery", common.BATTERY, "battery", False),
        Topic("armed", BOOL, "armed", False),
    )
    command_topics = (
        Topic("cmd_vel", common.TWIST, "cmd_vel", False),
        Topic("attitude_target", ATTITUDE_TARGET, "cmd/attitude_target", False),
    )

    def state_to_messages(self, state: QuadState, spec: QuadSpec, time_ns: int, frames: Frames) -> dict[str, Message]:
        vel_body = common.rotate_to_body(state.quat_wxyz, state.vel_m_s)
        return {
            "odom": common.odometry(time_ns, frames.world, frames.base, state.pos_m, state.quat_wxyz, vel_body,
                                    state.body_rates_rad_s),
            "imu": common.imu(time_ns, frames.base, state.quat_wxyz, state.body_rates_rad_s, None),
            "battery": common.battery(time_ns, frames.base, state.battery_v),
            "armed": {"data": bool(state.armed)},
        }

    def state_from_messages(self, messages: Mapping[str, Message], spec: QuadSpec) -> QuadState:
        common.check_roles(self.family, messages, self.state_topics)
        pos, quat, linvel_body, rates = common.odometry_parts(messages["odom"], "odom", require_pose=True)
        if not np.all(np.isfinite(rates)) and messages.get("imu") is not None:
            rates = common.imu_parts(messages["imu"], "imu")[0]
        armed = messages.get("armed")
        if armed is not None and not isinstance(armed.get("data"), (bool, np.bool_)):
            raise ValueError(f"armed ({BOOL}).data must be a bool, got {armed!r:.80}")
        return QuadState(time_s=common.newest_time_s(messages), pos_m=pos, quat_wxyz=quat,
                         vel_m_s=common.rotate_to_world(quat, linvel_body), body_rates_rad_s=rates,
                         armed=bool(armed["data"]) if armed is not None else False,
                         battery_v=common.battery_voltage(messages, "battery"))

    def command_to_message(self, command, spec: QuadSpec, role: str, time_ns: int, frames: Frames) -> Message:
        common.check_role(role, self.command_topics, self.family)
        level = getattr(command, "level", type(command).__name__)
        if LEVEL_ROLES.get(level) != role:
            carried = ", ".join(f"{lv!r} on {r}" for lv, r in LEVEL_ROLES.items())
            raise ValueError(f"quadrotor: a {level!r} command does not travel on the {role} role (ROS carries "
                             f"{carried}; the other levels have no message here)")
        if isinstance(command, VelocityCommand):
            return common.twist(command.vel_m_s, (0.0, 0.0, command.yaw_rate_rad_s))
        return {"header": header(time_ns, frames.base), "type_mask": THRUST_RATES_MASK,
                "orientation": common.quaternion((1.0, 0.0, 0.0, 0.0)),
                "body_rate": common.vector3(command.body_rates_rad_s), "thrust": command.collective_thrust_frac}

    def command_from_message(self, role: str, message: Message, spec: QuadSpec,
                             previous: Any = None) -> VelocityCommand | ThrustRates:
        """The command of one message (complete on its own: ``previous`` is not needed)."""
        common.check_role(role, self.command_topics, self.family)
        if role == "attitude_target":
            return _thrust_rates_of(message, f"{role} ({ATTITUDE_TARGET})")
        where = f"{role} ({common.TWIST})"
        try:
            linear, angular = message["linear"], message["angular"]
        except (KeyError, TypeError):
            raise ValueError(f"{where}: needs linear and angular") from None
        vel = common.xyz_of(linear, f"{where}.linear")
        yaw_rate = float(common.xyz_of(angular, f"{where}.angular")[2])
        common.require_finite(np.append(vel, yaw_rate), f"{where} linear, angular.z")
        return VelocityCommand(vel_m_s=vel, yaw_rate_rad_s=yaw_rate)

    def command_from_messages(self, messages: Mapping[str, Message], spec: QuadSpec) -> VelocityCommand | ThrustRates:
        """The command of exactly one present command role (``cmd_vel`` or ``attitude_target``)."""
        present = [role for role, message in messages.items() if message is not None]
        if len(present) != 1:
            raise ValueError(f"quadrotor: one command message is needed (cmd_vel or attitude_target), got roles "
                             f"{present}")
        return self.command_from_message(present[0], messages[present[0]], spec)


def _thrust_rates_of(message: Message, where: str) -> ThrustRates:
    """ThrustRates of an AttitudeTarget dict (form checks: the mask, finite numbers; ranges are the backend's)."""
    try:
        mask, rates, thrust = message["type_mask"], message["body_rate"], message["thrust"]
    except (KeyError, TypeError):
        raise ValueError(f"{where}: needs type_mask, body_rate and thrust") from None
    if isinstance(mask, bool) or not isinstance(mask, (int, np.integer)):
        raise ValueError(f"{where}.type_mask must be an integer, got {mask!r:.40}")
    if not mask & IGNORE_ATTITUDE or mask & (IGNORE_ROLL_RATE | IGNORE_PITCH_RATE | IGNORE_YAW_RATE | IGNORE_THRUST):
        raise ValueError(f"{where}: type_mask {mask} is not thrust + body rates: it must be IGNORE_ATTITUDE "
                         f"({IGNORE_ATTITUDE}) with no rate or thrust ignored (attitude setpoints have no level here)")
    body_rates = common.xyz_of(rates, f"{where}.body_rate")
    if isinstance(thrust, bool) or not isinstance(thrust, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where}.thrust must be a number, got {thrust!r:.40}")
    common.require_finite(np.append(body_rates, thrust), f"{where} body_rate, thrust")
    return ThrustRates(collective_thrust_frac=float(thrust), body_rates_rad_s=body_rates)
