"""The Franka Panda (FER, system image < 5) as an :class:`~robot_rl.backends.arm.ArmBackend`,
through panda-python (which bundles libfranka 0.9.2; the FR3 backend needs libfranka 0.21).

Control runs below Python: panda-python's ``CartesianImpedance`` computes joint torques at 1 kHz in
its own C++ thread and springs toward the newest reference. That controller has no reference
limiting, so the backend gives it one (:func:`~drivers.arm.panda_py_motion.reference_toward`),
refreshed at ``monitor_hz``: the reference travels toward the goal no faster than
``max_tcp_speed_m_s`` and stays within the active gain set's ``clip_pos_m`` / ``clip_rot_rad`` of
the measured TCP. Every goal is first limited by :func:`~drivers.arm.safety.limit_target`
(workspace box, per-command step and rotation, gripper range), as every arm backend's is; the TCP
speed limit acts on the reference, so commands sent back to back are not shortened.

panda-python's control thread does not raise into Python: a reflex or a lost link ends the loop
and waits in ``raise_error()``. A monitor thread (``monitor_hz``; the FR3 backend's
:class:`~drivers.arm.fr3_faults.Fr3Monitor` and :class:`~drivers.arm.fr3_faults.FaultLatch`) asks
for it and reports the reflex
by libfranka's error names (recovered automatically with ``recover()``, at most
``max_reflex_recoveries`` times between resets; kept in :attr:`PandaPyArm.reflexes`), a lost link
(:class:`~drivers.arm.fr3_safety.Fr3ConnectionLost`), the command watchdog (no fresh command for
``watchdog_s``: hold the pose) and the external-force and speed limits (hold the pose; the next
call raises :class:`~drivers.arm.fr3_safety.Fr3SafetyStop`). The error classes are the FR3
backend's, so a supervisor handles both arms alike.

panda-python is imported in ``connect()`` only (``pip install -e ".[panda]"``), through the
``library`` factory (tests pass fakes at that boundary). Every native call that can block has a deadline.
What the FR3 backend does alike (lifecycle, reset, safety stop, watchdog hold, reflex recovery) is in
:mod:`drivers.arm.franka_base`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import numpy as np

from drivers.arm import panda
from drivers.arm.fr3_motions import call_with_deadline
from drivers.arm.fr3_safety import Fr3Error, Fr3SafetyStop
from drivers.arm.franka_base import FrankaArmBase, registry_config, rig_gripper
from drivers.arm.panda_py_config import PandaConfig, load_panda_rig
from drivers.arm.panda_py_hand import PandaPyHand
from drivers.arm.panda_py_motion import (
    PandaPyLibrary,
    control_error_kind,
    impedance_matrix,
    import_panda_py,
    pose_from_o_t_ee,
    reference_toward,
    tcp_twist,
    xyzw,
)
from drivers.arm.safety import limit_target
from robot_rl.backends.arm import ArmState, ArmTarget
from robot_rl.backends.gripper import Gripper

STOP_CONTROLLER_TIMEOUT_S = 2.0


class PandaPyArm(FrankaArmBase):
    """A Franka Panda (and the Franka Hand) behind the arm contract. Nothing happens in
    ``__init__``; ``connect()`` opens the robot. Use as a context manager."""

    robot_name = "Panda"

    def __init__(self, config: PandaConfig, library: Callable[[], PandaPyLibrary] = import_panda_py,
                 clock: Callable[[], float] = time.monotonic, gripper: Gripper | None = None) -> None:
        super().__init__(config, clock, panda.JOINT_LIMITS_RAD, panda.GRIPPER_MAX_WIDTH_M, gripper)
        self._library = library
        self._lib: PandaPyLibrary | None = None
        self._controller: Any = None  # the running CartesianImpedance (self._robot: the panda_py.Panda)
        self._hand: PandaPyHand | None = None
        self._goal: tuple[np.ndarray, np.ndarray] | None = None  # TCP goal (base frame) the reference heads for
        self._reference: tuple[np.ndarray, float] | None = None  # the last reference's TCP position, and when

    # ------------------------------------------------------------------ lifecycle
    def _open(self) -> None:
        lib = self._lib = self._library()
        realtime = lib.realtime_enforce if self.config.realtime == "enforce" else lib.realtime_ignore
        self._robot = call_with_deadline(lambda: lib.Panda(self.config.host, "panda", realtime),
                                         self.config.connect_timeout_s, f"connecting to the Panda at {self.config.host}")
        try:
            self._recover("errors present at connect")  # panda-python recovers only if the robot reports errors
            if self.config.gripper == "franka_hand":
                self._hand = PandaPyHand(self.config.host, lib.Gripper, panda.GRIPPER_MAX_WIDTH_M,
                                         self.config.gripper_speed_m_s, self.config.connect_timeout_s)
                self._hand.connect()
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        if self._hand is not None:
            self._hand.close()
        self._hand = self._controller = self._robot = self._goal = None  # panda-python's destructor disconnects

    # ------------------------------------------------------------------ state
    def read_state(self) -> ArmState:
        self._require()
        state = self._read_arm()
        width = self._hand.read_width() if self._hand is not None else self._component_width()
        return dataclasses.replace(state, gripper_width_m=width)

    def _read_arm(self) -> ArmState:
        state = self._native(self._robot.get_state)
        tcp_pos, tcp_quat = self._frame.tcp_from_ee(*pose_from_o_t_ee(state.O_T_EE))
        q, dq = np.array(state.q, dtype=np.float64), np.array(state.dq, dtype=np.float64)
        linvel, angvel = tcp_twist(self._lib.fk, q, dq)
        return ArmState(time_s=self._clock(), tcp_pos_m=tcp_pos, tcp_quat_wxyz=tcp_quat, tcp_linvel_m_s=linvel,
                        tcp_angvel_rad_s=angvel, joint_pos_rad=q, joint_vel_rad_s=dq, gripper_width_m=0.0,
                        ext_wrench_n_nm=np.array(state.O_F_ext_hat_K, dtype=np.float64))

    def _native(self, fn: Callable[[], Any], deadline_s: float | None = None, what: str = "") -> Any:
        """A panda-python call (with a deadline if given); a lost link becomes :class:`Fr3ConnectionLost`."""
        try:
            return fn() if deadline_s is None else call_with_deadline(fn, deadline_s, what)
        except RuntimeError as err:
            if isinstance(err, Fr3Error) or control_error_kind(str(err)) != "network":
                raise
            raise self._lost(err) from err

    # ------------------------------------------------------------------ commands
    def command(self, target: ArmTarget) -> ArmTarget:
        """Limit ``target`` (box, step, speed), make it the goal of the impedance reference, return it."""
        self._raise_fault()
        state = self._read_arm()
        # the TCP speed limit bounds the reference's travel (_track), not the goal
        executed = limit_target(target, self._spec, state, self.config.max_tcp_speed_m_s, math.inf)
        with self._lock:
            self._raise_fault()
            self._check_safety(state)
            if self._controller is None:  # the first command after connect: impedance control starts here
                self._start_control()
            self._goal = (executed.tcp_pos_m, executed.tcp_quat_wxyz)
            self._track(state)
            if self._hand is not None:
                self._hand.command_width(executed.gripper_width_m)
            else:
                self._command_component(executed.gripper_width_m)
            self._watchdog.feed()
            self._set_holding(False)
        return executed

    def _track(self, state: ArmState) -> None:
        """Move the reference toward the goal (speed limit, clipped around the measured TCP; lock held)."""
        if self._goal is None or self._controller is None:
            return
        now = self._clock()
        last_pos, last_s = self._reference if self._reference is not None else (state.tcp_pos_m, now)
        pos, quat = reference_toward(*self._goal, last_pos, self.config.max_tcp_speed_m_s * max(now - last_s, 0.0),
                                     state.tcp_pos_m, state.tcp_quat_wxyz, self.config.gains[self.gain_set])
        ee_pos, ee_quat = self._frame.ee_from_tcp(pos, quat)
        self._native(lambda: self._controller.set_control(ee_pos, xyzw(ee_quat), self._posture_rad))
        self._reference = (pos, now)

    def stop(self) -> None:
        """Hold the current TCP pose now; the next ``command()`` moves again. After a lost
        connection or a reflex there is nothing to send: the robot has stopped itself."""
        with self._lock:
            if self._robot is not None and self._controller is not None and self._faults.recoverable:
                state = self._read_arm()
                self._goal, self._reference = (state.tcp_pos_m, state.tcp_quat_wxyz), None
                self._track(state)
            self._set_holding(True)

    def _apply_gains(self) -> None:
        """The running controller takes the new impedance at once (it is not stopped)."""
        if self._controller is not None:
            self._native(lambda: self._controller.set_impedance(impedance_matrix(self.config.gains[self.gain_set])))

    # ------------------------------------------------------------------ controllers (lock held)
    def _start_control(self) -> None:
        """Start Cartesian impedance holding the current pose (panda-python recovers errors first)."""
        gains = self.config.gains[self.gain_set]
        controller = self._lib.CartesianImpedance(
            impedance=impedance_matrix(gains), damping_ratio=self.config.damping_ratio,
            nullspace_stiffness=self.config.nullspace_stiffness_nm_rad, filter_coeff=self.config.filter_coeff)
        state = self._read_arm()
        self._native(lambda: self._robot.start_controller(controller), self.config.connect_timeout_s,
                     "starting the Panda's Cartesian impedance controller")
        self._controller, self._goal, self._reference = controller, (state.tcp_pos_m, state.tcp_quat_wxyz), None
        self._track(state)

    def _end_control(self) -> None:
        if self._controller is None:
            return
        self._controller = self._goal = None
        self._native(self._robot.stop_controller, STOP_CONTROLLER_TIMEOUT_S, "stopping the Panda's controller")

    def _run_joint_motion(self, q: np.ndarray) -> None:
        """Drive to ``q``; a reflex on the way is recovered and the motion retried (bounded by
        ``max_reflex_recoveries``). panda-python reports the reflex through ``raise_error()``."""
        while True:
            reached = self._native(lambda: self._robot.move_to_joint_position(
                q, speed_factor=self.config.reset_dynamics_factor), self.config.reset_timeout_s, "the Panda's reset motion")
            try:
                self._robot.raise_error()
            except RuntimeError as err:
                self._on_control_error(err, resume=False)
                continue
            if not reached:
                raise Fr3Error(f"the reset motion to {np.round(q, 3).tolist()} ended away from its goal without a "
                               "reflex; check the robot (Desk) and the reset pose")
            return

    def _recover(self, why: str) -> None:
        try:
            self._native(self._robot.recover, self.config.connect_timeout_s, "the Panda's error recovery")
        except RuntimeError as err:
            if isinstance(err, Fr3Error):
                raise
            raise Fr3Error(f"automatic error recovery failed ({why}): {err}; check the robot (Desk) before "
                           "reconnecting") from err

    # ------------------------------------------------------------------ faults and the monitor
    def _monitor_once(self) -> None:
        if self._robot is None or self._controller is None:
            return
        running = self._robot.is_moving()
        try:
            self._robot.raise_error()
        except RuntimeError as err:
            self._on_control_error(err)
            return
        if not running:
            raise Fr3SafetyStop("the Panda's control loop ended without an error (another client took control?); "
                                "reset() to go on")
        self._hold_if_stale()
        state = self._read_arm()
        if self._faults.fault is None:
            self._check_safety(state)
        self._track(state)

    def _on_control_error(self, err: RuntimeError, resume: bool = True) -> None:
        """libfranka ended the control loop: a lost link is a fault; a reflex is recorded, recovered
        (bounded) and (``resume``) impedance control restarts holding the pose."""
        if control_error_kind(str(err)) == "network":
            raise self._lost(err) from err
        self._on_reflex(err, resume)

    def _drop_control(self) -> None:
        self._controller = self._goal = None


def make_backend(task: Any, obs: str, rig: str | None = None, **options: Any) -> PandaPyArm:
    """Registry entry point: the Panda of the rig file ``rig`` (options are :class:`PandaConfig` fields
    and win over the file). Camera observations come from the rig's cameras, not from this backend."""
    return PandaPyArm(registry_config(PandaPyArm.robot_name, obs, rig, options, load_panda_rig, PandaConfig),
                      gripper=rig_gripper(rig))
