"""The FR3 backend's errors, reflex names and frames, as plain functions (no robot, no client library).

* :func:`limit_target`, :func:`checked_joint_pos`, :func:`wrench_violation`, :func:`speed_violation`:
  the family-generic checks, now in :mod:`drivers.arm.safety` (imported here under their old names);
  the backend holds the pose and raises :class:`Fr3SafetyStop` on a violation;
* :func:`reflex_names`: which reflex libfranka says aborted a motion;
* :class:`TcpFrame`: the reported ``O_T_EE`` frame <-> the TCP (franka-sim reports link 7,
  0.107 m short of the flange; a robot with the hand configured reports the TCP itself).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from drivers.arm import fr3_constants as fr3
from drivers.arm.safety import checked_joint_pos, limit_target, speed_violation, wrench_violation
from robot_rl.geometry import quat_conj, quat_from_axis_angle, quat_mul, quat_normalize, quat_to_mat


__all__ = [
    "Fr3ConnectionLost", "Fr3Error", "Fr3ReflexError", "Fr3SafetyStop", "Reflex", "TcpFrame", "checked_joint_pos",
    "limit_target", "reflex_names", "speed_violation", "wrench_violation",
]


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
