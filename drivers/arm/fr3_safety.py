"""The FR3 backend's safety checks and frames, as plain functions (no robot, no client library).

* :func:`limit_target`: every target goes through the arm contract's :func:`clip_target` (workspace
  box, per-command step, gripper range) with the step also bounded by a TCP speed limit;
* :func:`wrench_violation` / :func:`speed_violation`: an external wrench or a measured TCP speed
  over its limit is reported (the backend holds the pose and raises :class:`Fr3SafetyStop`);
* :func:`reflex_names`: which reflex libfranka says aborted a motion;
* :class:`TcpFrame`: the reported ``O_T_EE`` frame <-> the TCP (franka-sim reports link 7,
  0.107 m short of the flange; a robot with the hand configured reports the TCP itself).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from drivers.arm import fr3_constants as fr3
from robot_rl.backends.arm import ArmSpec, ArmState, ArmTarget, clip_target
from robot_rl.geometry import quat_conj, quat_from_axis_angle, quat_mul, quat_normalize, quat_to_mat


class Fr3Error(RuntimeError):
    """The FR3 backend cannot go on; the message says why and what to do."""


class Fr3ConnectionLost(Fr3Error):
    """The robot stopped answering (libfranka's network timeout): the arm stops on its own."""


class Fr3ReflexError(Fr3Error):
    """Reflexes kept firing after the allowed automatic recoveries."""


class Fr3SafetyStop(Fr3Error):
    """A backend safety limit (external force, measured speed) stopped the arm; it holds its pose."""


@dataclasses.dataclass(frozen=True)
class Reflex:
    """One reflex that aborted a motion: libfranka's error names (``reset_stalled``: the arm stopped
    following a reset, our own abort), when, and whether it was recovered."""

    errors: tuple[str, ...]
    message: str
    time_s: float
    recovered: bool


def limit_target(target: ArmTarget, spec: ArmSpec, state: ArmState, max_speed_m_s: float, elapsed_s: float) -> ArmTarget:
    """:func:`clip_target` with the per-command step also bounded by ``max_speed_m_s * elapsed_s``
    (``elapsed_s``: time since the previous command), so targets never outrun the speed limit."""
    pos, quat = np.asarray(target.tcp_pos_m, dtype=np.float64), np.asarray(target.tcp_quat_wxyz, dtype=np.float64)
    if pos.shape != (3,) or quat.shape != (4,) or not (np.all(np.isfinite(pos)) and np.all(np.isfinite(quat))
                                                       and np.isfinite(target.gripper_width_m)):
        raise ValueError(f"an arm target needs a finite (3,) position, (4,) quaternion and gripper width, got {target}")
    step_m = min(spec.max_step_m, max_speed_m_s * max(elapsed_s, 0.0))
    if step_m < spec.max_step_m:
        spec = dataclasses.replace(spec, max_step_m=step_m)
    return clip_target(target, spec, state)


def checked_joint_pos(joint_pos_rad: np.ndarray, spec: ArmSpec) -> np.ndarray:
    """``joint_pos_rad`` as floats, or a ValueError unless it is ``dof`` finite values inside the limits."""
    q = np.asarray(joint_pos_rad, dtype=np.float64)
    limits = spec.joint_limits_rad
    if q.shape != (spec.dof,) or not np.all(np.isfinite(q)) or np.any(q < limits[:, 0]) or np.any(q > limits[:, 1]):
        raise ValueError(f"joint_pos_rad must be {spec.dof} finite joint positions inside the limits {limits.tolist()}, "
                         f"got {q.tolist()}")
    return q


def wrench_violation(wrench_n_nm: np.ndarray, max_force_n: float, max_torque_nm: float) -> str | None:
    """A message if the external force or torque exceeds its limit, else None."""
    force, torque = float(np.linalg.norm(wrench_n_nm[:3])), float(np.linalg.norm(wrench_n_nm[3:]))
    if force > max_force_n or torque > max_torque_nm:
        return (f"external wrench {force:.1f} N / {torque:.1f} Nm exceeds the limit "
                f"{max_force_n:.1f} N / {max_torque_nm:.1f} Nm")
    return None


def speed_violation(tcp_linvel_m_s: np.ndarray, max_speed_m_s: float) -> str | None:
    """A message if the measured TCP speed exceeds ``max_speed_m_s``, else None."""
    speed = float(np.linalg.norm(tcp_linvel_m_s))
    return f"measured TCP speed {speed:.2f} m/s exceeds the limit {max_speed_m_s:.2f} m/s" if speed > max_speed_m_s else None


_REFLEX = re.compile(r"reflex!\s*\[([^\]]*)\]")


def reflex_names(message: str) -> tuple[str, ...]:
    """The error names in libfranka's ``... aborted by reflex! ["a", "b"]`` (empty if none)."""
    match = _REFLEX.search(message)
    if not match:
        return ()
    return tuple(name.strip().strip('"') for name in match.group(1).split(",") if name.strip())


@dataclasses.dataclass(frozen=True)
class TcpFrame:
    """The TCP relative to the reported end-effector frame: ``T_tcp = T_ee * (offset_m, quat_wxyz)``."""

    offset_m: np.ndarray
    quat_wxyz: np.ndarray

    @classmethod
    def from_reported(cls, reported_ee_frame: str) -> "TcpFrame":
        """The offset for what ``O_T_EE`` is on this robot: ``tcp``, ``flange`` or ``link7``."""
        along_z = {"tcp": 0.0, "flange": fr3.HAND_TCP_OFFSET_M, "link7": fr3.FLANGE_OFFSET_M + fr3.HAND_TCP_OFFSET_M}
        if reported_ee_frame not in along_z:
            raise ValueError(f"reported_ee_frame must be one of {sorted(along_z)}, got {reported_ee_frame!r}")
        yaw_rad = 0.0 if reported_ee_frame == "tcp" else fr3.HAND_YAW_RAD
        return cls(np.array([0.0, 0.0, along_z[reported_ee_frame]]), quat_from_axis_angle(np.array([0.0, 0.0, yaw_rad])))

    def tcp_from_ee(self, ee_pos_m: np.ndarray, ee_quat_wxyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP pose (base frame) of a reported end-effector pose."""
        pos = np.asarray(ee_pos_m, dtype=np.float64) + quat_to_mat(ee_quat_wxyz) @ self.offset_m
        return pos, quat_normalize(quat_mul(ee_quat_wxyz, self.quat_wxyz))

    def ee_from_tcp(self, tcp_pos_m: np.ndarray, tcp_quat_wxyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The reported end-effector pose that puts the TCP at ``tcp_pos_m, tcp_quat_wxyz``."""
        ee_quat = quat_normalize(quat_mul(tcp_quat_wxyz, quat_conj(self.quat_wxyz)))
        return np.asarray(tcp_pos_m, dtype=np.float64) - quat_to_mat(ee_quat) @ self.offset_m, ee_quat

    def tcp_velocity(self, ee_quat_wxyz: np.ndarray, ee_linvel_m_s: np.ndarray, angvel_rad_s: np.ndarray) -> np.ndarray:
        """TCP linear velocity (base frame) from the reported frame's twist: ``v + w x r``."""
        return np.asarray(ee_linvel_m_s) + np.cross(angvel_rad_s, quat_to_mat(ee_quat_wxyz) @ self.offset_m)
