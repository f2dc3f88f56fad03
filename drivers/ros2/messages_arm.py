"""The arm family on standard ROS 2 messages (franka_ros2-style names).

State (``ArmState`` <-> messages), every pose and vector in the robot base frame
(``header.frame_id = frames.base``, x forward, y left, z up):

* ``joint_states`` (``sensor_msgs/JointState``, required): the arm joints
  ``{prefix}joint1 .. {prefix}joint{dof}`` [rad, rad/s] and the gripper as its two finger joints
  ``{prefix}finger_joint1/2``, each at half the finger distance [m] (as franka_gripper publishes
  them); finger velocities are nan (not measured), ``effort`` is empty (not reported). Reading
  accepts the names in any order; the arm joints are required, the fingers optional (gripper width
  nan without them, else the sum of the two); any other name is an error. Default prefix ``""``;
  ``ArmMessages(joint_prefix="fr3_")`` reads and writes a Franka FR3's names.
* ``tcp_pose`` (``geometry_msgs/PoseStamped``, required): TCP position [m] and orientation.
* ``tcp_twist`` (``geometry_msgs/TwistStamped``, optional): TCP linear [m/s] and angular [rad/s]
  velocity, base frame (nan when absent).
* ``ext_wrench`` (``geometry_msgs/WrenchStamped``, optional): external wrench at the TCP
  [N, N m], base frame, the force the environment applies to the robot (nan when absent).

``ArmState.objects`` (a simulator's privileged poses) travels in no message.

Commands (``ArmTarget``): ``tcp_target`` (``geometry_msgs/PoseStamped``, base frame) carries the
TCP target pose, ``gripper_cmd`` (``std_msgs/Float64``) the target finger distance [m]. As on
franka_ros2 (pose controller and gripper apart), each message changes its part only: reading one
needs the ``previous`` target for the other part, or use :meth:`ArmMessages.command_from_messages`
with both roles.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from drivers.ros2 import messages_common as common
from drivers.ros2.messages_common import Frames, Topic
from drivers.ros2.msg_dicts import Message, header
from robot_rl.backends.arm import ArmSpec, ArmState, ArmTarget

JOINT_STATE = "sensor_msgs/msg/JointState"
POSE = "geometry_msgs/msg/PoseStamped"
TWIST_STAMPED = "geometry_msgs/msg/TwistStamped"
WRENCH = "geometry_msgs/msg/WrenchStamped"
FLOAT64 = "std_msgs/msg/Float64"


class ArmMessages:
    """Conversions between the arm contract (robot_rl/backends/arm.py) and ROS 2 messages."""

    family = "arm"
    state_topics = (
        Topic("joint_states", JOINT_STATE, "joint_states", True),
        Topic("tcp_pose", POSE, "tcp_pose", True),
        Topic("tcp_twist", TWIST_STAMPED, "tcp_twist", False),
        Topic("ext_wrench", WRENCH, "ext_wrench", False),
    )
    command_topics = (
        Topic("tcp_target", POSE, "cmd/tcp_target", True),
        Topic("gripper_cmd", FLOAT64, "cmd/gripper", True),
    )

    def __init__(self, joint_prefix: str = "") -> None:
        self.joint_prefix = joint_prefix

    def joint_names(self, spec: ArmSpec) -> tuple[list[str], list[str]]:
        """(arm joint names, the two finger joint names) for ``spec.dof`` joints."""
        prefix = self.joint_prefix
        return ([f"{prefix}joint{i + 1}" for i in range(spec.dof)],
                [f"{prefix}finger_joint1", f"{prefix}finger_joint2"])

    def state_to_messages(self, state: ArmState, spec: ArmSpec, time_ns: int, frames: Frames) -> dict[str, Message]:
        arm, fingers = self.joint_names(spec)
        half_width = float(state.gripper_width_m) / 2.0
        return {
            "joint_states": {"header": header(time_ns, frames.base), "name": arm + fingers,
                             "position": np.append(np.asarray(state.joint_pos_rad, np.float64), [half_width] * 2),
                             "velocity": np.append(np.asarray(state.joint_vel_rad_s, np.float64), [np.nan] * 2),
                             "effort": np.zeros(0)},
            "tcp_pose": _pose_stamped(time_ns, frames.base, state.tcp_pos_m, state.tcp_quat_wxyz),
            "tcp_twist": {"header": header(time_ns, frames.base),
                          "twist": common.twist(state.tcp_linvel_m_s, state.tcp_angvel_rad_s)},
            "ext_wrench": {"header": header(time_ns, frames.base),
                           "wrench": {"force": common.vector3(state.ext_wrench_n_nm[:3]),
                                      "torque": common.vector3(state.ext_wrench_n_nm[3:])}},
        }

    def state_from_messages(self, messages: Mapping[str, Message], spec: ArmSpec) -> ArmState:
        common.check_roles(self.family, messages, self.state_topics)
        joint_pos, joint_vel, width = self._joints(messages["joint_states"], spec)
        pos, quat = _pose_parts(messages["tcp_pose"], "tcp_pose")
        linvel = angvel = np.full(3, np.nan)
        if messages.get("tcp_twist") is not None:
            where = f"tcp_twist ({TWIST_STAMPED}).twist"
            linvel = common.xyz_of(messages["tcp_twist"]["twist"]["linear"], f"{where}.linear")
            angvel = common.xyz_of(messages["tcp_twist"]["twist"]["angular"], f"{where}.angular")
        wrench = np.full(6, np.nan)
        if messages.get("ext_wrench") is not None:
            where = f"ext_wrench ({WRENCH}).wrench"
            parts = messages["ext_wrench"]["wrench"]
            wrench = np.concatenate([common.xyz_of(parts["force"], f"{where}.force"),
                                     common.xyz_of(parts["torque"], f"{where}.torque")])
        return ArmState(time_s=common.newest_time_s(messages), tcp_pos_m=pos, tcp_quat_wxyz=quat,
                        tcp_linvel_m_s=linvel, tcp_angvel_rad_s=angvel, joint_pos_rad=joint_pos,
                        joint_vel_rad_s=joint_vel, gripper_width_m=width, ext_wrench_n_nm=wrench)

    def joint_positions(self, message: Message, spec: ArmSpec) -> np.ndarray:
        """The arm joint positions [rad] of a ``sensor_msgs/JointState`` dict, in joint order ``joint1..joint{dof}``.

        Its names may come in any order and may include the two finger joints (ignored here).

        Raises:
            ValueError: a joint of the arm missing, a name this arm does not have, repeated names,
                mismatched array lengths or a non-finite position (the message names them).
        """
        return self._joints(message, spec)[0]

    def _joints(self, message: Message, spec: ArmSpec) -> tuple[np.ndarray, np.ndarray, float]:
        where = f"joint_states ({JOINT_STATE})"
        names = list(message["name"])
        position = np.asarray(message["position"], dtype=np.float64)
        velocity = np.asarray(message["velocity"], dtype=np.float64)
        if len(position) != len(names) or len(velocity) not in (0, len(names)) or len(set(names)) != len(names):
            raise ValueError(f"{where}: needs distinct names and as many positions (and velocities, or none), got "
                             f"{len(names)} names, {len(position)} positions, {len(velocity)} velocities")
        arm, fingers = self.joint_names(spec)
        unknown = [n for n in names if n not in arm + fingers]
        missing = [n for n in arm if n not in names]
        if unknown or missing:
            raise ValueError(f"{where}: unknown joint names {unknown}, missing joints {missing}; "
                             f"this arm has {arm} and fingers {fingers}")
        index = [names.index(n) for n in arm]
        joint_pos = position[index]
        common.require_finite(joint_pos, f"{where}.position")
        joint_vel = velocity[index] if len(velocity) else np.full(spec.dof, np.nan)
        width = float(sum(position[names.index(n)] for n in fingers)) if set(fingers) <= set(names) else np.nan
        return joint_pos, joint_vel, width

    def command_to_message(self, command: ArmTarget, spec: ArmSpec, role: str, time_ns: int,
                           frames: Frames) -> Message:
        common.check_role(role, self.command_topics, self.family)
        if not isinstance(command, ArmTarget):
            raise ValueError(f"arm: an ArmTarget is needed, got {type(command).__name__}")
        if role == "tcp_target":
            return _pose_stamped(time_ns, frames.base, command.tcp_pos_m, command.tcp_quat_wxyz)
        return {"data": float(command.gripper_width_m)}

    def command_from_message(self, role: str, message: Message, spec: ArmSpec,
                             previous: ArmTarget | None = None) -> ArmTarget:
        """The target after one command message: its part from ``message``, the other part from ``previous``.

        Raises:
            ValueError: without ``previous`` (one message is half a target), or a malformed message.
        """
        common.check_role(role, self.command_topics, self.family)
        if previous is None:
            raise ValueError(f"arm: a {role} message is half an ArmTarget; pass the previous target, or use "
                             f"command_from_messages with both tcp_target and gripper_cmd")
        if role == "tcp_target":
            pos, quat = _pose_parts(message, role)
            return ArmTarget(tcp_pos_m=pos, tcp_quat_wxyz=quat, gripper_width_m=previous.gripper_width_m)
        return ArmTarget(tcp_pos_m=np.array(previous.tcp_pos_m, dtype=np.float64),
                         tcp_quat_wxyz=np.array(previous.tcp_quat_wxyz, dtype=np.float64),
                         gripper_width_m=_gripper_width(message, role))

    def command_from_messages(self, messages: Mapping[str, Message], spec: ArmSpec) -> ArmTarget:
        """The target of the newest ``tcp_target`` and ``gripper_cmd`` messages (both required)."""
        common.check_roles(self.family, messages, self.command_topics)
        pos, quat = _pose_parts(messages["tcp_target"], "tcp_target")
        return ArmTarget(tcp_pos_m=pos, tcp_quat_wxyz=quat,
                         gripper_width_m=_gripper_width(messages["gripper_cmd"], "gripper_cmd"))


def _pose_stamped(time_ns: int, frame: str, pos_m, quat_wxyz) -> Message:
    return {"header": header(time_ns, frame), "pose": common.pose(pos_m, quat_wxyz)}


def _pose_parts(message: Message, role: str) -> tuple[np.ndarray, np.ndarray]:
    where = f"{role} ({POSE}).pose"
    try:
        pose = message["pose"]
        pos = common.xyz_of(pose["position"], f"{where}.position")
        orientation = pose["orientation"]
    except (KeyError, TypeError):
        raise ValueError(f"{where}: needs position and orientation, got {message!r:.120}") from None
    common.require_finite(pos, f"{where}.position")
    return pos, common.quat_wxyz_of(orientation, f"{where}.orientation")


def _gripper_width(message: Message, role: str) -> float:
    try:
        width = float(message["data"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{role} ({FLOAT64}): needs a numeric data field, got {message!r:.80}") from None
    common.require_finite(width, f"{role} ({FLOAT64}).data")
    return width
