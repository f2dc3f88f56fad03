"""The Franka Research 3 as an :class:`~robot_rl.backends.arm.ArmBackend`, through franky (libfranka 0.21).

Control runs in the library's real-time loop: franky's ``CartesianImpedanceTrackingMotion`` computes
joint torques at 1 kHz in C++ and picks up the newest reference every cycle; the error fed to its
spring is clipped per axis to the active gain set's ``clip_pos_m`` / ``clip_rot_rad`` (the reference
limiting of :mod:`drivers.arm.impedance`, SERL-style), so a far or blocked target never asks for
more than ``stiffness * clip``. Python, at policy rate, only sets targets, each one first limited by
:func:`~drivers.arm.fr3_safety.limit_target` (workspace box, per-command step, TCP speed).

A monitor thread (``monitor_hz``, :mod:`drivers.arm.fr3_faults`), from ``connect()`` to ``close()``,
watches what the real-time loop cannot: a reflex that aborted the motion (recovered automatically,
at most ``max_reflex_recoveries`` times between resets, each one logged and kept in
:attr:`Fr3Arm.reflexes`), a lost connection (libfranka's ~1 s network timeout, also before the first
command: :class:`~drivers.arm.fr3_safety.Fr3ConnectionLost`), the command watchdog (no fresh command
for ``watchdog_s``: hold the pose) and the external-force and speed limits (hold the pose, then the
next call raises :class:`~drivers.arm.fr3_safety.Fr3SafetyStop`).

franky is imported in ``connect()`` only (``pip install -e ".[arm]"``); it cannot share a process
with pylibfranka. Every native call that can block has a deadline. What the Panda backend does alike
(lifecycle, reset, safety stop, watchdog hold, reflex recovery) is in :mod:`drivers.arm.franka_base`.
"""

from __future__ import annotations

import atexit
import dataclasses
import time
import traceback
import weakref
from typing import Any, Callable

import numpy as np

from drivers.arm import fr3_constants as fr3
from drivers.arm.fr3_config import Fr3Config, load_fr3_rig
from drivers.arm.fr3_motions import (
    ResetStalled,
    affine,
    call_with_deadline,
    drive_joints,
    import_franky,
    is_network_error,
    pose_wxyz,
    start_cartesian_tracking,
)
from drivers.arm.fr3_safety import Fr3Error
from drivers.arm.franka_base import FrankaArmBase, registry_config, rig_gripper
from drivers.arm.safety import limit_target
from robot_rl.backends.arm import ArmState, ArmTarget
from robot_rl.backends.gripper import Gripper

GRIPPER_SPEED_M_S = 0.1
GRIPPER_DEADBAND_M = 0.002
_OPEN: "weakref.WeakSet[Fr3Arm]" = weakref.WeakSet()


@atexit.register
def _close_open_backends() -> None:
    """A backend left open at exit is closed first: freeing franky's robot while its control thread
    runs aborts the interpreter (``terminate called without an active exception``)."""
    for backend in list(_OPEN):
        backend.close()


class Fr3Arm(FrankaArmBase):
    """A Franka Research 3 (and the Franka Hand) behind the arm contract. Nothing happens in
    ``__init__``; ``connect()`` opens the robot. Use as a context manager."""

    robot_name = "FR3"

    def __init__(self, config: Fr3Config, clock: Callable[[], float] = time.monotonic,
                 gripper: Gripper | None = None) -> None:
        super().__init__(config, clock, fr3.JOINT_LIMITS_RAD, fr3.HAND_MAX_WIDTH_M, gripper)
        # franky's module, Gripper, running motion and pending gripper move (None until connected)
        self._franky = self._gripper = self._motion = self._gripper_future = None
        self._gripper_sent_m: float | None = None
        self._last_command_s: float | None = None

    # ------------------------------------------------------------------ lifecycle
    def _open(self) -> None:
        franky = self._franky = import_franky()
        realtime = franky.RealtimeConfig.Enforce if self.config.realtime == "enforce" else franky.RealtimeConfig.Ignore
        where = f"connecting to the FR3 at {self.config.host}"
        self._robot = call_with_deadline(lambda: franky.Robot(self.config.host, realtime_config=realtime),
                                         self.config.connect_timeout_s, where)
        try:
            self._robot.relative_dynamics_factor = self.config.reset_dynamics_factor
            if self._robot.has_errors:
                self._recover("errors present at connect")
            if self.config.gripper == "franka_hand":
                self._gripper = call_with_deadline(lambda: franky.Gripper(self.config.host), self.config.connect_timeout_s,
                                                   f"connecting to the Franka Hand at {self.config.host}")
        except BaseException:
            self._release()
            raise
        _OPEN.add(self)

    def _release(self) -> None:
        self._motion = self._gripper = self._gripper_future = self._robot = None  # the destructors disconnect
        _OPEN.discard(self)

    # ------------------------------------------------------------------ state
    def read_state(self) -> ArmState:
        self._require()
        state = self._read_arm()
        width = self._native(lambda: float(self._gripper.width)) if self._gripper is not None else self._component_width()
        return dataclasses.replace(state, gripper_width_m=width)

    def _read_arm(self) -> ArmState:
        state = self._native(lambda: self._robot.state)
        ee_pos, ee_quat = pose_wxyz(state.O_T_EE)
        tcp_pos, tcp_quat = self._frame.tcp_from_ee(ee_pos, ee_quat)
        # The end effector's twist from the robot model's Jacobian and the measured joint velocities
        # (franky's current_cartesian_velocity is the commanded twist, zero under torque control).
        twist = self._robot.model.zero_jacobian(self._franky.Frame.EndEffector, state) @ np.asarray(state.dq)
        angvel = np.array(twist[3:], dtype=np.float64)
        return ArmState(
            time_s=self._clock(), tcp_pos_m=tcp_pos, tcp_quat_wxyz=tcp_quat,
            tcp_linvel_m_s=self._frame.tcp_velocity(ee_quat, np.array(twist[:3], dtype=np.float64), angvel),
            tcp_angvel_rad_s=angvel, joint_pos_rad=np.array(state.q, dtype=np.float64),
            joint_vel_rad_s=np.array(state.dq, dtype=np.float64), gripper_width_m=0.0,
            ext_wrench_n_nm=np.array(state.O_F_ext_hat_K, dtype=np.float64),
        )

    def _native(self, fn: Callable[[], Any]) -> Any:
        """A franky call; its network failure becomes :class:`Fr3ConnectionLost` (and the fault).

        A failed call's frames are cleared: libfranka disconnects only when the franky ``Robot`` is
        freed, and a traceback kept by the caller must not keep it alive (a second ``Robot()``
        would then block forever)."""
        try:
            return fn()
        except BaseException as err:
            fn = None  # noqa: F841 - this frame stays in the traceback: drop its reference to the robot
            traceback.clear_frames(err.__traceback__)
            if isinstance(err, Fr3Error) or not is_network_error(self._franky, err):
                raise
            raise self._lost(err) from err

    # ------------------------------------------------------------------ commands
    def command(self, target: ArmTarget) -> ArmTarget:
        """Limit ``target`` (box, step, speed), send it to the real-time loop, return what was sent."""
        self._raise_fault()
        state = self.read_state()
        now = self._clock()
        elapsed = self.config.watchdog_s if self._last_command_s is None else now - self._last_command_s
        executed = limit_target(target, self._spec, state, self.config.max_tcp_speed_m_s, min(elapsed, self.config.watchdog_s))
        with self._lock:
            self._raise_fault()
            self._check_safety(state)
            if self._motion is None:  # the first command after connect: impedance control starts here
                self._start_control()
            self._set_reference(executed.tcp_pos_m, executed.tcp_quat_wxyz)
            self._command_gripper(executed.gripper_width_m)
            self._watchdog.feed()
            self._set_holding(False)
        self._last_command_s = now
        return executed

    def _set_reference(self, tcp_pos_m: np.ndarray, tcp_quat_wxyz: np.ndarray) -> None:
        ee_pos, ee_quat = self._frame.ee_from_tcp(tcp_pos_m, tcp_quat_wxyz)
        reference = self._franky.CartesianReference(affine(self._franky, ee_pos, ee_quat))
        self._native(lambda: self._motion.set_reference(reference))

    def _command_gripper(self, width_m: float) -> None:
        if self._gripper is None:
            self._command_component(width_m)
            return
        busy = self._gripper_future is not None and not self._gripper_future.wait(0.0)
        if busy or (self._gripper_sent_m is not None and abs(width_m - self._gripper_sent_m) < GRIPPER_DEADBAND_M):
            return
        self._gripper_future = self._native(lambda: self._gripper.move_async(width_m, GRIPPER_SPEED_M_S))
        self._gripper_sent_m = width_m

    def stop(self) -> None:
        """Hold the current TCP pose now; the next ``command()`` moves again. After a lost
        connection there is nothing to send: the robot has stopped itself."""
        with self._lock:
            if self._robot is None or not self._faults.recoverable or self._motion is None:
                self._set_holding(True)
                return
            state = self._read_arm()
            self._set_reference(state.tcp_pos_m, state.tcp_quat_wxyz)
            self._set_holding(True)

    def _apply_gains(self) -> None:
        """franky's tracking motion takes its gains at start: restart it; the arm holds the pose."""
        if self._motion is not None:
            self._end_control()
            self._start_control()
        self._set_holding(True)

    def _on_reset(self) -> None:
        self._last_command_s = None  # the first command after a reset steps as after a watchdog period

    # ------------------------------------------------------------------ motions (lock held)
    def _start_control(self) -> None:
        gains = self.config.gains[self.gain_set]
        self._motion = self._native(lambda: start_cartesian_tracking(
            self._franky, self._robot, gains, self._posture_rad, self.config.nullspace_stiffness_nm_rad,
            self.config.max_torque_rate_nm_s))

    def _end_control(self) -> None:
        """Preempt the running motion and wait for it to end (its 'preempted' exception is expected)."""
        if self._motion is None:
            return
        self._motion = None
        try:
            self._native(self._robot.stop)
            self._native(lambda: self._robot.join_motion(timeout=2.0))
        except self._franky.ControlException:
            pass

    def _run_joint_motion(self, q: np.ndarray) -> None:
        """Drive to ``q``; a reflex on the way is recovered and the motion retried (bounded by
        ``max_reflex_recoveries``)."""
        while True:
            try:
                done = self._native(lambda: drive_joints(self._franky, self._robot, q, self.config.reset_dynamics_factor,
                                                         self.config.reset_timeout_s, self._clock))
            except (self._franky.ControlException, ResetStalled) as err:
                self._on_reflex(err, resume=False)  # a stall counts like a reflex: recover, retry (bounded)
                continue
            if not done:
                raise Fr3Error(f"the reset motion to {np.round(q, 3).tolist()} did not settle within "
                               f"{self.config.reset_timeout_s:.0f} s of its planned duration")
            return

    def _recover(self, why: str) -> None:
        ok = self._native(self._robot.recover_from_errors)
        if not ok:
            self._native(lambda: self._robot.state)  # a dead link is reported as such, not as a failed recovery
            raise Fr3Error(f"automatic error recovery failed ({why}); check the robot (Desk) before reconnecting")

    # ------------------------------------------------------------------ faults and the monitor
    def _monitor_once(self) -> None:
        """One check of the monitor thread (lock held): a reflex that ended the motion, the watchdog,
        the safety limits. Before the first command (no motion) it reads the state, so a lost link
        is reported then too."""
        if self._robot is None:
            return
        if self._motion is not None:
            try:
                self._native(self._robot.poll_motion)
            except self._franky.ControlException as err:
                self._on_reflex(err)
                return
            if not self._robot.is_in_control:  # just ended: the next poll says why (a state read now would block ~1 s)
                return
            self._hold_if_stale()
        if self._faults.fault is None:
            self._check_safety(self._read_arm())

    def _drop_control(self) -> None:
        self._motion = None


def make_backend(task: Any, obs: str, rig: str | None = None, **options: Any) -> Fr3Arm:
    """Registry entry point: the FR3 of the rig file ``rig`` (options are :class:`Fr3Config` fields
    and win over the file), with the rig's ``[gripper.<kind>]`` in place of the Franka Hand if it has one.
    Camera observations come from the rig's cameras, not from this backend."""
    return Fr3Arm(registry_config(Fr3Arm.robot_name, obs, rig, options, load_fr3_rig, Fr3Config),
                  gripper=rig_gripper(rig))
