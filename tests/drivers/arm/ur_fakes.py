"""Fakes of ur_rtde's ``RTDEControlInterface`` / ``RTDEReceiveInterface`` over a small kinematic UR.

No RTDE controller emulator exists on PyPI (and URSim is not reachable here), so the UR backend is
tested at the library boundary. Every public method below has ur_rtde's signature
(``test_ur.py`` checks it with :func:`robot_rl.testing.library_fakes.check_fake_matches`); methods
a test calls to inject something start with ``fake_``.

:class:`FakeUr` is the robot both interfaces talk to. It advances lazily, at its clock, whenever an
interface touches it:

* ``servoL`` sets a servo target; the TCP follows it with a first-order lag (``LAG_S``) and reports
  the lag's velocity; the joints follow the TCP by damped-least-squares IK on UR's DH model;
* an asynchronous ``moveJ`` moves the joints linearly at the requested speed (the TCP by forward
  kinematics); ``getAsyncOperationProgress`` is ``>= 0`` until it arrives;
* ``servoStop`` / ``stopJ`` stop where the arm is; a protective or emergency stop stops it and ends
  the control script (``reuploadScript`` starts it again once the stop is cleared);
* ur_rtde's script watchdog (``rtde_set_watchdog`` on the register every command writes): when
  enabled and no command came within ``1 / min_frequency`` (robot time, the fake's clock) the script ends.

A test that must not depend on how the OS schedules the backend's stream thread gives the fake and
the backend one :class:`FakeClock` and moves time itself; and it waits for what the stream does with
:meth:`FakeUr.fake_wait_for` (woken by every interface call), never with sleeps.
"""

from __future__ import annotations

import functools
import math
import threading
import time
import types
from collections.abc import Callable

import numpy as np

from drivers.arm import ur_constants as ur
from robot_rl.geometry import quat_from_axis_angle, quat_mul, quat_normalize

LAG_S = 0.02
IK_DAMPING = 1e-3


class FakeClock:
    """Monotonic seconds that move only when the test says so (``advance``); give it to both the
    fake robot and the backend so robot time and the backend's watchdog agree."""

    def __init__(self, start_s: float = 100.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class FakeUr:
    """The simulated arm behind both fake interfaces (one per test)."""

    def __init__(self, model: str = "ur5e", joint_pos_rad=ur.READY_JOINT_POS_RAD,
                 tcp_offset=(0.0, 0.0, 0.15, 0.0, 0.0, 0.0), clock: Callable[[], float] = time.monotonic) -> None:
        self.model, self.tcp_offset, self.clock = ur.MODELS[model], np.array(tcp_offset, dtype=np.float64), clock
        self.lock = threading.RLock()
        self.q = np.array(joint_pos_rad, dtype=np.float64)
        self.pos, self.quat = ur.tcp_pose(self.model, self.q, self.tcp_offset)
        self.servo_target: tuple[np.ndarray, np.ndarray] | None = None
        self.joint_goal: tuple[np.ndarray, float] | None = None
        self.q_stale = False
        self.updated_s = clock()
        self.safety_mode, self.emergency, self.program_running, self.link_up = 1, False, True, True
        self.wrench = np.zeros(6)
        self.speed_override: np.ndarray | None = None
        self.watchdog_period_s: float | None = None
        self.kicked_s = clock()
        self.servo_log: list[tuple[float, list[float]]] = []  #: (time, pose) of every accepted servoL
        self.stop_log: list[tuple[float, np.ndarray]] = []  #: (time, TCP position) of every servoStop
        self.kicks = 0  #: kickWatchdog calls
        self.changed = threading.Condition(self.lock)  #: notified after every interface call
        self.calls: list[str] = []  #: names of the motion/stop calls, in order
        self.connect_error: Exception | None = None
        self.connect_hangs = False  #: True: constructing an interface hangs (a robot that never answers)
        self.connect_released = threading.Event()  #: set: a hanging construction gives up

    # ---------------------------------------------------------------- the model
    def advance(self) -> None:
        with self.lock:
            now = self.clock()
            dt, self.updated_s = max(now - self.updated_s, 0.0), now
            if self.watchdog_period_s is not None and self.program_running and now - self.kicked_s > self.watchdog_period_s:
                self.end_script()
            if self.joint_goal is not None:
                goal, speed = self.joint_goal
                delta = goal - self.q
                largest = float(np.max(np.abs(delta)))
                self.q = goal.copy() if largest <= speed * dt else self.q + delta * (speed * dt / largest)
                self.joint_goal = None if largest <= speed * dt else self.joint_goal
                self.pos, self.quat = ur.tcp_pose(self.model, self.q, self.tcp_offset)
            elif self.servo_target is not None and dt > 0:
                fraction = 1.0 - math.exp(-dt / LAG_S)
                target_pos, target_quat = self.servo_target
                self.pos = self.pos + (target_pos - self.pos) * fraction
                turn = ur.rotation_between(self.quat, target_quat) * fraction
                self.quat = quat_normalize(quat_mul(quat_from_axis_angle(turn), self.quat))
                self.q_stale = True

    def tcp_speed(self) -> np.ndarray:
        """The lag's velocity toward the servo target, base frame ``[vx, vy, vz, wx, wy, wz]``."""
        if self.speed_override is not None:
            return self.speed_override.copy()
        if self.servo_target is None:
            return np.zeros(6)
        target_pos, target_quat = self.servo_target
        return np.concatenate([(target_pos - self.pos) / LAG_S, ur.rotation_between(self.quat, target_quat) / LAG_S])

    def joints(self) -> np.ndarray:
        """Joint positions matching the TCP (damped least-squares IK steps from the last ones)."""
        if self.q_stale:
            for _ in range(3):
                pos, quat, jacobian = self.jacobian(self.q)
                error = np.concatenate([self.pos - pos, ur.rotation_between(quat, self.quat)])
                if np.linalg.norm(error) < 1e-8:
                    break
                self.q = self.q + jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + IK_DAMPING * np.eye(6), error)
            self.q_stale = False
        return self.q.copy()

    def jacobian(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The TCP pose at ``q`` and the geometric Jacobian ``(6, 6)``: the TCP's twist (base frame) per joint speed."""
        frames, transform = [], np.eye(4)
        for theta, d, a, alpha in zip(q, self.model.d_m, self.model.a_m, ur.DH_ALPHA_RAD):
            frames.append(transform)
            transform = transform @ ur.dh_transform(float(theta), d, a, alpha)
        offset_pos, offset_quat = ur.pose_from_rotvec(self.tcp_offset)
        tcp_pos = transform[:3, 3] + transform[:3, :3] @ offset_pos
        tcp_quat = quat_normalize(quat_mul(ur.mat_to_quat(transform[:3, :3]), offset_quat))
        axes = [frame[:3, 2] for frame in frames]
        columns = [np.concatenate([np.cross(axis, tcp_pos - frame[:3, 3]), axis]) for axis, frame in zip(axes, frames)]
        return tcp_pos, tcp_quat, np.column_stack(columns)

    def joint_speeds(self) -> np.ndarray:
        if self.joint_goal is not None:
            goal, speed = self.joint_goal
            delta = goal - self.q
            return delta * (speed / max(float(np.max(np.abs(delta))), 1e-12))
        if self.servo_target is None:
            return np.zeros(6)
        return np.linalg.lstsq(self.jacobian(self.joints())[2], self.tcp_speed(), rcond=None)[0]

    def halt(self) -> None:
        self.servo_target, self.joint_goal = None, None

    def commanded(self) -> None:
        """A command arrived: the script watchdog's register was written (after ``advance``)."""
        self.kicked_s = self.clock()

    def end_script(self) -> None:
        self.halt()
        self.program_running = False

    # ---------------------------------------------------------------- what a test injects or waits on
    def fake_wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``predicate()`` (checked after each interface call) holds; False after ``timeout_s``."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout_s)

    def fake_push(self, wrench_n_nm) -> None:
        """The measured TCP wrench (base frame) from now on."""
        with self.lock:
            self.wrench = np.array(wrench_n_nm, dtype=np.float64)

    def fake_report_speed(self, tcp_speed) -> None:
        """Report this TCP speed ``[vx, vy, vz, wx, wy, wz]`` from now on (None: the model's)."""
        with self.lock:
            self.speed_override = None if tcp_speed is None else np.array(tcp_speed, dtype=np.float64)

    def fake_protective_stop(self) -> None:
        with self.lock:
            self.advance()
            self.safety_mode = 3
            self.end_script()

    def fake_emergency_stop(self) -> None:
        with self.lock:
            self.advance()
            self.safety_mode, self.emergency = 7, True
            self.end_script()

    def fake_clear_stop(self) -> None:
        """The operator unlocked the stop on the pendant (the control script stays ended)."""
        with self.lock:
            self.safety_mode, self.emergency = 1, False

    def fake_cut_link(self) -> None:
        with self.lock:
            self.link_up = False
            self.end_script()

    def fake_library(self) -> types.SimpleNamespace:
        """What ``UrArm(library=...)`` takes: the two interface classes bound to this robot."""
        return types.SimpleNamespace(RTDEControlInterface=functools.partial(FakeControl, self),
                                     RTDEReceiveInterface=functools.partial(FakeReceive, self))


class _Link:
    def __init__(self, robot: FakeUr, hostname: str, frequency: float = -1.0) -> None:
        if robot.connect_hangs:
            robot.connect_released.wait(timeout=30.0)  # bounded; the test releases it at once
        if robot.connect_error is not None:
            raise robot.connect_error
        self.robot, self.hostname, self.frequency, self.open = robot, hostname, frequency, True

    def _robot(self) -> FakeUr:
        if not self.open:
            raise RuntimeError("RTDE interface used after disconnect()")
        self.robot.advance()
        with self.robot.changed:
            self.robot.changed.notify_all()
        return self.robot

    def _command(self) -> FakeUr:
        """The robot, for a call that sends a command (it feeds the script watchdog)."""
        robot = self._robot()
        robot.commanded()
        return robot


class FakeControl(_Link):
    """``rtde_control.RTDEControlInterface`` of the fake robot (the methods the backend uses)."""

    def servoL(self, pose, speed, acceleration, servo_time, lookahead_time, gain) -> bool:
        robot = self._command()
        with robot.changed:
            if not robot.program_running or robot.safety_mode != 1:
                return False
            robot.joint_goal = None
            robot.servo_target = ur.pose_from_rotvec(pose)
            robot.servo_log.append((robot.clock(), list(pose)))
            robot.changed.notify_all()
            return True

    def servoStop(self, a=10.0) -> bool:
        robot = self._command()
        with robot.changed:
            robot.calls.append("servoStop")
            robot.halt()
            robot.stop_log.append((robot.clock(), robot.pos.copy()))
            robot.changed.notify_all()
            return robot.program_running

    def moveJ(self, q, speed=1.05, acceleration=1.4, asynchronous=False) -> bool:
        robot = self._command()
        with robot.lock:
            robot.calls.append("moveJ")
            if not robot.program_running or robot.safety_mode != 1:
                return False
            robot.servo_target = None
            robot.joints()
            robot.joint_goal = (np.array(q, dtype=np.float64), float(speed))
        if not asynchronous:
            raise NotImplementedError("the fake runs moveJ asynchronously only (as the backend does)")
        return True

    def stopJ(self, a=2.0, asynchronous=False) -> None:
        robot = self._command()
        with robot.lock:
            robot.calls.append("stopJ")
            robot.halt()

    def getAsyncOperationProgress(self) -> int:
        return 0 if self._robot().joint_goal is not None else -1

    def isProgramRunning(self) -> bool:
        return self._robot().program_running

    def reuploadScript(self) -> bool:
        robot = self._robot()
        with robot.lock:
            robot.calls.append("reuploadScript")
            if robot.safety_mode != 1 or not robot.link_up:
                return False
            robot.program_running, robot.watchdog_period_s = True, None
            return True

    def stopScript(self) -> None:
        robot = self._robot()
        robot.calls.append("stopScript")
        robot.end_script()

    def setWatchdog(self, min_frequency=10.0) -> bool:
        robot = self._robot()
        with robot.lock:
            robot.watchdog_period_s, robot.kicked_s = 1.0 / min_frequency, robot.clock()
        return True

    def kickWatchdog(self) -> bool:
        robot = self._command()
        with robot.changed:
            robot.kicks += 1
            robot.changed.notify_all()
        return True

    def getTCPOffset(self) -> list[float]:
        return [float(v) for v in self._robot().tcp_offset]

    def isConnected(self) -> bool:
        return self.open and self._robot().link_up

    def disconnect(self) -> None:
        self.open = False


class FakeReceive(_Link):
    """``rtde_receive.RTDEReceiveInterface`` of the fake robot (the methods the backend uses)."""

    def getActualTCPPose(self) -> list[float]:
        robot = self._robot()
        with robot.lock:
            return ur.rotvec_pose(robot.pos, robot.quat)

    def getActualTCPSpeed(self) -> list[float]:
        robot = self._robot()
        with robot.lock:
            return [float(v) for v in robot.tcp_speed()]

    def getActualQ(self) -> list[float]:
        robot = self._robot()
        with robot.lock:
            return [float(v) for v in robot.joints()]

    def getActualQd(self) -> list[float]:
        robot = self._robot()
        with robot.lock:
            return [float(v) for v in robot.joint_speeds()]

    def getActualTCPForce(self) -> list[float]:
        return [float(v) for v in self._robot().wrench]

    def getSafetyMode(self) -> int:
        return self._robot().safety_mode

    def isProtectiveStopped(self) -> bool:
        return self._robot().safety_mode == 3

    def isEmergencyStopped(self) -> bool:
        return self._robot().emergency

    def isConnected(self) -> bool:
        return self.open and self._robot().link_up

    def disconnect(self) -> None:
        self.open = False


class FakeGripper:
    """A :class:`robot_rl.backends.gripper.Gripper` whose fingers arrive at once (the arm tests need
    one to check that widths are forwarded; the Robotiq driver has its own tests over a pty)."""

    def __init__(self, max_width_m: float = 0.085) -> None:
        self._max_width_m, self._connected, self.width_m, self.stops = max_width_m, False, max_width_m, 0

    @property
    def max_width_m(self) -> float:
        return self._max_width_m

    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        self._connected = True

    def close(self) -> None:
        self._connected = False

    def read_width(self) -> float:
        return self.width_m

    def command_width(self, width_m: float) -> float:
        self.width_m = float(np.clip(width_m, 0.0, self._max_width_m))
        return self.width_m

    def stop(self) -> None:
        self.stops += 1
