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

Commands: ``cmd_vel`` (``geometry_msgs/Twist``) <-> ``VelocityCommand``: ``linear`` the velocity
target in the world frame, ENU [m/s], ``angular.z`` the yaw rate about world z [rad/s] (as MAVROS'
``setpoint_velocity/cmd_vel_unstamped`` reads a Twist; ``angular.x/y`` are ignored). The lower
levels (attitude, thrust + rates, motor thrusts) have no honest standard ROS 2 message (each stack
has its own: mavros_msgs/AttitudeTarget, crazyflie_interfaces, px4_msgs): converting one raises
ValueError.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from drivers.ros2 import messages_common as common
from drivers.ros2.messages_common import Frames, Topic
from drivers.ros2.msg_dicts import Message
from robot_rl.backends.quadrotor import QuadSpec, QuadState, VelocityCommand

BOOL = "std_msgs/msg/Bool"


class QuadMessages:
    """Conversions between the quadrotor contract (robot_rl/backends/quadrotor.py) and ROS 2 messages."""

    family = "quadrotor"
    state_topics = (
        Topic("odom", common.ODOMETRY, "odom", True),
        Topic("imu", common.IMU, "imu", False),
        Topic("battery", common.BATTERY, "battery", False),
        Topic("armed", BOOL, "armed", False),
    )
    command_topics = (Topic("cmd_vel", common.TWIST, "cmd_vel", True),)

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
        if not isinstance(command, VelocityCommand):
            level = getattr(command, "level", type(command).__name__)
            raise ValueError(f"quadrotor: only VelocityCommand travels over ROS ({common.TWIST}); a {level!r} "
                             f"command has no standard ROS 2 message")
        return common.twist(command.vel_m_s, (0.0, 0.0, command.yaw_rate_rad_s))

    def command_from_message(self, role: str, message: Message, spec: QuadSpec,
                             previous: VelocityCommand | None = None) -> VelocityCommand:
        """The command of one message (complete on its own: ``previous`` is not needed)."""
        common.check_role(role, self.command_topics, self.family)
        where = f"{role} ({common.TWIST})"
        try:
            linear, angular = message["linear"], message["angular"]
        except (KeyError, TypeError):
            raise ValueError(f"{where}: needs linear and angular") from None
        vel = common.xyz_of(linear, f"{where}.linear")
        yaw_rate = float(common.xyz_of(angular, f"{where}.angular")[2])
        common.require_finite(np.append(vel, yaw_rate), f"{where} linear, angular.z")
        return VelocityCommand(vel_m_s=vel, yaw_rate_rad_s=yaw_rate)

    def command_from_messages(self, messages: Mapping[str, Message], spec: QuadSpec) -> VelocityCommand:
        """The command of the ``cmd_vel`` role."""
        if messages.get("cmd_vel") is None or set(messages) - {"cmd_vel"}:
            raise ValueError(f"quadrotor: needs exactly the cmd_vel command role, got roles {sorted(messages)}")
        return self.command_from_message("cmd_vel", messages["cmd_vel"], spec)

