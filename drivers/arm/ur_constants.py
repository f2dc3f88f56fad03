"""Universal Robots constants and kinematics, from UR's published DH parameters ("DH parameters for
calculations of kinematics and dynamics", universal-robots.com) and the RTDE guide's safety modes.

* :data:`MODELS`: per model, the DH lengths, reach and the controller's RTDE rate;
* :func:`flange_pose`: forward kinematics of the nominal DH chain (flange in the base frame), used
  by the backend to check at connect that the rig names the robot it talks to, and by the tests'
  fake controller to place the TCP after a joint motion;
* :func:`pose_from_rotvec` / :func:`rotvec_pose`: UR's ``[x, y, z, rx, ry, rz]`` poses (rotation
  vector, base frame) <-> our position + ``(w, x, y, z)`` quaternion;
* :data:`SAFETY_MODES`: ``getSafetyMode()`` codes by name.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from robot_rl.geometry import (
    quat_conj,
    quat_from_axis_angle,
    quat_mul,
    quat_normalize,
    quat_to_axis_angle,
)

#: DH twist angles [rad], the same for every UR arm (standard DH: Rz(theta) Tz(d) Tx(a) Rx(alpha)).
DH_ALPHA_RAD = (math.pi / 2, 0.0, 0.0, math.pi / 2, -math.pi / 2, 0.0)


@dataclasses.dataclass(frozen=True)
class UrModel:
    """One UR arm: DH link lengths (``d1, d4, d5, d6`` offsets and ``a2, a3`` lengths, metres),
    reach [m] and the controller's RTDE rate [Hz] (e-Series 500 Hz, CB3 125 Hz)."""

    d_m: tuple[float, float, float, float, float, float]
    a_m: tuple[float, float, float, float, float, float]
    reach_m: float
    rtde_hz: float


def _model(d1: float, a2: float, a3: float, d4: float, d5: float, d6: float, reach_m: float, rtde_hz: float) -> UrModel:
    return UrModel((d1, 0.0, 0.0, d4, d5, d6), (0.0, a2, a3, 0.0, 0.0, 0.0), reach_m, rtde_hz)


MODELS = {
    "ur3e": _model(0.15185, -0.24355, -0.2132, 0.13105, 0.08535, 0.0921, 0.5, 500.0),
    "ur5e": _model(0.1625, -0.425, -0.3922, 0.1333, 0.0997, 0.0996, 0.85, 500.0),
    "ur10e": _model(0.1807, -0.6127, -0.57155, 0.17415, 0.11985, 0.11655, 1.3, 500.0),
    "ur16e": _model(0.1807, -0.4784, -0.36, 0.17415, 0.11985, 0.11655, 0.9, 500.0),
    "ur3": _model(0.1519, -0.24365, -0.21325, 0.11235, 0.08535, 0.0819, 0.5, 125.0),
    "ur5": _model(0.089159, -0.425, -0.39225, 0.10915, 0.09465, 0.0823, 0.85, 125.0),
    "ur10": _model(0.1273, -0.612, -0.5723, 0.163941, 0.1157, 0.0922, 1.3, 125.0),
}

#: Joint position limits [rad]: every UR joint turns +-360 degrees.
JOINT_LIMITS_RAD = np.tile([-2 * math.pi, 2 * math.pi], (6, 1))
JOINT_LIMITS_RAD.setflags(write=False)

#: A ready pose with the tool pointing down, the elbow up (joints 1..6).
READY_JOINT_POS_RAD = (0.0, -math.pi / 2, math.pi / 2, -math.pi / 2, -math.pi / 2, 0.0)

#: ``getSafetyMode()`` codes (RTDE guide; the UR ROS driver's ``SafetyMode`` message).
SAFETY_MODES = {
    1: "NORMAL", 2: "REDUCED", 3: "PROTECTIVE_STOP", 4: "RECOVERY", 5: "SAFEGUARD_STOP",
    6: "SYSTEM_EMERGENCY_STOP", 7: "ROBOT_EMERGENCY_STOP", 8: "VIOLATION", 9: "FAULT",
    10: "VALIDATE_JOINT_ID", 11: "UNDEFINED_SAFETY_MODE", 12: "AUTOMATIC_MODE_SAFEGUARD_STOP",
    13: "SYSTEM_THREE_POSITION_ENABLING_STOP",
}
#: Safety modes the arm can move in.
RUNNING_SAFETY_MODES = (1, 2)
#: Safety modes that are an emergency stop (released on the robot, never by software).
EMERGENCY_SAFETY_MODES = (6, 7)


def dh_transform(theta: float, d: float, a: float, alpha: float) -> np.ndarray:
    """One standard DH link: ``Rz(theta) Tz(d) Tx(a) Rx(alpha)`` as a ``4x4`` transform."""
    ct, st, ca, sa = math.cos(theta), math.sin(theta), math.cos(alpha), math.sin(alpha)
    return np.array([[ct, -st * ca, st * sa, a * ct], [st, ct * ca, -ct * sa, a * st], [0.0, sa, ca, d], [0.0, 0.0, 0.0, 1.0]])


def flange_transform(model: UrModel, joint_pos_rad: np.ndarray) -> np.ndarray:
    """The ``4x4`` flange pose in the base frame at ``joint_pos_rad`` (nominal DH, no calibration)."""
    transform = np.eye(4)
    for theta, d, a, alpha in zip(joint_pos_rad, model.d_m, model.a_m, DH_ALPHA_RAD):
        transform = transform @ dh_transform(float(theta), d, a, alpha)
    return transform


def mat_to_quat(rot: np.ndarray) -> np.ndarray:
    """``(w, x, y, z)`` of a rotation matrix (Shepperd's method: the largest diagonal term first)."""
    trace = float(np.trace(rot))
    if trace > 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = [0.25 * s, (rot[2, 1] - rot[1, 2]) / s, (rot[0, 2] - rot[2, 0]) / s, (rot[1, 0] - rot[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(rot)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(max(1.0 + rot[i, i] - rot[j, j] - rot[k, k], 1e-300))
        q = [0.0] * 4
        q[0], q[1 + i] = (rot[k, j] - rot[j, k]) / s, 0.25 * s
        q[1 + j], q[1 + k] = (rot[j, i] + rot[i, j]) / s, (rot[k, i] + rot[i, k]) / s
    return quat_normalize(np.array(q))


def tcp_pose(model: UrModel, joint_pos_rad: np.ndarray, tcp_offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The TCP (position, ``wxyz`` quaternion) in the base frame: flange pose times ``tcp_offset``
    (UR's ``[x, y, z, rx, ry, rz]`` flange-to-TCP pose, as ``getTCPOffset()`` returns it)."""
    flange = flange_transform(model, joint_pos_rad)
    offset_pos, offset_quat = pose_from_rotvec(tcp_offset)
    flange_quat = mat_to_quat(flange[:3, :3])
    return flange[:3, 3] + flange[:3, :3] @ offset_pos, quat_normalize(quat_mul(flange_quat, offset_quat))


def pose_from_rotvec(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position [m] and ``(w, x, y, z)`` quaternion of a UR pose ``[x, y, z, rx, ry, rz]``."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (6,) or not np.all(np.isfinite(pose)):
        raise ValueError(f"a UR pose is 6 finite numbers [x, y, z, rx, ry, rz], got {pose.tolist()}")
    return pose[:3].copy(), quat_from_axis_angle(pose[3:])


def rotvec_pose(pos_m: np.ndarray, quat_wxyz: np.ndarray) -> list[float]:
    """The UR pose ``[x, y, z, rx, ry, rz]`` (a plain list, as ur_rtde takes it) of a position + quaternion."""
    return [float(v) for v in np.concatenate([np.asarray(pos_m, dtype=np.float64), quat_to_axis_angle(quat_wxyz)])]


def rotation_between(from_quat_wxyz: np.ndarray, to_quat_wxyz: np.ndarray) -> np.ndarray:
    """The rotation vector (base frame) turning ``from`` into ``to``."""
    return quat_to_axis_angle(quat_mul(to_quat_wxyz, quat_conj(quat_normalize(from_quat_wxyz))))

