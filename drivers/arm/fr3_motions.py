"""The franky motions the FR3 backend runs, and the helpers around franky's native calls.

Both motions are torque motions computed in franky's 1 kHz real-time loop, so a missed cycle on a
loaded, non-real-time PC holds the last torque instead of tripping a motion-generator
discontinuity reflex (franky's ``JointMotion``, a motion generator, tripped them on every try at
70-89 % command success here):

* :func:`start_cartesian_tracking`: Cartesian impedance with the gain set's per-axis error clip
  (reference limiting), a posture task in the nullspace, tracking the newest reference;
* :func:`drive_joints`: a joint reset as joint impedance tracking a minimum-jerk trajectory
  streamed from Python, then settling at the goal.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from drivers.arm import fr3_constants as fr3
from drivers.arm.fr3_config import GainSet
from robot_rl.rate import Rate

#: Joint stiffness [Nm/rad] of the reset motion (the gains of libfranka's joint impedance example).
RESET_STIFFNESS_NM_RAD = np.array([600.0, 600.0, 600.0, 600.0, 250.0, 150.0, 50.0])
RESET_STREAM_HZ = 100.0
RESET_TOLERANCE_RAD = 0.02
RESET_SETTLED_RAD_S = 0.02
RESET_MAX_LAG_RAD = 0.1
RESET_STALL_S = 1.0
#: libfranka's control period [s]: franky's torque limiter works per cycle.
CONTROL_PERIOD_S = 0.001


class ResetStalled(RuntimeError):
    """The arm stopped following the reset reference (franka-sim: the control loop lost contact)."""


def import_franky() -> Any:
    try:
        import franky
    except ImportError as err:
        raise ImportError('the FR3 backend needs franky-control: pip install -e ".[arm]" -c constraints.txt') from err
    return franky


def is_network_error(franky: Any, err: BaseException) -> bool:
    """Whether a franky error means the robot stopped answering (some surface as a bare RuntimeError)."""
    return isinstance(err, franky.NetworkException) or "Net Exception" in str(err)


def call_with_deadline(fn: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Run a native call that may block forever (franky releases the GIL) in a daemon thread;
    raise a clear TimeoutError when it has not returned after ``timeout_s``."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # handed to the caller below
            box["error"] = err

    worker = threading.Thread(target=run, name=f"fr3: {what}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"{what} did not return within {timeout_s:.1f} s (is another client connected to the robot? "
                           "libfranka admits one)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def affine(franky: Any, pos_m: np.ndarray, quat_wxyz: np.ndarray) -> Any:
    """A franky ``Affine`` (its quaternions are x, y, z, w) of a position and a (w, x, y, z) quaternion."""
    w, x, y, z = quat_wxyz
    return franky.Affine(np.asarray(pos_m, dtype=np.float64), np.array([x, y, z, w]))


def pose_wxyz(pose: Any) -> tuple[np.ndarray, np.ndarray]:
    """Position and (w, x, y, z) quaternion of a franky ``Affine``."""
    x, y, z, w = pose.quaternion
    return np.array(pose.translation, dtype=np.float64), np.array([w, x, y, z])


def start_cartesian_tracking(franky: Any, robot: Any, gains: GainSet, posture_rad: np.ndarray,
                             nullspace_stiffness_nm_rad: float, max_torque_rate_nm_s: float) -> Any:
    """Start Cartesian impedance tracking holding the current end-effector pose; return the motion.
    Its torques change at most ``max_torque_rate_nm_s`` (franky's ``max_delta_tau`` per cycle)."""
    motion = franky.CartesianImpedanceTrackingMotion(
        translational_stiffness=gains.stiffness_pos_n_m, rotational_stiffness=gains.stiffness_rot_nm_rad,
        posture_task=franky.PostureTask(np.asarray(posture_rad, dtype=np.float64), float(nullspace_stiffness_nm_rad)),
        translational_error_clip=np.full(3, gains.clip_pos_m), rotational_error_clip=np.full(3, gains.clip_rot_rad),
        max_delta_tau=max_torque_rate_nm_s * CONTROL_PERIOD_S)
    motion.set_reference(franky.CartesianReference(robot.state.O_T_EE))
    robot.move(motion, asynchronous=True)
    return motion


def min_jerk(q0: np.ndarray, q1: np.ndarray, s: float, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Position and velocity at phase ``s`` in [0, 1] of the minimum-jerk path from ``q0`` to ``q1``."""
    s = min(max(s, 0.0), 1.0)
    shape = 10 * s**3 - 15 * s**4 + 6 * s**5
    rate = (30 * s**2 - 60 * s**3 + 30 * s**4) / duration_s
    delta = np.asarray(q1) - np.asarray(q0)
    return np.asarray(q0) + shape * delta, rate * delta


def reset_duration_s(q0: np.ndarray, q1: np.ndarray, speed_fraction: float) -> float:
    """Time for the minimum-jerk path (peak speed 1.875 x mean) at ``speed_fraction`` of the joint
    velocity limits; at least 0.5 s."""
    limits = fr3.JOINT_VELOCITY_LIMITS_RAD_S * speed_fraction
    return max(0.5, float(np.max(1.875 * np.abs(np.asarray(q1) - np.asarray(q0)) / limits)))


def drive_joints(franky: Any, robot: Any, q_goal: np.ndarray, speed_fraction: float, timeout_s: float,
                 clock: Callable[[], float]) -> bool:
    """Drive to ``q_goal`` by joint impedance along a minimum-jerk path, wait until every joint is
    within ``RESET_TOLERANCE_RAD`` and at rest (``RESET_SETTLED_RAD_S``), and stop the motion.
    Returns whether it got there in time; a reflex on the way is franky's ``ControlException``.

    The path's clock advances at most two stream periods per step and only while every joint is
    within ``RESET_MAX_LAG_RAD`` of the reference: a stalled Python loop (a loaded PC) or a slow
    joint never makes the reference jump ahead, which would ask for torques beyond the joint limits.
    A reference that cannot advance for ``RESET_STALL_S`` raises :class:`ResetStalled`."""
    q0 = np.array(robot.state.q, dtype=np.float64)
    duration_s = reset_duration_s(q0, q_goal, speed_fraction)
    motion = franky.JointImpedanceTrackingMotion(stiffness=RESET_STIFFNESS_NM_RAD)
    motion.set_reference(franky.JointReference(q=q0))
    robot.move(motion, asynchronous=True)
    rate, phase_s, q_ref = Rate(RESET_STREAM_HZ), 0.0, q0
    deadline, last = clock() + duration_s + timeout_s, clock()
    advanced = last
    try:
        while clock() < deadline:
            now, q_now = clock(), np.array(robot.state.q, dtype=np.float64)
            lag = np.abs(q_ref - q_now)
            if np.max(lag) < RESET_MAX_LAG_RAD:
                phase_s, advanced = min(duration_s, phase_s + min(now - last, 2.0 / RESET_STREAM_HZ)), now
            elif now - advanced > RESET_STALL_S:
                raise ResetStalled(f"joint {int(np.argmax(lag)) + 1} lags the reset reference by {np.max(lag):.2f} rad "
                                   f"for {now - advanced:.1f} s")
            last = now
            q_ref, dq_ref = min_jerk(q0, q_goal, phase_s / duration_s, duration_s)
            motion.set_reference(franky.JointReference(q=q_ref, dq=dq_ref))
            robot.poll_motion()  # raises the reflex that aborted it
            if phase_s >= duration_s and _settled(robot.state, q_goal):
                return True
            rate.sleep()
        return False
    finally:
        if robot.is_in_control:
            robot.stop()
            try:
                robot.join_motion(timeout=2.0)
            except franky.ControlException:  # "preempted": the stop we asked for
                pass


def _settled(state: Any, q_goal: np.ndarray) -> bool:
    return bool(np.max(np.abs(np.array(state.q) - q_goal)) < RESET_TOLERANCE_RAD
                and np.max(np.abs(np.array(state.dq))) < RESET_SETTLED_RAD_S)
