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
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from typing import Any, Callable

import numpy as np

from drivers.arm import panda
from drivers.arm.fr3_faults import FaultLatch, Fr3Monitor
from drivers.arm.fr3_motions import call_with_deadline
from drivers.arm.fr3_safety import Fr3ConnectionLost, Fr3Error, Fr3SafetyStop, Reflex, TcpFrame
from drivers.arm.safety import checked_joint_pos, limit_target, speed_violation, wrench_violation
from drivers.arm.panda_py_config import PandaConfig, load_panda_rig
from drivers.arm.panda_py_hand import PandaPyHand
from drivers.arm.panda_py_motion import (
    PandaPyLibrary, control_error_kind, impedance_matrix, import_panda_py, pose_from_o_t_ee, reference_toward, tcp_twist, xyzw,
)
from robot_rl.backends.arm import ArmSpec, ArmState, ArmTarget
from robot_rl.backends.base import ConnectOnEnter
from robot_rl.backends.watchdog import CommandWatchdog
from robot_rl.rate import Rate

log = logging.getLogger(__name__)
STOP_CONTROLLER_TIMEOUT_S = 2.0


class PandaPyArm(ConnectOnEnter):
    """A Franka Panda (and the Franka Hand) behind the arm contract. Nothing happens in
    ``__init__``; ``connect()`` opens the robot. Use as a context manager."""

    family = "arm"

    def __init__(self, config: PandaConfig, library: Callable[[], PandaPyLibrary] = import_panda_py,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config, self._library, self._clock = config, library, clock
        self._spec = ArmSpec(
            dof=7, joint_limits_rad=np.array(panda.JOINT_LIMITS_RAD),
            workspace_low_m=np.asarray(config.workspace_low_m, dtype=np.float64),
            workspace_high_m=np.asarray(config.workspace_high_m, dtype=np.float64),
            gripper_max_width_m=panda.GRIPPER_MAX_WIDTH_M if config.gripper == "franka_hand" else 0.0,
            cameras={}, max_step_m=config.max_step_m, max_step_rad=config.max_step_rad,
            home_joint_pos_rad=np.asarray(config.reset_joint_pos_rad, dtype=np.float64),
        )
        self._frame = TcpFrame.from_reported(config.reported_ee_frame)
        self._lock = threading.RLock()
        self._watchdog = CommandWatchdog(config.watchdog_s, clock)
        self._lib: PandaPyLibrary | None = None
        self._robot: Any = None  # panda_py.Panda
        self._controller: Any = None  # the running CartesianImpedance
        self._hand: PandaPyHand | None = None
        self._goal: tuple[np.ndarray, np.ndarray] | None = None  # TCP goal (base frame) the reference heads for
        self._reference: tuple[np.ndarray, float] | None = None  # the last reference's TCP position, and when
        self._faults = FaultLatch(config.max_reflex_recoveries, clock, robot="Panda")  # shared with the FR3 backend
        self.fault_event = self._faults.event  #: set when a fault is recorded (a test or a supervisor waits on it)
        self._monitor = Fr3Monitor(self._monitor_once, self._lock, self._faults, config.monitor_hz)
        self.hold_event = threading.Event()  #: set whenever the arm starts holding its pose
        self._rate: Rate | None = None
        self._posture_rad = self._spec.home_joint_pos_rad  # the nullspace pulls toward the last reset pose
        self.gain_set = config.gain_set
        self._set_holding(True)

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
        self._faults.clear()
        self._monitor.start()

    def close(self) -> None:
        """Stop the monitor, the controller and the hand, and drop the connection (always safe to call)."""
        self._monitor.stop()
        with self._lock:
            try:
                if self._robot is not None and self._faults.recoverable:
                    self._end_control()
            finally:
                self._release()

    def _release(self) -> None:
        if self._hand is not None:
            self._hand.close()
        self._hand = self._controller = self._robot = self._goal = None  # panda-python's destructor disconnects

    # ------------------------------------------------------------------ state
    def read_state(self) -> ArmState:
        self._require()
        state = self._read_arm()
        return dataclasses.replace(state, gripper_width_m=self._hand.read_width()) if self._hand is not None else state

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

    def _lost(self, err: BaseException) -> Fr3ConnectionLost:
        lost = Fr3ConnectionLost(f"the Panda at {self.config.host} stopped answering ({err}); the robot stops on its "
                                 "own; reconnect after checking it")
        self._faults.set(lost)
        return lost

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
                self._start_controller()
            self._goal = (executed.tcp_pos_m, executed.tcp_quat_wxyz)
            self._track(state)
            if self._hand is not None:
                self._hand.command_width(executed.gripper_width_m)
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

    def set_gains(self, name: str) -> None:
        """Switch to the gain set ``name`` (e.g. ``"compliant"``, ``"precise"``) without stopping the controller."""
        if name not in self.config.gains:
            raise ValueError(f"unknown gain set {name!r}; this rig has {sorted(self.config.gains)}")
        self._raise_fault()
        with self._lock:
            self.gain_set = name
            if self._controller is not None:
                self._native(lambda: self._controller.set_impedance(impedance_matrix(self.config.gains[name])))

    def sync(self, period_s: float) -> None:
        """Wait until ``period_s`` has passed since the previous ``sync`` (the goal stays set)."""
        if self._rate is None or abs(self._rate.period - period_s) > 1e-9:
            self._rate = Rate(1.0 / period_s)
        self._rate.sleep()
        self._raise_fault()

    def reset(self, joint_pos_rad: np.ndarray | None = None, target: ArmTarget | None = None) -> ArmState:
        """Drive to ``joint_pos_rad`` (default: the rig's reset pose) with panda-python's joint motion,
        clear safety stops and the reflex count, resume impedance control; then go to ``target`` if given."""
        q = checked_joint_pos(self._spec.home_joint_pos_rad if joint_pos_rad is None else joint_pos_rad, self._spec)
        self._require()
        if not self._faults.recoverable:
            raise self._faults.fault
        with self._lock:
            self._end_control()
            self._run_joint_motion(q)
            self._posture_rad = q
            self._faults.clear()
            self._faults.recoveries = 0
            self._start_controller()
            self._set_holding(True)
        if target is not None:
            approach(self, target, self._clock)
        return self.read_state()

    def render(self, camera: str, height: int | None = None, width: int | None = None) -> np.ndarray:
        raise ValueError(f"the Panda backend has no camera {camera!r}: a rig's cameras are the [cameras] tables of "
                         "its rig file (drivers.cameras.rig)")

    # ------------------------------------------------------------------ controllers (lock held)
    def _start_controller(self) -> None:
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
        if self._watchdog.expired() and not self._holding:
            log.info("Panda: no fresh command for %.0f ms: holding the pose", self._watchdog.age_s() * 1e3)
            self.stop()
        state = self._read_arm()
        if self._faults.fault is None:
            self._check_safety(state)
        self._track(state)

    def _check_safety(self, state: ArmState) -> None:
        """Hold the pose and raise :class:`Fr3SafetyStop` if the force or speed limit is exceeded."""
        problem = (wrench_violation(state.ext_wrench_n_nm, self.config.max_external_force_n, self.config.max_external_torque_nm)
                   or speed_violation(state.tcp_linvel_m_s, self.config.max_measured_tcp_speed_m_s))
        if problem:
            self.stop()
            stop = Fr3SafetyStop(f"Panda safety stop: {problem}; holding the pose; reset() to go on")
            self._faults.set(stop)
            raise stop

    def _on_control_error(self, err: RuntimeError, resume: bool = True) -> None:
        """libfranka ended the control loop: a lost link is a fault; a reflex is recorded, recovered
        (bounded) and (``resume``) impedance control restarts holding the pose."""
        if control_error_kind(str(err)) == "network":
            raise self._lost(err) from err
        self._controller = self._goal = None
        names = self._faults.record_reflex(err)  # raises Fr3ReflexError when the recoveries are spent
        self._recover(f"reflex {list(names)}")
        if resume:
            self._start_controller()
            self._set_holding(True)

    def _set_holding(self, holding: bool) -> None:
        self._holding = holding
        (self.hold_event.set if holding else self.hold_event.clear)()

    def _raise_fault(self) -> None:
        self._require()
        self._faults.raise_if_set()

    def _require(self) -> None:
        if self._robot is None:
            raise RuntimeError("the Panda backend is not connected: call connect() or use 'with backend:'")


def approach(backend: Any, target: ArmTarget, clock: Callable[[], float], timeout_s: float = 5.0,
             tolerance_m: float = 0.005) -> None:
    """Command ``target`` every 50 ms until the TCP is within ``tolerance_m`` of it (or time is up)."""
    rate, deadline = Rate(20.0, clock=clock), clock() + timeout_s
    while clock() < deadline:
        sent = backend.command(target)
        if np.linalg.norm(sent.tcp_pos_m - backend.read_state().tcp_pos_m) < tolerance_m and np.allclose(
                sent.tcp_pos_m, target.tcp_pos_m, atol=1e-9):
            return
        rate.sleep()
    log.warning("reset: TCP did not reach %s within %.1f s", np.round(target.tcp_pos_m, 3), timeout_s)


def make_backend(task: Any, obs: str, rig: str | None = None, **options: Any) -> PandaPyArm:
    """Registry entry point: the Panda of the rig file ``rig`` (options are :class:`PandaConfig` fields
    and win over the file). Camera observations come from the rig's cameras, not from this backend."""
    if obs != "state":
        raise NotImplementedError(f"obs={obs!r}: the Panda backend serves state observations; pixel observations "
                                  "need the rig's cameras wired into the env, which is not done yet")
    config = load_panda_rig(rig, **options) if rig is not None else PandaConfig(**options)
    return PandaPyArm(config)
