"""The UR backend's servo stream: a thread that, every RTDE period, checks the robot and sends the
next ``servoL`` setpoint (see :mod:`drivers.arm.ur` for why the backend streams).

**Every period, in this order:** the link is up (``isConnected``), the robot's own safety mode is
normal or reduced (else :class:`UrRobotStopped` naming the stop), ur_rtde's control script still
runs (else :class:`UrError`: the robot-side script watchdog ended it because this PC stalled the
stream, or someone stopped it), the measured TCP wrench and speed are under their limits (else
``servoStop`` and :class:`UrSafetyStop`), a command came within ``watchdog_s`` (else ``servoStop``:
the arm holds its pose until the next command); then the setpoint moves toward the goal by at most
the speed limits times the time since the previous ``servoL`` (at most one period: a stream the OS
ran late never catches up, and one it ran early moves less), goes out as ``servoL``, and the script
watchdog is kicked. So the reference never outruns the limits in wall time, however the stream is scheduled.

One lock (:attr:`UrServoStream.lock`) guards the control interface and the stream's state; a tick
holds it from its first check to its last call, so ``reset()`` (which sets :attr:`resetting` under
the lock) never interleaves a ``moveJ`` or a script upload with a ``servoL``, and a fault a tick
raises is recorded before anyone else can take the lock (``reset()`` never sees a stale one).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from drivers.arm import ur_constants as ur
from drivers.arm.safety import speed_violation, wrench_violation
from drivers.arm.ur_config import UrConfig
from drivers.arm.ur_safety import (
    UrConnectionLost,
    UrError,
    UrRobotStopped,
    UrSafetyStop,
    next_setpoint,
    robot_stop_message,
)
from robot_rl.backends.watchdog import CommandWatchdog
from robot_rl.rate import Rate

log = logging.getLogger(__name__)
JOIN_TIMEOUT_S = 5.0


class UrServoStream:
    """The servo thread and the state it shares with :class:`~drivers.arm.ur.UrArm` (the setpoint,
    the goal, whether the arm holds, the fault). ``clock``: monotonic seconds (the command watchdog)."""

    def __init__(self, config: UrConfig, clock: Callable[[], float]) -> None:
        self.config, self.period_s, self._clock = config, 1.0 / config.rtde_hz, clock
        self.lock = threading.RLock()
        self.watchdog = CommandWatchdog(config.watchdog_s, clock)
        self.control: Any = None
        self.receive: Any = None
        self.fault: UrError | None = None
        self.fault_event = threading.Event()
        self.holding, self.resetting = True, False
        self.setpoint: tuple[np.ndarray, np.ndarray] | None = None
        self.goal: tuple[np.ndarray, np.ndarray] | None = None
        self._sent_s = 0.0  # when the setpoint last went out (or started from the measured pose)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ the thread
    def start(self, control: Any, receive: Any) -> None:
        """Stream on these two connected RTDE interfaces (the arm holds until the first goal)."""
        with self.lock:
            self.control, self.receive = control, receive
            self.clear_fault()
            self.holding, self.resetting = True, False
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ur servo stream", daemon=True)
        self._thread.start()

    def join(self) -> None:
        """End the thread (within ``JOIN_TIMEOUT_S``); the interfaces stay attached."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.error("UR: the servo stream did not end within %.0f s", JOIN_TIMEOUT_S)
            self._thread = None

    def detach(self) -> tuple[Any, Any]:
        """Forget the interfaces (the arm holds); return them for the caller to disconnect."""
        with self.lock:
            links, (self.control, self.receive) = (self.control, self.receive), (None, None)
            self.hold()
            return links

    def _loop(self) -> None:
        rate = Rate(self.config.rtde_hz)
        while not self._stop.is_set():
            with self.lock:  # the fault is recorded before the lock is let go
                try:
                    self._tick()
                except UrError as err:
                    self.set_fault(err)
                except Exception as err:  # never die silently: the next call raises it
                    log.exception("UR servo stream failed")
                    self.set_fault(UrConnectionLost(f"the UR servo stream failed ({type(err).__name__}: {err}); reconnect"))
                if isinstance(self.fault, UrConnectionLost):
                    return
            rate.sleep()

    def _tick(self) -> None:
        if self.control is None:
            return
        if not self.receive.isConnected():
            raise UrConnectionLost(f"the RTDE link to the UR at {self.config.host} is down: the robot's script "
                                   "stops the arm; reconnect after checking the network")
        self.check_robot_stopped()
        if self.fault is None and not self.resetting:
            self._check_script()
            self._check_limits(np.asarray(self.receive.getActualTCPForce(), dtype=np.float64),
                               np.asarray(self.receive.getActualTCPSpeed(), dtype=np.float64)[:3])
            if not self.holding and self.watchdog.expired():
                log.info("UR: no fresh command for %.0f ms: holding the pose", self.watchdog.age_s() * 1e3)
                self.halt()
                self.hold()
            if not self.holding:
                self._servo_step()
        if self.config.script_watchdog_hz > 0:
            self.control.kickWatchdog()

    # ------------------------------------------------------------------ the checks
    def check_robot_stopped(self) -> None:
        """Raise :class:`UrRobotStopped` (and hold) if the robot's own safety system stopped the arm."""
        receive = self.receive
        message = robot_stop_message(int(receive.getSafetyMode()), bool(receive.isProtectiveStopped()),
                                     bool(receive.isEmergencyStopped()))
        if message is not None:
            self.hold()  # the robot stopped itself; servoing resumes only after reset()
            raise UrRobotStopped(message)

    def _check_script(self) -> None:
        if self.control.isProgramRunning():
            return
        self.hold()
        hz = self.config.script_watchdog_hz
        cause = (f"its watchdog ends it when the servo stream does not kick it for {1e3 / hz:.0f} ms "
                 "(1 / script_watchdog_hz): this PC stalled the stream, " if hz > 0 else "")
        raise UrError(f"ur_rtde's control script on the UR has stopped ({cause}or it was stopped on the teach "
                      "pendant): the arm stands still; reset() uploads the script again")

    def _check_limits(self, wrench_n_nm: np.ndarray, tcp_linvel_m_s: np.ndarray) -> None:
        """Stop and raise :class:`UrSafetyStop` if the measured TCP wrench or speed (base frame) is over its limit."""
        config = self.config
        problem = (wrench_violation(wrench_n_nm, config.max_external_force_n, config.max_external_torque_nm)
                   or speed_violation(tcp_linvel_m_s, config.max_measured_tcp_speed_m_s))
        if problem:
            self.halt()
            self.hold()
            raise UrSafetyStop(f"UR safety stop: {problem}; holding the pose; reset() to go on")

    # ------------------------------------------------------------------ motion
    def set_goal(self, goal_pos_m: np.ndarray, goal_quat_wxyz: np.ndarray) -> None:
        """Stream toward the goal (lock held). A holding arm starts from its TCP pose measured now,
        under the lock: a pose read before a hold that came meanwhile would send the arm back."""
        if self.holding or self.setpoint is None:
            self.setpoint, self._sent_s = ur.pose_from_rotvec(self.receive.getActualTCPPose()), self._clock()
        self.goal = (goal_pos_m, goal_quat_wxyz)
        self.holding = False
        self.watchdog.feed()

    def _servo_step(self) -> None:
        """Move the setpoint toward the goal by at most the speed limits times the time since it last
        went out (at most one period); send it."""
        config, now_s = self.config, self._clock()
        elapsed_s = min(max(now_s - self._sent_s, 0.0), self.period_s)
        pos, quat = next_setpoint(self.setpoint, self.goal, config.max_tcp_speed_m_s * elapsed_s,
                                  config.max_tcp_angular_speed_rad_s * elapsed_s)
        sent = self.control.servoL(ur.rotvec_pose(pos, quat), config.max_tcp_speed_m_s, config.stop_deceleration_m_s2,
                                   self.period_s, config.servo_lookahead_s, config.servo_gain)
        if not sent:
            self.halt()
            self.hold()
            raise UrError("the UR refused servoL (is ur_rtde's control script running, the arm not stopped?); "
                          "reset() to go on")
        self.setpoint, self._sent_s = (pos, quat), now_s

    def halt(self) -> None:
        """``servoStop`` if the stream is servoing (lock held)."""
        if not self.holding and self.control is not None:
            self.control.servoStop(self.config.stop_deceleration_m_s2)

    def hold(self) -> None:
        self.holding, self.setpoint, self.goal = True, None, None

    # ------------------------------------------------------------------ faults
    def set_fault(self, fault: UrError) -> None:
        # nothing hides a lost link; a backend safety stop hides nothing
        if not isinstance(self.fault, UrConnectionLost) and (self.fault is None or not isinstance(fault, UrSafetyStop)):
            self.fault = fault
        self.fault_event.set()

    def clear_fault(self) -> None:
        self.fault = None
        self.fault_event.clear()
