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
with pylibfranka. Every native call that can block has a deadline.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import threading
import time
import traceback
import weakref
from typing import Any, Callable

import numpy as np

from drivers.arm import fr3_constants as fr3
from drivers.arm.fr3_config import Fr3Config, load_fr3_rig
from drivers.arm.fr3_faults import FaultLatch, Fr3Monitor
from drivers.arm.fr3_motions import (
    ResetStalled, affine, call_with_deadline, drive_joints, import_franky, is_network_error, pose_wxyz, start_cartesian_tracking,
)
from drivers.arm.fr3_safety import Fr3ConnectionLost, Fr3Error, Fr3SafetyStop, Reflex, TcpFrame
from drivers.arm.safety import checked_joint_pos, limit_target, speed_violation, wrench_violation
from robot_rl.backends.arm import ArmSpec, ArmState, ArmTarget
from robot_rl.backends.base import ConnectOnEnter
from robot_rl.backends.watchdog import CommandWatchdog
from robot_rl.rate import Rate

log = logging.getLogger(__name__)
GRIPPER_SPEED_M_S = 0.1
GRIPPER_DEADBAND_M = 0.002
_OPEN: "weakref.WeakSet[Fr3Arm]" = weakref.WeakSet()


@atexit.register
def _close_open_backends() -> None:
    """A backend left open at exit is closed first: freeing franky's robot while its control thread
    runs aborts the interpreter (``terminate called without an active exception``)."""
    for backend in list(_OPEN):
        backend.close()


class Fr3Arm(ConnectOnEnter):
    """A Franka Research 3 (and the Franka Hand) behind the arm contract. Nothing happens in
    ``__init__``; ``connect()`` opens the robot. Use as a context manager."""

    family = "arm"

    def __init__(self, config: Fr3Config, clock: Callable[[], float] = time.monotonic) -> None:
        self.config, self._clock = config, clock
        self._spec = ArmSpec(
            dof=7, joint_limits_rad=np.array(fr3.JOINT_LIMITS_RAD),
            workspace_low_m=np.asarray(config.workspace_low_m, dtype=np.float64),
            workspace_high_m=np.asarray(config.workspace_high_m, dtype=np.float64),
            gripper_max_width_m=fr3.HAND_MAX_WIDTH_M if config.gripper == "franka_hand" else 0.0,
            cameras={}, max_step_m=config.max_step_m, max_step_rad=config.max_step_rad,
            home_joint_pos_rad=np.asarray(config.reset_joint_pos_rad, dtype=np.float64),
        )
        self._frame = TcpFrame.from_reported(config.reported_ee_frame)
        self._lock = threading.RLock()
        self._watchdog = CommandWatchdog(config.watchdog_s, clock)
        # franky's module, Robot, Gripper, running motion and pending gripper move (None until connected)
        self._franky = self._robot = self._gripper = self._motion = self._gripper_future = None
        self._gripper_sent_m: float | None = None
        self._faults = FaultLatch(config.max_reflex_recoveries, clock)
        self.fault_event = self._faults.event  #: set when a fault is recorded (a test or a supervisor waits on it)
        self._monitor = Fr3Monitor(self._monitor_once, self._lock, self._faults, config.monitor_hz)
        self._holding = True
        self._last_command_s: float | None = None
        self._rate: Rate | None = None
        self._posture_rad = self._spec.home_joint_pos_rad  # the nullspace pulls toward the last reset pose
        self.gain_set = config.gain_set

    # ------------------------------------------------------------------ lifecycle
    @property
    def spec(self) -> ArmSpec:
        return self._spec

    @property
    def connected(self) -> bool:
        return self._robot is not None

    @property
    def fault(self) -> Fr3Error | None:
        """The fault that stops this backend now (None when it runs)."""
        return self._faults.fault

    @property
    def reflexes(self) -> list[Reflex]:
        """Every reflex that aborted a motion since ``connect()``, oldest first."""
        return self._faults.reflexes

    @property
    def holding(self) -> bool:
        """Whether the arm holds its pose (after ``stop()``, the watchdog or a safety stop)."""
        return self._holding

    def connect(self) -> None:
        if self._robot is not None:
            return
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
        self._faults.clear()
        _OPEN.add(self)
        self._monitor.start()  # from now on: a fault before the first command is seen too

    def close(self) -> None:
        """Stop the monitor and the motion, and drop the connection (always safe to call)."""
        self._monitor.stop()
        with self._lock:
            try:
                if self._robot is not None and self._faults.recoverable:
                    self._end_motion()
            finally:
                self._release()
                _OPEN.discard(self)

    def _release(self) -> None:
        self._motion = self._gripper = self._gripper_future = self._robot = None  # the destructors disconnect

    # ------------------------------------------------------------------ state
    def read_state(self) -> ArmState:
        self._require()
        state = self._read_arm()
        width = self._native(lambda: float(self._gripper.width)) if self._gripper is not None else 0.0
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
            lost = Fr3ConnectionLost(f"the FR3 at {self.config.host} stopped answering ({err}); the robot stops "
                                     "on its own; reconnect after checking it")
            self._faults.set(lost)
            raise lost from err

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
                self._start_tracking()
            self._set_reference(executed.tcp_pos_m, executed.tcp_quat_wxyz)
            self._command_gripper(executed.gripper_width_m)
            self._watchdog.feed()
            self._holding = False
        self._last_command_s = now
        return executed

    def _set_reference(self, tcp_pos_m: np.ndarray, tcp_quat_wxyz: np.ndarray) -> None:
        ee_pos, ee_quat = self._frame.ee_from_tcp(tcp_pos_m, tcp_quat_wxyz)
        reference = self._franky.CartesianReference(affine(self._franky, ee_pos, ee_quat))
        self._native(lambda: self._motion.set_reference(reference))

    def _command_gripper(self, width_m: float) -> None:
        if self._gripper is None:
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
                self._holding = True
                return
            state = self._read_arm()
            self._set_reference(state.tcp_pos_m, state.tcp_quat_wxyz)
            self._holding = True

    def set_gains(self, name: str) -> None:
        """Switch to the gain set ``name`` (e.g. ``"compliant"``, ``"precise"``) holding the pose."""
        if name not in self.config.gains:
            raise ValueError(f"unknown gain set {name!r}; this rig has {sorted(self.config.gains)}")
        self._raise_fault()
        with self._lock:
            self.gain_set = name
            if self._motion is not None:
                self._end_motion()
                self._start_tracking()
            self._holding = True

    def sync(self, period_s: float) -> None:
        """Wait until ``period_s`` has passed since the previous ``sync`` (targets stay set)."""
        if self._rate is None or abs(self._rate.period - period_s) > 1e-9:
            self._rate = Rate(1.0 / period_s)
        self._rate.sleep()
        self._raise_fault()

    def reset(self, joint_pos_rad: np.ndarray | None = None, target: ArmTarget | None = None) -> ArmState:
        """Drive to ``joint_pos_rad`` (default: the rig's reset pose) with a joint motion, clear
        safety stops and the reflex count, resume impedance control; then go to ``target`` if given."""
        q = checked_joint_pos(self._spec.home_joint_pos_rad if joint_pos_rad is None else joint_pos_rad, self._spec)
        self._require()
        if not self._faults.recoverable:
            raise self._faults.fault
        with self._lock:
            self._end_motion()
            self._run_joint_motion(q)
            self._posture_rad = q
            self._faults.clear()
            self._faults.recoveries = 0
            self._start_tracking()
            self._holding, self._last_command_s = True, None
        if target is not None:
            self._approach(target)
        return self.read_state()

    def _approach(self, target: ArmTarget, timeout_s: float = 5.0, tolerance_m: float = 0.005) -> None:
        """Command ``target`` every period until the TCP is within ``tolerance_m`` (or time is up)."""
        rate, deadline = Rate(20.0), self._clock() + timeout_s
        while self._clock() < deadline:
            sent = self.command(target)
            if np.linalg.norm(sent.tcp_pos_m - self.read_state().tcp_pos_m) < tolerance_m and np.allclose(
                    sent.tcp_pos_m, target.tcp_pos_m, atol=1e-9):
                return
            rate.sleep()
        log.warning("FR3 reset: TCP did not reach %s within %.1f s", np.round(target.tcp_pos_m, 3), timeout_s)

    def render(self, camera: str, height: int | None = None, width: int | None = None) -> np.ndarray:
        raise ValueError(f"the FR3 backend has no camera {camera!r}: a rig's cameras are the [cameras] tables of "
                         "its rig file (drivers.cameras.rig)")

    # ------------------------------------------------------------------ motions (lock held)
    def _start_tracking(self) -> None:
        gains = self.config.gains[self.gain_set]
        self._motion = self._native(lambda: start_cartesian_tracking(
            self._franky, self._robot, gains, self._posture_rad, self.config.nullspace_stiffness_nm_rad,
            self.config.max_torque_rate_nm_s))

    def _end_motion(self) -> None:
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
            if self._watchdog.expired() and not self._holding:
                log.info("FR3: no fresh command for %.0f ms: holding the pose", self._watchdog.age_s() * 1e3)
                self.stop()
        if self._faults.fault is None:
            self._check_safety(self._read_arm())

    def _check_safety(self, state: ArmState) -> None:
        """Hold the pose and raise :class:`Fr3SafetyStop` if the force or speed limit is exceeded."""
        problem = (wrench_violation(state.ext_wrench_n_nm, self.config.max_external_force_n, self.config.max_external_torque_nm)
                   or speed_violation(state.tcp_linvel_m_s, self.config.max_measured_tcp_speed_m_s))
        if problem:
            self.stop()
            stop = Fr3SafetyStop(f"FR3 safety stop: {problem}; holding the pose; reset() to go on")
            self._faults.set(stop)
            raise stop

    def _on_reflex(self, err: Exception, resume: bool = True) -> None:
        """A reflex aborted the motion: record it, recover (bounded) and (``resume``) hold the pose again."""
        self._motion = None
        names = self._faults.record_reflex(err)  # raises Fr3ReflexError when the recoveries are spent
        self._recover(f"reflex {list(names)}")
        if resume:
            self._start_tracking()
            self._holding = True

    def _raise_fault(self) -> None:
        self._require()
        self._faults.raise_if_set()

    def _require(self) -> None:
        if self._robot is None:
            raise RuntimeError("the FR3 backend is not connected: call connect() or use 'with backend:'")


def make_backend(task: Any, obs: str, rig: str | None = None, **options: Any) -> Fr3Arm:
    """Registry entry point: the FR3 of the rig file ``rig`` (options are :class:`Fr3Config` fields
    and win over the file). Camera observations come from the rig's cameras, not from this backend."""
    if obs != "state":
        raise NotImplementedError(f"obs={obs!r}: the FR3 backend serves state observations; pixel observations "
                                  "need the rig's cameras wired into the env, which is not done yet")
    config = load_fr3_rig(rig, **options) if rig is not None else Fr3Config(**options)
    return Fr3Arm(config)
