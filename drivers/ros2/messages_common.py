"""Pieces every family's message conversion shares: topics, frames, and standard message builders.

Conventions (REP 103 / REP 105): SI units; right-handed frames; world frames ENU (x east/forward,
y north/left, z up), body frames FLU; ROS quaternions are fields ``x, y, z, w``, ours are arrays
``(w, x, y, z)``; ``nav_msgs/Odometry`` carries the pose in ``header.frame_id`` (the world frame,
e.g. ``odom``) and the twist in ``child_frame_id`` (the body frame, e.g. ``base_link``).
REP 145: an unknown IMU quantity has element 0 of its covariance set to ``-1``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np

from drivers.ros2.msg_dicts import Message, header, stamp_to_ns
from robot_rl.geometry import quat_to_mat

ODOMETRY = "nav_msgs/msg/Odometry"
IMU = "sensor_msgs/msg/Imu"
BATTERY = "sensor_msgs/msg/BatteryState"
TWIST = "geometry_msgs/msg/Twist"


@dataclasses.dataclass(frozen=True)
class Topic:
    """One ROS topic a family publishes or accepts.

    Attributes:
        role: what it carries for us ("joint_states", "odom", "imu", "ackermann", ...); message dicts
            are keyed by role.
        typename: the ROS type in rosbags' form, ``"nav_msgs/msg/Odometry"``.
        default_name: the default ROS topic name, relative (``"odom"``, ``"cmd/ackermann"``).
        required: ``state_from_messages`` needs it (state topics), or a command needs it.
    """

    role: str
    typename: str
    default_name: str
    required: bool


@dataclasses.dataclass(frozen=True)
class Frames:
    """Frame ids written into headers: the world (odometry) frame, the robot base, the tool (TCP)."""

    world: str = "odom"
    base: str = "base_link"
    tool: str = "tcp"


# ----------------------------------------------------------------------------- small message pieces
def vector3(xyz) -> Message:
    x, y, z = (float(v) for v in np.asarray(xyz, dtype=np.float64).reshape(3))
    return {"x": x, "y": y, "z": z}


def point(xyz) -> Message:
    return vector3(xyz)


def quaternion(quat_wxyz) -> Message:
    """A ROS ``Quaternion`` dict (fields x, y, z, w) from our ``(w, x, y, z)``."""
    w, x, y, z = (float(v) for v in np.asarray(quat_wxyz, dtype=np.float64).reshape(4))
    return {"x": x, "y": y, "z": z, "w": w}


def pose(pos_m, quat_wxyz) -> Message:
    return {"position": point(pos_m), "orientation": quaternion(quat_wxyz)}


def xyz_of(message: Message, where: str) -> np.ndarray:
    """``(3,)`` float64 of a Vector3/Point dict."""
    return _numbers(message, ("x", "y", "z"), where)


def quat_wxyz_of(message: Message, where: str) -> np.ndarray:
    """Our ``(w, x, y, z)`` of a ROS Quaternion dict; must be finite and of unit norm (within 1e-3)."""
    x, y, z, w = _numbers(message, ("x", "y", "z", "w"), where)
    quat = np.array([w, x, y, z])
    norm = float(np.linalg.norm(quat))
    if not math.isfinite(norm) or abs(norm - 1.0) > 1e-3:
        raise ValueError(f"{where}: needs a finite unit quaternion, got x,y,z,w = {quat[[1, 2, 3, 0]].tolist()}")
    return quat / norm


def _numbers(message: Message, names: Sequence[str], where: str) -> np.ndarray:
    try:
        return np.array([float(message[name]) for name in names])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}: needs numeric fields {tuple(names)}, got {message!r:.120}") from None


def quat_from_yaw(yaw_rad: float) -> np.ndarray:
    """``(w, x, y, z)`` of a rotation by ``yaw_rad`` about z."""
    return np.array([math.cos(yaw_rad / 2), 0.0, 0.0, math.sin(yaw_rad / 2)])


def yaw_from_quat(quat_wxyz: np.ndarray) -> float:
    """Heading of the rotated x axis, counter-clockwise from world x, in ``(-pi, pi]`` (Z-Y-X yaw)."""
    w, x, y, z = quat_wxyz
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def require_finite(values, where: str) -> None:
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{where} must be finite, got {np.asarray(values).tolist()}")


# ----------------------------------------------------------------------------- standard messages
def odometry(time_ns: int, world: str, body: str, pos_m, quat_wxyz, linvel_body_m_s, angvel_body_rad_s) -> Message:
    """``nav_msgs/Odometry``: pose of ``body`` in ``world``; twist in ``body`` (its own frame, FLU).

    Covariances are zero ("not estimated"); nan in a pose or twist means unknown.
    """
    return {"header": header(time_ns, world), "child_frame_id": body,
            "pose": {"pose": pose(pos_m, quat_wxyz), "covariance": np.zeros(36)},
            "twist": {"twist": {"linear": vector3(linvel_body_m_s), "angular": vector3(angvel_body_rad_s)},
                      "covariance": np.zeros(36)}}


def odometry_parts(message: Message, role: str, require_pose: bool) -> tuple:
    """``(pos_m (3,), quat_wxyz (4,) or nan, linvel_body (3,), angvel_body (3,))`` of an Odometry dict."""
    where = f"{role} ({ODOMETRY})"
    try:
        pose_msg, twist_msg = message["pose"]["pose"], message["twist"]["twist"]
    except (KeyError, TypeError):
        raise ValueError(f"{where}: needs pose.pose and twist.twist") from None
    pos = xyz_of(pose_msg["position"], f"{where}.pose.pose.position")
    orientation = pose_msg["orientation"]
    if require_pose:
        require_finite(pos, f"{where}.pose.pose.position")
    if not require_pose and np.isnan(_numbers(orientation, ("x", "y", "z", "w"), where)).any():
        quat = np.full(4, np.nan)
    else:
        quat = quat_wxyz_of(orientation, f"{where}.pose.pose.orientation")
    return (pos, quat, xyz_of(twist_msg["linear"], f"{where}.twist.twist.linear"),
            xyz_of(twist_msg["angular"], f"{where}.twist.twist.angular"))


def imu(time_ns: int, frame: str, quat_wxyz, gyro_rad_s, accel_m_s2) -> Message:
    """``sensor_msgs/Imu`` in ``frame``; ``None`` for an unknown orientation or acceleration (REP 145: -1)."""
    def covariance(known):
        cov = np.zeros(9)
        cov[0] = 0.0 if known else -1.0
        return cov
    return {"header": header(time_ns, frame),
            "orientation": quaternion(quat_wxyz if quat_wxyz is not None else (1.0, 0.0, 0.0, 0.0)),
            "orientation_covariance": covariance(quat_wxyz is not None),
            "angular_velocity": vector3(gyro_rad_s), "angular_velocity_covariance": covariance(True),
            "linear_acceleration": vector3(accel_m_s2 if accel_m_s2 is not None else np.full(3, np.nan)),
            "linear_acceleration_covariance": covariance(accel_m_s2 is not None)}


def imu_parts(message: Message, role: str) -> tuple[np.ndarray, np.ndarray]:
    """``(gyro_rad_s (3,), accel_m_s2 (3,))`` of an Imu dict, nan where REP 145 marks them unknown."""
    where = f"{role} ({IMU})"
    gyro = xyz_of(message["angular_velocity"], f"{where}.angular_velocity")
    accel = xyz_of(message["linear_acceleration"], f"{where}.linear_acceleration")
    if float(np.asarray(message["angular_velocity_covariance"])[0]) == -1.0:
        gyro = np.full(3, np.nan)
    if float(np.asarray(message["linear_acceleration_covariance"])[0]) == -1.0:
        accel = np.full(3, np.nan)
    return gyro, accel


def battery(time_ns: int, frame: str, voltage_v: float) -> Message:
    """``sensor_msgs/BatteryState`` with only the voltage known (the rest nan/unknown, as the message defines)."""
    nan = math.nan
    return {"header": header(time_ns, frame), "voltage": float(voltage_v), "temperature": nan, "current": nan,
            "charge": nan, "capacity": nan, "design_capacity": nan, "percentage": nan,
            "power_supply_status": 0, "power_supply_health": 0, "power_supply_technology": 0,
            "present": bool(math.isfinite(voltage_v)), "cell_voltage": np.zeros(0, np.float32),
            "cell_temperature": np.zeros(0, np.float32), "location": "", "serial_number": ""}


def battery_voltage(messages: Mapping[str, Message], role: str) -> float:
    """The voltage of the ``role`` BatteryState, nan when absent or not ``present``."""
    message = messages.get(role)
    if message is None or not message.get("present", True):
        return math.nan
    return float(_numbers(message, ("voltage",), f"{role} ({BATTERY})")[0])


def twist(linear_xyz, angular_xyz) -> Message:
    return {"linear": vector3(linear_xyz), "angular": vector3(angular_xyz)}


# ----------------------------------------------------------------------------- state assembly helpers
def check_roles(family: str, messages: Mapping[str, Message], topics: Sequence[Topic]) -> None:
    """Raise ValueError naming the missing required roles and any role the family does not know."""
    known = {topic.role for topic in topics}
    missing = [t.role for t in topics if t.required and messages.get(t.role) is None]
    unknown = [role for role in messages if role not in known]
    if missing or unknown:
        raise ValueError(f"{family} messages: missing required roles {missing}, unknown roles {unknown}; "
                         f"roles are {sorted(known)}")


def newest_time_s(messages: Mapping[str, Message]) -> float:
    """Seconds of the newest header stamp among the messages that have a header."""
    stamps = [stamp_to_ns(m["header"]["stamp"]) for m in messages.values()
              if m is not None and isinstance(m.get("header"), Mapping)]
    if not stamps:
        raise ValueError("no message with a header: cannot time the state")
    return max(stamps) * 1e-9


def rotate_to_world(quat_wxyz: np.ndarray, vec_body: np.ndarray) -> np.ndarray:
    return quat_to_mat(quat_wxyz) @ vec_body


def rotate_to_body(quat_wxyz: np.ndarray, vec_world: np.ndarray) -> np.ndarray:
    return quat_to_mat(quat_wxyz).T @ vec_world


def check_role(role: str, topics: Sequence[Topic], family: str) -> Topic:
    for topic in topics:
        if topic.role == role:
            return topic
    raise ValueError(f"{family}: unknown command role {role!r}; roles are {[t.role for t in topics]}")
