"""Arm safety checks every arm backend can share, as plain functions (no robot, no client library).

* :func:`limit_target`: the arm contract's :func:`~robot_rl.backends.arm.clip_target` (workspace box,
  per-command step, gripper range) with the step also bounded by a TCP speed limit;
* :func:`checked_joint_pos`: a joint target is ``dof`` finite values inside the spec's limits;
* :func:`wrench_violation` / :func:`speed_violation`: an external wrench or a measured TCP speed over
  its limit is reported as a message (the backend holds the pose and raises its safety stop).

The FR3 backend uses them (and :mod:`drivers.arm.fr3_safety` keeps their old names).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from robot_rl.backends.arm import ArmSpec, ArmState, ArmTarget, clip_target


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
