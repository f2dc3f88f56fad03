"""What the two Franka arm backends do alike: :class:`FrankaArmBase`, the base of
:class:`~drivers.arm.fr3.Fr3Arm` (FR3 over franky) and :class:`~drivers.arm.panda_py_backend.PandaPyArm`
(Panda over panda-python).

Both keep a Cartesian impedance controller running below Python, a monitor thread
(:class:`~drivers.arm.fr3_faults.Fr3Monitor`) and a fault latch
(:class:`~drivers.arm.fr3_faults.FaultLatch`), and both stop on the same safety limits
(:mod:`drivers.arm.safety`). This class holds what is written the same for both: the spec built from
the config, the properties, the connect/close and reset sequences, gain switching, ``sync``, the
safety stop, the command watchdog's hold, reflex recovery and the registry's ``make_backend`` shape.

A subclass supplies the client library's part through the hooks below (each documented where it is
declared): opening and releasing the connection (``_open``/``_release``), reading the arm
(``_read_arm``), starting, ending and forgetting the impedance controller
(``_start_control``/``_end_control``/``_drop_control``), taking up a new gain set
(``_apply_gains``), the joint motion of a reset (``_run_joint_motion``), error recovery
(``_recover``) and the monitor's check (``_monitor_once``); plus ``read_state``, ``command`` and ``stop``.
"""

from __future__ import annotations

import abc
import logging
import threading
from typing import Any, Callable

import numpy as np

from drivers.arm.fr3_config import Fr3Config
from drivers.arm.fr3_faults import FaultLatch, Fr3Monitor
from drivers.arm.fr3_safety import (
    Fr3ConnectionLost,
    Fr3Error,
    Fr3SafetyStop,
    Reflex,
    TcpFrame,
)
from drivers.arm.safety import checked_joint_pos, speed_violation, wrench_violation
from robot_rl.backends.arm import ArmSpec, ArmState, ArmTarget
from robot_rl.backends.base import ConnectOnEnter
from robot_rl.backends.gripper import Gripper
from robot_rl.backends.watchdog import CommandWatchdog
from robot_rl.rate import Rate


class FrankaArmBase(ConnectOnEnter, abc.ABC):
    """A Franka arm (and the Franka Hand) behind the arm contract. Nothing happens in
    ``__init__``; ``connect()`` opens the robot. Use as a context manager."""

    family = "arm"
    robot_name = "Franka"  #: names the robot in messages and logs ("FR3", "Panda")

    def __init__(self, config: Fr3Config, clock: Callable[[], float], joint_limits_rad: np.ndarray,
                 hand_max_width_m: float, gripper: Gripper | None = None) -> None:
        if gripper is not None and not isinstance(gripper, Gripper):
            raise TypeError(f"gripper must implement robot_rl.backends.gripper.Gripper, got {type(gripper).__name__}")
        if gripper is not None and config.gripper != "none":
            raise ValueError(f"the {self.robot_name} drives either its Franka Hand or a separate gripper "
                             f"({type(gripper).__name__}), not both: set gripper = \"none\" in [{config._section}]")
        self.config, self._clock = config, clock
        self._component = gripper  # a separate gripper (e.g. a Robotiq 2F) in place of the Franka Hand
        if gripper is not None:
            hand_max_width_m = gripper.max_width_m
        self._spec = ArmSpec(
            dof=7, joint_limits_rad=np.array(joint_limits_rad),
            workspace_low_m=np.asarray(config.workspace_low_m, dtype=np.float64),
            workspace_high_m=np.asarray(config.workspace_high_m, dtype=np.float64),
            gripper_max_width_m=hand_max_width_m if config.gripper == "franka_hand" or gripper else 0.0,
            cameras={}, max_step_m=config.max_step_m, max_step_rad=config.max_step_rad,
            home_joint_pos_rad=np.asarray(config.reset_joint_pos_rad, dtype=np.float64),
        )
        self._frame = TcpFrame.from_reported(config.reported_ee_frame)
        self._lock = threading.RLock()
        self._watchdog = CommandWatchdog(config.watchdog_s, clock)
        self._robot: Any = None  # the client library's robot (None until connected)
        self._faults = FaultLatch(config.max_reflex_recoveries, clock, robot=self.robot_name)
        self.fault_event = self._faults.event  #: set when a fault is recorded (a test or a supervisor waits on it)
        self._monitor = Fr3Monitor(self._monitor_once, self._lock, self._faults, config.monitor_hz)
        self.hold_event = threading.Event()  #: set whenever the arm starts holding its pose
        self._rate: Rate | None = None
        self._posture_rad = self._spec.home_joint_pos_rad  # the nullspace pulls toward the last reset pose
        self.gain_set = config.gain_set
        self._set_holding(True)

    @property
    def _log(self) -> logging.Logger:
        return logging.getLogger(type(self).__module__)  # the subclass's module logs, as before the base existed

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
        self._open()
        if self._component is not None:
            try:
                self._component.connect()
            except BaseException:
                self.close()
                raise
        self._faults.clear()
        self._monitor.start()  # from now on: a fault before the first command is seen too

    def close(self) -> None:
        """Stop the monitor and the controller, and drop the connection (always safe to call)."""
        self._monitor.stop()
        with self._lock:
            try:
                if self._robot is not None and self._faults.recoverable:
                    self._end_control()
            finally:
                self._release()
                if self._component is not None and self._component.connected:
                    self._component.close()

    def _component_width(self) -> float:
        """The separate gripper's measured width (0 without one)."""
        return self._component.read_width() if self._component is not None else 0.0

    def _command_component(self, width_m: float) -> None:
        if self._component is not None:
            self._component.command_width(width_m)

    def _lost(self, err: BaseException) -> Fr3ConnectionLost:
        """Latch (and return, to raise) the fault of a robot that stopped answering."""
        lost = Fr3ConnectionLost(f"the {self.robot_name} at {self.config.host} stopped answering ({err}); the robot "
                                 "stops on its own; reconnect after checking it")
        self._faults.set(lost)
        return lost

    # ------------------------------------------------------------------ commands
    def set_gains(self, name: str) -> None:
        """Switch to the gain set ``name`` (e.g. ``"compliant"``, ``"precise"``); see ``_apply_gains``."""
        if name not in self.config.gains:
            raise ValueError(f"unknown gain set {name!r}; this rig has {sorted(self.config.gains)}")
        self._raise_fault()
        with self._lock:
            self.gain_set = name
            self._apply_gains()

    def sync(self, period_s: float) -> None:
        """Wait until ``period_s`` has passed since the previous ``sync`` (the targets stay set)."""
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
            self._end_control()
            self._run_joint_motion(q)
            self._posture_rad = q
            self._faults.clear()
            self._faults.recoveries = 0
            self._start_control()
            self._on_reset()
            self._set_holding(True)
        if target is not None:
            approach(self, target, self._clock, self.robot_name)
        return self.read_state()

    def render(self, camera: str, height: int | None = None, width: int | None = None) -> np.ndarray:
        raise ValueError(f"the {self.robot_name} backend has no camera {camera!r}: a rig's cameras are the [cameras] "
                         "tables of its rig file (drivers.cameras.rig)")

    # ------------------------------------------------------------------ faults and the monitor
    def _hold_if_stale(self) -> None:
        """The command watchdog (monitor thread, lock held): no fresh command for ``watchdog_s``: hold."""
        if self._watchdog.expired() and not self._holding:
            self._log.info("%s: no fresh command for %.0f ms: holding the pose", self.robot_name,
                           self._watchdog.age_s() * 1e3)
            self.stop()

    def _check_safety(self, state: ArmState) -> None:
        """Hold the pose and raise :class:`Fr3SafetyStop` if the force or speed limit is exceeded."""
        problem = (wrench_violation(state.ext_wrench_n_nm, self.config.max_external_force_n, self.config.max_external_torque_nm)
                   or speed_violation(state.tcp_linvel_m_s, self.config.max_measured_tcp_speed_m_s))
        if problem:
            self.stop()
            stop = Fr3SafetyStop(f"{self.robot_name} safety stop: {problem}; holding the pose; reset() to go on")
            self._faults.set(stop)
            raise stop

    def _on_reflex(self, err: BaseException, resume: bool = True) -> None:
        """A reflex ended the control loop: record it, recover (bounded) and (``resume``) restart
        impedance control holding the pose."""
        self._drop_control()
        names = self._faults.record_reflex(err)  # raises Fr3ReflexError when the recoveries are spent
        self._recover(f"reflex {list(names)}")
        if resume:
            self._start_control()
            self._set_holding(True)

    def _set_holding(self, holding: bool) -> None:
        self._holding = holding
        (self.hold_event.set if holding else self.hold_event.clear)()

    def _raise_fault(self) -> None:
        self._require()
        self._faults.raise_if_set()

    def _require(self) -> None:
        if self._robot is None:
            raise RuntimeError(f"the {self.robot_name} backend is not connected: call connect() or use 'with backend:'")

    # ------------------------------------------------------------------ the client library's part
    @abc.abstractmethod
    def read_state(self) -> ArmState: ...

    @abc.abstractmethod
    def command(self, target: ArmTarget) -> ArmTarget: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    @abc.abstractmethod
    def _open(self) -> None:
        """Open the robot (and the hand) and set ``self._robot``; on failure release all and raise."""

    @abc.abstractmethod
    def _release(self) -> None:
        """Drop every handle of the client library (the destructors disconnect)."""

    @abc.abstractmethod
    def _read_arm(self) -> ArmState:
        """The arm's state (gripper width 0; ``read_state`` adds the hand's)."""

    @abc.abstractmethod
    def _start_control(self) -> None:
        """Start Cartesian impedance control holding the current pose (lock held)."""

    @abc.abstractmethod
    def _end_control(self) -> None:
        """Stop the running impedance controller, if any, and wait for it to end (lock held)."""

    @abc.abstractmethod
    def _drop_control(self) -> None:
        """Forget the controller the robot has already ended (a reflex), without stopping it."""

    @abc.abstractmethod
    def _apply_gains(self) -> None:
        """Make the running controller use ``self.gain_set`` (lock held)."""

    @abc.abstractmethod
    def _run_joint_motion(self, q: np.ndarray) -> None:
        """Drive to ``q``; a reflex on the way is recovered and the motion retried (bounded)."""

    @abc.abstractmethod
    def _recover(self, why: str) -> None:
        """Clear the robot's errors, or raise :class:`Fr3Error` saying ``why`` recovery was needed."""

    @abc.abstractmethod
    def _monitor_once(self) -> None:
        """One check of the monitor thread (lock held)."""

    def _on_reset(self) -> None:
        """After a reset's joint motion, control restarted (lock held); nothing by default."""


def approach(backend: Any, target: ArmTarget, clock: Callable[[], float], robot: str = "arm", timeout_s: float = 5.0,
             tolerance_m: float = 0.005) -> None:
    """Command ``target`` every 50 ms until the TCP is within ``tolerance_m`` of it (or time is up)."""
    rate, deadline = Rate(20.0, clock=clock), clock() + timeout_s
    while clock() < deadline:
        sent = backend.command(target)
        if np.linalg.norm(sent.tcp_pos_m - backend.read_state().tcp_pos_m) < tolerance_m and np.allclose(
                sent.tcp_pos_m, target.tcp_pos_m, atol=1e-9):
            return
        rate.sleep()
    logging.getLogger(type(backend).__module__).warning("%s reset: TCP did not reach %s within %.1f s", robot,
                                                        np.round(target.tcp_pos_m, 3), timeout_s)


def registry_config(robot: str, obs: str, rig: str | None, options: dict[str, Any],
                    load_rig: Callable[..., Fr3Config], config_cls: type[Fr3Config]) -> Fr3Config:
    """``make_backend``'s shared part: state observations only; the rig file's settings (``options``
    win over the file), or ``config_cls(**options)`` without a rig file."""
    if obs != "state":
        raise NotImplementedError(f"obs={obs!r}: the {robot} backend serves state observations; pixel observations "
                                  "need the rig's cameras wired into the env, which is not done yet")
    return load_rig(rig, **options) if rig is not None else config_cls(**options)


def rig_gripper(rig: str | None) -> Gripper | None:
    """The separate gripper of the rig file's ``[gripper.<kind>]`` table (none without a rig or a table)."""
    if rig is None:
        return None
    from drivers.arm.grippers import load_rig_gripper

    return load_rig_gripper(rig)
