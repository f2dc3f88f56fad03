"""A Universal Robots arm (e-Series or CB3) as an :class:`~robot_rl.backends.arm.ArmBackend`, through ur_rtde.

**How targets reach the robot.** A backend thread streams ``servoL`` at the controller's RTDE rate
(500 Hz on e-Series, ``initPeriod``-style fixed rate), each time sending a *setpoint* that moves
toward the newest limited target by at most ``max_tcp_speed_m_s`` / ``max_tcp_angular_speed_rad_s``
times one period. We stream instead of sending one ``servoL`` per control period because
``servoL`` is a servo command: the controller interpolates toward each setpoint over ``time`` with
its look-ahead filter, and a 10 Hz policy's 5 cm steps sent once per 100 ms arrive as velocity
jumps the look-ahead cannot hide; streamed small steps make the speed limit exact on the reference
(not a per-command guess from the time between calls), let the watchdog and the force limit act
within one RTDE period, and keep ur_rtde's robot-side script watchdog fed from one place.

**Safety** lives in the stream (:mod:`drivers.arm.ur_stream`): every period it checks the link, the
robot's own safety mode, that ur_rtde's control script runs, the measured TCP wrench and speed (over a
limit: ``servoStop`` and :class:`UrSafetyStop`; every command raises until ``reset()``), and that a
command came within ``watchdog_s`` (else ``servoStop``: the arm holds its pose until the next command).
``command()`` first limits every target with the arm contract's :func:`clip_target` (workspace
box, per-command step and rotation, gripper range).

ur_rtde is imported in ``connect()`` only (``pip install -e ".[ur]"``); the ``library`` argument
injects the two RTDE interface classes (the tests pass fakes checked against ur_rtde's signatures).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from drivers.arm import ur_constants as ur
from drivers.arm.fr3_motions import call_with_deadline
from drivers.arm.safety import checked_joint_pos, limit_target
from drivers.arm.ur_config import UrConfig, load_ur_rig
from drivers.arm.ur_safety import UrConnectionLost, UrError, import_ur_rtde
from drivers.arm.ur_stream import UrServoStream
from robot_rl.backends.arm import ArmSpec, ArmState, ArmTarget
from robot_rl.backends.base import ConnectOnEnter
from robot_rl.backends.gripper import Gripper
from robot_rl.rate import Rate

log = logging.getLogger(__name__)
RESET_TOLERANCE_RAD = 0.01
RESET_POLL_HZ = 50.0
SETTLED_SPEED_M_S = 0.01  # a TCP slower than this has come to rest (reset with a target)


class UrArm(ConnectOnEnter):
    """A UR arm (and, optionally, any :class:`~robot_rl.backends.gripper.Gripper`) behind the arm
    contract. Nothing happens in ``__init__``; ``connect()`` opens the RTDE link. Use as a context manager.

    Args:
        config: the rig's settings.
        gripper: the gripper on the flange, or None (then ``gripper_width_m`` is 0).
        library: returns an object with ``RTDEControlInterface`` and ``RTDEReceiveInterface``.
        clock: monotonic seconds (state timestamps, the watchdog, deadlines).
    """

    family = "arm"

    def __init__(self, config: UrConfig, gripper: Gripper | None = None, library: Callable[[], Any] = import_ur_rtde,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if gripper is not None and not isinstance(gripper, Gripper):
            raise TypeError(f"gripper must implement robot_rl.backends.gripper.Gripper, got {type(gripper).__name__}")
        self.config, self._gripper, self._library, self._clock = config, gripper, library, clock
        self._spec = ArmSpec(
            dof=6, joint_limits_rad=np.array(ur.JOINT_LIMITS_RAD),
            workspace_low_m=np.asarray(config.workspace_low_m, dtype=np.float64),
            workspace_high_m=np.asarray(config.workspace_high_m, dtype=np.float64),
            gripper_max_width_m=float(gripper.max_width_m) if gripper is not None else 0.0,
            cameras={}, max_step_m=config.max_step_m, max_step_rad=config.max_step_rad,
            home_joint_pos_rad=np.asarray(config.reset_joint_pos_rad, dtype=np.float64),
        )
        self._stream = UrServoStream(config, clock)
        self._lock = self._stream.lock  # guards the control interface and the stream's state
        self.fault_event = self._stream.fault_event  #: set when a fault is recorded (a test or a supervisor waits on it)
        self._rate: Rate | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def spec(self) -> ArmSpec:
        return self._spec

    @property
    def _control(self) -> Any:
        return self._stream.control

    @property
    def _receive(self) -> Any:
        return self._stream.receive

    @property
    def connected(self) -> bool:
        return self._control is not None

    @property
    def fault(self) -> UrError | None:
        """The fault that stops this backend now (None when it runs)."""
        return self._stream.fault

    @property
    def holding(self) -> bool:
        """Whether the arm holds its pose (before the first command, after ``stop()``, the watchdog or a fault)."""
        return self._stream.holding

    def connect(self) -> None:
        """Open both RTDE interfaces (each within ``connect_timeout_s``), check the robot is the rig's
        model, connect the gripper, then arm ur_rtde's script watchdog and start the servo stream
        that kicks it (which reports a robot already stopped on its first period)."""
        if self._control is not None:
            return
        lib, host, hz = self._library(), self.config.host, self.config.rtde_hz
        receive = control = None
        try:
            receive = self._deadline(lambda: lib.RTDEReceiveInterface(host, hz), f"RTDE receive from the UR at {host}")
            control = self._deadline(lambda: lib.RTDEControlInterface(host, hz), f"RTDE control of the UR at {host}")
            self._check_kinematics(control, receive)
            if self._gripper is not None:  # before the script watchdog: a gripper's activation takes seconds
                self._gripper.connect()
            if self.config.script_watchdog_hz > 0:
                control.setWatchdog(self.config.script_watchdog_hz)
        except BaseException:
            self._release((control, receive))
            raise
        self._stream.start(control, receive)

    def _deadline(self, fn: Callable[[], Any], what: str) -> Any:
        try:
            return call_with_deadline(fn, self.config.connect_timeout_s, what)
        except TimeoutError as err:
            raise TimeoutError(f"{what} did not answer within {self.config.connect_timeout_s:.1f} s: is the robot on, "
                               "reachable, and in remote control mode (e-Series)?") from err

    def _check_kinematics(self, control: Any, receive: Any) -> None:
        """Fail unless our DH model of ``config.model`` puts the TCP where the robot reports it."""
        q = np.asarray(receive.getActualQ(), dtype=np.float64)
        offset = np.asarray(control.getTCPOffset(), dtype=np.float64)
        reported, _ = ur.pose_from_rotvec(receive.getActualTCPPose())
        errors = {name: float(np.linalg.norm(ur.tcp_pose(model, q, offset)[0] - reported)) for name, model in ur.MODELS.items()}
        if errors[self.config.model] > self.config.kinematics_tolerance_m:
            best = min(errors, key=errors.get)
            raise UrError(f"the rig says model={self.config.model!r}, but its kinematics put the TCP "
                          f"{errors[self.config.model] * 1e3:.0f} mm from where the robot reports it (the closest model "
                          f"is {best!r}, {errors[best] * 1e3:.0f} mm): fix [arm.ur] model in {self.config.rig or 'the rig file'}")

    def close(self) -> None:
        """Stop the stream and the arm, end the robot's control script, drop both links (always safe)."""
        self._stream.join()
        with self._lock:
            try:
                if self._control is not None and not isinstance(self.fault, UrConnectionLost):
                    self._stream.halt()
                    self._control.stopScript()
            except Exception:  # closing must go on (the robot's script watchdog stops the arm); logged
                log.exception("UR: stopping the arm at close() failed")
            finally:
                self._release(self._stream.detach())

    def _release(self, links: tuple[Any, Any]) -> None:
        for link in links:
            if link is not None:
                try:
                    link.disconnect()
                except Exception:  # closing must go on; the error is logged
                    log.exception("UR: disconnecting an RTDE interface failed")
        if self._gripper is not None and self._gripper.connected:
            self._gripper.close()

    # ------------------------------------------------------------------ state
    def read_state(self) -> ArmState:
        self._require()
        state = self._read_arm()
        if self._gripper is None:
            return state
        return dataclasses.replace(state, gripper_width_m=float(self._gripper.read_width()))

    def _read_arm(self) -> ArmState:
        receive = self._receive
        pos, quat = ur.pose_from_rotvec(receive.getActualTCPPose())
        speed = np.asarray(receive.getActualTCPSpeed(), dtype=np.float64)
        return ArmState(
            time_s=self._clock(), tcp_pos_m=pos, tcp_quat_wxyz=quat, tcp_linvel_m_s=speed[:3], tcp_angvel_rad_s=speed[3:],
            joint_pos_rad=np.asarray(receive.getActualQ(), dtype=np.float64),
            joint_vel_rad_s=np.asarray(receive.getActualQd(), dtype=np.float64), gripper_width_m=0.0,
            ext_wrench_n_nm=np.asarray(receive.getActualTCPForce(), dtype=np.float64),
        )

    # ------------------------------------------------------------------ commands
    def command(self, target: ArmTarget) -> ArmTarget:
        """Limit ``target`` (box, step, rotation, gripper range) and make it the servo stream's goal;
        return it. The stream approaches it at most at the configured TCP speeds."""
        self._raise_fault()
        state = self.read_state()
        # The TCP speed limit acts on the streamed setpoint, so no time-based step limit here.
        executed = limit_target(target, self._spec, state, self.config.max_tcp_speed_m_s, elapsed_s=math.inf)
        with self._lock:
            self._raise_fault()
            if self._stream.resetting:
                raise UrError("command() during reset(): wait for reset() to return")
            self._stream.set_goal(executed.tcp_pos_m, executed.tcp_quat_wxyz)
        if self._gripper is not None:
            executed = dataclasses.replace(executed, gripper_width_m=float(self._gripper.command_width(executed.gripper_width_m)))
        return executed

    def stop(self) -> None:
        """Hold the current TCP pose now (``servoStop``) and stop the fingers; the next ``command()`` moves again."""
        with self._lock:
            if self._control is not None and not isinstance(self.fault, UrConnectionLost):
                self._stream.halt()
            self._stream.hold()
        if self._gripper is not None and self._gripper.connected:
            self._gripper.stop()

    def sync(self, period_s: float) -> None:
        """Wait until ``period_s`` has passed since the previous ``sync`` (the stream keeps servoing)."""
        if self._rate is None or abs(self._rate.period - period_s) > 1e-9:
            self._rate = Rate(1.0 / period_s)
        self._rate.sleep()
        self._raise_fault()

    def render(self, camera: str, height: int | None = None, width: int | None = None) -> np.ndarray:
        raise ValueError(f"the UR backend has no camera {camera!r}: a rig's cameras are the [cameras] tables of "
                         "its rig file (drivers.cameras.rig)")

    # ------------------------------------------------------------------ reset
    def reset(self, joint_pos_rad: np.ndarray | None = None, target: ArmTarget | None = None) -> ArmState:
        """``moveJ`` to ``joint_pos_rad`` (default: the rig's reset pose), clearing a backend safety
        stop or an ended control script; then go to ``target`` if given. A robot still stopped by
        its own safety system, or a lost link, raises (they are cleared on the robot, not by software)."""
        q = checked_joint_pos(self._spec.home_joint_pos_rad if joint_pos_rad is None else joint_pos_rad, self._spec)
        self._require()
        stream = self._stream
        with self._lock:  # no servoL from here until the reset motion is done
            if isinstance(self.fault, UrConnectionLost):
                raise self.fault
            stream.check_robot_stopped()
            stream.halt()
            stream.hold()
            stream.clear_fault()
            stream.resetting = True
        try:
            self._ensure_script()
            self._move_joints(q)
        finally:
            stream.resetting = False
        if target is not None:
            self._approach(target)
        return self.read_state()

    def _ensure_script(self) -> None:
        """After a robot stop (or the script watchdog) the control script has ended: upload it again."""
        with self._lock:
            if self._control.isProgramRunning():
                return
            log.info("UR: the control script is not running; uploading it again")
            if not self._control.reuploadScript():
                raise UrError("the UR did not restart ur_rtde's control script: check the robot is powered on, "
                              "in remote control, and not stopped")
            if self.config.script_watchdog_hz > 0:
                self._control.setWatchdog(self.config.script_watchdog_hz)

    def _move_joints(self, q: np.ndarray) -> None:
        """An asynchronous ``moveJ`` (the stream keeps the script watchdog fed), polled until the
        joints are within ``RESET_TOLERANCE_RAD`` of ``q`` or ``reset_timeout_s`` has passed."""
        with self._lock:
            if not self._control.moveJ([float(v) for v in q], self.config.reset_speed_rad_s,
                                       self.config.reset_acceleration_rad_s2, True):
                raise UrError(f"the UR refused moveJ to {np.round(q, 3).tolist()}")
        deadline, rate = self._clock() + self.config.reset_timeout_s, Rate(RESET_POLL_HZ)
        while True:
            self._raise_fault()
            with self._lock:
                running = self._control.getAsyncOperationProgress() >= 0
                error = float(np.max(np.abs(np.asarray(self._receive.getActualQ()) - q)))
            if not running and error < RESET_TOLERANCE_RAD:
                return
            if self._clock() > deadline:
                with self._lock:
                    self._control.stopJ(self.config.reset_acceleration_rad_s2, False)
                raise UrError(f"the reset moveJ to {np.round(q, 3).tolist()} did not arrive within "
                              f"{self.config.reset_timeout_s:.0f} s (largest joint error {error:.3f} rad)")
            rate.sleep()

    def _approach(self, target: ArmTarget, timeout_s: float = 5.0, tolerance_m: float = 0.005) -> None:
        """Command ``target`` each period until the TCP is within ``tolerance_m`` of it and has come
        to rest (an episode starts from rest), or time is up."""
        deadline = self._clock() + timeout_s
        while self._clock() < deadline:
            sent = self.command(target)
            state = self.read_state()
            reached = np.linalg.norm(sent.tcp_pos_m - state.tcp_pos_m) < tolerance_m
            settled = np.linalg.norm(state.tcp_linvel_m_s) < SETTLED_SPEED_M_S
            if reached and settled and np.allclose(sent.tcp_pos_m, target.tcp_pos_m, atol=1e-9):
                return
            self.sync(0.05)
        log.warning("UR reset: TCP did not reach %s within %.1f s", np.round(target.tcp_pos_m, 3), timeout_s)

    # ------------------------------------------------------------------ faults
    def _raise_fault(self) -> None:
        self._require()
        if self.fault is not None:
            raise self.fault

    def _require(self) -> None:
        if self._control is None:
            raise RuntimeError("the UR backend is not connected: call connect() or use 'with backend:'")


def make_backend(task: Any, obs: str, rig: str | None = None, **options: Any) -> UrArm:
    """Registry entry point: the UR of the rig file ``rig`` (options are :class:`UrConfig` fields and
    win over the file), with the gripper of the rig's ``[gripper.<kind>]`` table
    (:func:`drivers.arm.grippers.load_rig_gripper`; none without one)."""
    if obs != "state":
        raise NotImplementedError(f"obs={obs!r}: the UR backend serves state observations; pixel observations "
                                  "need the rig's cameras wired into the env, which is not done yet")
    if rig is None:
        return UrArm(UrConfig(**options))
    from drivers.arm.grippers import load_rig_gripper

    return UrArm(load_ur_rig(rig, **options), gripper=load_rig_gripper(rig))
