"""What the Panda backend uses of panda-python, and the plain functions around it (no robot needed).

* :class:`PandaPyLibrary`: the library's pieces the backend calls, built by :func:`import_panda_py`
  (tests hand the backend fakes of the same shape: the library boundary is this one object);
* :func:`pose_from_o_t_ee`, :func:`tcp_twist`: state conversions (``O_T_EE`` is a column-major
  4x4; the TCP twist comes from the measured joint velocities through panda-python's ``fk``);
* :func:`reference_toward`: the reference limiting panda-python's ``CartesianImpedance`` lacks
  (it springs toward whatever reference it is given): the reference travels toward the goal at most
  at the TCP speed limit and stays within ``clip_pos_m`` per axis (``clip_rot_rad`` in angle) of
  the measured TCP; the backend's monitor thread refreshes it, so the arm keeps approaching a far
  goal at a bounded speed with a bounded spring force;
* :func:`control_error_kind`: whether a libfranka error is a reflex or a lost connection.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable

import mujoco
import numpy as np

from drivers.arm.fr3_config import GainSet
from robot_rl.geometry import limit_rotation, quat_conj, quat_mul, quat_to_axis_angle

#: panda-python's ``fk`` is the hand TCP; the TCP twist is its derivative along ``dq`` (seconds).
TWIST_STEP_S = 1e-3
_NETWORK = re.compile(r"libfranka: (UDP|TCP|Network|Connection)|Connection to FCI|Timeout", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class PandaPyLibrary:
    """The parts of panda-python the backend calls (``panda_py.Panda(hostname, name, realtime_config)``,
    ``panda_py.controllers.CartesianImpedance``, ``panda_py.libfranka.Gripper(address)``,
    ``panda_py.fk(q) -> 4x4``, libfranka's two ``RealtimeConfig`` values)."""

    Panda: Callable[..., Any]
    CartesianImpedance: Callable[..., Any]
    Gripper: Callable[[str], Any]
    fk: Callable[[np.ndarray], np.ndarray]
    realtime_enforce: Any
    realtime_ignore: Any


def import_panda_py() -> PandaPyLibrary:
    """The installed panda-python (imported here, when a backend connects)."""
    try:
        import panda_py
        from panda_py import controllers, libfranka
    except ImportError as err:
        raise ImportError('the Panda backend needs panda-python: pip install -e ".[panda]" -c constraints.txt') from err
    return PandaPyLibrary(Panda=panda_py.Panda, CartesianImpedance=controllers.CartesianImpedance,
                          Gripper=libfranka.Gripper, fk=panda_py.fk,
                          realtime_enforce=libfranka.RealtimeConfig.kEnforce,
                          realtime_ignore=libfranka.RealtimeConfig.kIgnore)


def pose_from_matrix(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position and (w, x, y, z) quaternion of a 4x4 homogeneous transform."""
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(pose[:3, :3], dtype=np.float64).ravel())
    return np.array(pose[:3, 3], dtype=np.float64), quat


def pose_from_o_t_ee(o_t_ee: Any) -> tuple[np.ndarray, np.ndarray]:
    """Position and (w, x, y, z) quaternion of libfranka's ``O_T_EE`` (16 values, column-major)."""
    return pose_from_matrix(np.asarray(o_t_ee, dtype=np.float64).reshape(4, 4, order="F"))


def xyzw(quat_wxyz: np.ndarray) -> np.ndarray:
    """A (w, x, y, z) quaternion in panda-python's (Eigen's) (x, y, z, w) order."""
    w, x, y, z = quat_wxyz
    return np.array([x, y, z, w])


def tcp_twist(fk: Callable[[np.ndarray], np.ndarray], q_rad: np.ndarray, dq_rad_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TCP linear [m/s] and angular [rad/s] velocity (base frame) at joint positions ``q_rad`` moving
    at ``dq_rad_s``: the central difference of ``fk`` along ``dq`` (no finite-differenced positions)."""
    ahead, behind = fk(q_rad + dq_rad_s * TWIST_STEP_S), fk(q_rad - dq_rad_s * TWIST_STEP_S)
    linvel = (ahead[:3, 3] - behind[:3, 3]) / (2 * TWIST_STEP_S)
    _, quat_ahead = pose_from_matrix(ahead)
    _, quat_behind = pose_from_matrix(behind)
    angvel = quat_to_axis_angle(quat_mul(quat_ahead, quat_conj(quat_behind))) / (2 * TWIST_STEP_S)
    return np.asarray(linvel, dtype=np.float64), np.asarray(angvel, dtype=np.float64)


def reference_toward(goal_pos_m: np.ndarray, goal_quat_wxyz: np.ndarray, last_reference_pos_m: np.ndarray,
                     max_travel_m: float, tcp_pos_m: np.ndarray, tcp_quat_wxyz: np.ndarray,
                     gains: GainSet) -> tuple[np.ndarray, np.ndarray]:
    """The next impedance reference toward a TCP goal: at most ``max_travel_m`` from the last
    reference (the TCP speed limit times the time since it was sent), then within
    ``gains.clip_pos_m`` of the measured TCP on every axis and ``gains.clip_rot_rad`` of its
    orientation (so the spring force stays under ``stiffness * clip`` however far the goal is)."""
    travel = np.asarray(goal_pos_m, dtype=np.float64) - last_reference_pos_m
    distance = float(np.linalg.norm(travel))
    pos = last_reference_pos_m + (travel * (max_travel_m / distance) if distance > max_travel_m else travel)
    pos = tcp_pos_m + np.clip(pos - tcp_pos_m, -gains.clip_pos_m, gains.clip_pos_m)
    return pos, limit_rotation(tcp_quat_wxyz, np.asarray(goal_quat_wxyz, dtype=np.float64), gains.clip_rot_rad)


def impedance_matrix(gains: GainSet) -> np.ndarray:
    """panda-python's 6x6 Cartesian stiffness of a gain set (translation, then rotation)."""
    return np.diag([gains.stiffness_pos_n_m] * 3 + [gains.stiffness_rot_nm_rad] * 3)


def control_error_kind(message: str) -> str:
    """``"network"`` if libfranka's error means the robot stopped answering, else ``"reflex"``
    (a control exception: ``... aborted by reflex! [...]`` or another abort the robot reported)."""
    return "network" if _NETWORK.search(message) and "reflex" not in message else "reflex"
