"""Fakes of panda-python at its boundary (``panda_py.Panda``, ``controllers.CartesianImpedance``,
``libfranka.Gripper``) for the Panda backend's tests: no Panda emulator exists, so these stand in,
and ``test_panda_py.py`` checks every public method here against the installed library
(:func:`robot_rl.testing.library_fakes.check_fake_matches`).

The arm is a small kinematic model built on panda-python's own kinematics (``panda_py.fk`` /
``panda_py.ik``, pure functions): while a Cartesian impedance controller runs, the TCP follows the
controller's reference with a first-order lag (time constant ``LAG_NM_S / stiffness``), joints by
inverse kinematics; ``O_T_EE`` is ``fk(q)`` (the hand's TCP, as a robot with the hand configured
reports it). Like panda-python, a reflex or a lost link ends the control loop silently and waits in
``raise_error()``. Test hooks are ``fake_*`` methods.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from typing import Any

import numpy as np
import panda_py

from drivers.arm import panda
from drivers.arm.panda_py_motion import PandaPyLibrary, pose_from_matrix
from robot_rl.geometry import quat_conj, quat_from_axis_angle, quat_mul, quat_normalize, quat_to_axis_angle, quat_to_mat

#: The TCP's lag behind the reference: time constant [s] = LAG_NM_S / translational stiffness [N/m].
LAG_NM_S = 20.0
NETWORK_ERROR = "libfranka: UDP receive: Timeout"
RECOVERY_REJECTED = "libfranka: Automatic recovery command rejected: command not possible in the current mode"


def reflex_message(names: tuple[str, ...]) -> str:
    """libfranka's ControlException text for a motion aborted by ``names``."""
    listed = ", ".join(f'"{n}"' for n in names)
    return f"libfranka: Move command aborted: motion aborted by reflex! [{listed}]\ncontrol_command_success_rate: 0.99"


@dataclasses.dataclass(frozen=True)
class FakeRobotState:
    """The ``libfranka.RobotState`` fields the backend reads (libfranka's has no Python constructor)."""

    q: tuple[float, ...]
    dq: tuple[float, ...]
    O_T_EE: tuple[float, ...]  # column-major 4x4
    O_F_ext_hat_K: tuple[float, ...]


class FakeCartesianImpedance:
    """``panda_py.controllers.CartesianImpedance``: keeps what it is told; the arm reads it."""

    def __init__(self, impedance: Any = None, damping_ratio: float = 1.0, nullspace_stiffness: float = 0.5,
                 filter_coeff: float = 1.0) -> None:
        self.impedance = np.diag([600.0] * 3 + [30.0] * 3) if impedance is None else _matrix(impedance)
        self.damping_ratio, self.nullspace_stiffness, self.filter_coeff = damping_ratio, nullspace_stiffness, filter_coeff
        self.reference: tuple[np.ndarray, np.ndarray] | None = None  # position, (x, y, z, w)
        self.sent: list[tuple[float, np.ndarray, np.ndarray]] = []  #: (monotonic time [s], position, x-y-z-w)
        self.arm: FakePanda | None = None  # set by FakePanda.start_controller

    def set_control(self, position: Any, orientation: Any, q_nullspace: Any = None) -> None:
        pos, quat = np.asarray(position, dtype=np.float64).reshape(3), np.asarray(orientation, dtype=np.float64).reshape(4)
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(quat))) or abs(np.linalg.norm(quat) - 1.0) > 1e-6:
            raise ValueError(f"set_control: bad reference {pos}, {quat}")
        if self.arm is not None:
            self.arm.fake_advance()  # the arm moved toward the old reference until now
        self.reference = (pos, quat)
        self.sent.append((time.monotonic(), pos, quat))

    def set_impedance(self, impedance: Any) -> None:
        if self.arm is not None:
            self.arm.fake_advance()
        self.impedance = _matrix(impedance)

    def set_damping_ratio(self, damping: float) -> None:
        self.damping_ratio = float(damping)


def _matrix(impedance: Any) -> np.ndarray:
    matrix = np.asarray(impedance, dtype=np.float64)
    if matrix.shape != (6, 6):
        raise TypeError(f"impedance must be 6x6, got {matrix.shape}")
    return matrix


class FakePanda:
    """``panda_py.Panda`` over the kinematic model above, starting at the ready pose."""

    def __init__(self, hostname: str, name: str = "panda", realtime_config: Any = None) -> None:
        self.hostname, self.name, self._clock = hostname, name, time.monotonic
        self._lock = threading.RLock()
        self._q = np.array(panda.READY_JOINT_POS_RAD, dtype=np.float64)
        self._dq = np.zeros(7)
        self._wrench = np.zeros(6)
        self._controller: FakeCartesianImpedance | None = None
        self._error: str | None = None
        self._linked, self._in_reflex = True, False
        self._refused_recoveries = 0
        self._reflex_on_move: tuple[str, ...] = ()
        self._last_s = time.monotonic()
        self.moves: list[np.ndarray] = []  #: joint goals of move_to_joint_position
        self.recoveries = 0  #: error recoveries run

    # -------------------------------------------------------------- the library's methods
    def get_state(self) -> FakeRobotState:
        with self._lock:
            if not self._linked and self._controller is None:
                raise RuntimeError(NETWORK_ERROR)  # no control loop: the getters read from the robot
            self.fake_advance()
            pose = panda_py.fk(self._q)
            return FakeRobotState(tuple(self._q), tuple(self._dq), tuple(pose.ravel(order="F")), tuple(self._wrench))

    def start_controller(self, controller: FakeCartesianImpedance) -> None:
        with self._lock:
            self.stop_controller()
            self.recover()
            self._controller, controller.arm = controller, self
            self._last_s = self._clock()

    def stop_controller(self) -> None:
        with self._lock:
            self.fake_advance()
            if self._controller is not None:
                self._controller.arm = None
            self._controller, self._dq = None, np.zeros(7)

    def is_moving(self) -> bool:
        return self._controller is not None

    def raise_error(self) -> None:
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise RuntimeError(error)

    def recover(self) -> None:
        with self._lock:
            if not self._linked:
                raise RuntimeError(NETWORK_ERROR)
            if not self._in_reflex:
                return
            if self._refused_recoveries > 0:
                self._refused_recoveries -= 1
                raise RuntimeError(RECOVERY_REJECTED)
            self._in_reflex, self.recoveries = False, self.recoveries + 1

    def move_to_joint_position(self, positions: Any, speed_factor: float = 0.2, stiffness: Any = None, damping: Any = None,
                               dq_threshold: float = 0.001, success_threshold: float = 0.01) -> bool:
        goal = np.asarray(positions, dtype=np.float64).reshape(7)
        with self._lock:
            self.stop_controller()
            self.recover()
            self.moves.append(goal)
            if self._reflex_on_move:  # the motion aborts half way; the error waits in raise_error()
                self._q = self._q + 0.5 * (goal - self._q)
                self._abort(reflex_message(self._reflex_on_move))
                self._reflex_on_move = ()
                return False
            self._q, self._dq = goal.copy(), np.zeros(7)
            return True

    # -------------------------------------------------------------- test hooks
    def fake_advance(self) -> None:
        """Move the arm toward the controller's reference for the time since the last call."""
        with self._lock:
            now = self._clock()
            dt, self._last_s = now - self._last_s, now
            if self._controller is None or self._controller.reference is None or dt <= 0.0:
                return
            tau_s = LAG_NM_S / self._controller.impedance[0, 0]
            alpha = 1.0 - math.exp(-dt / tau_s)
            pos, quat = pose_from_matrix(panda_py.fk(self._q))
            ref_pos, (x, y, z, w) = self._controller.reference
            turn = quat_to_axis_angle(quat_mul(np.array([w, x, y, z]), quat_conj(quat)))
            quat = quat_normalize(quat_mul(quat_from_axis_angle(alpha * turn), quat))
            pose = np.eye(4)
            pose[:3, :3], pose[:3, 3] = quat_to_mat(quat), pos + alpha * (ref_pos - pos)
            q = _ik(pose, self._q)
            if np.all(np.isfinite(q)) and np.max(np.abs(q - self._q)) < 0.5:  # unreachable: the arm stays
                self._q, self._dq = q, (q - self._q) / dt

    def fake_reflex(self, names: tuple[str, ...] = ("cartesian_reflex",)) -> None:
        """A reflex fires now: the control loop ends; the robot waits for an error recovery."""
        with self._lock:
            self.fake_advance()
            self._abort(reflex_message(names))

    def fake_reflex_on_next_move(self, names: tuple[str, ...] = ("joint_position_limits_violation",)) -> None:
        self._reflex_on_move = names

    def fake_refuse_recoveries(self, count: int) -> None:
        """The next ``count`` error recoveries are rejected."""
        self._refused_recoveries = count

    def fake_disconnect(self) -> None:
        """The robot stops answering: a running loop ends with libfranka's network timeout."""
        with self._lock:
            self.fake_advance()
            self._linked = False
            if self._controller is not None:
                self._abort(NETWORK_ERROR, reflex=False)

    def fake_push(self, force_n: Any) -> None:
        """Set the estimated external force [N] (torque stays 0)."""
        self._wrench = np.concatenate([np.asarray(force_n, dtype=np.float64), np.zeros(3)])

    def fake_controller(self) -> FakeCartesianImpedance | None:
        return self._controller

    def _abort(self, error: str, reflex: bool = True) -> None:
        if self._controller is not None:
            self._controller.arm = None
        self._controller, self._dq, self._error = None, np.zeros(7), error
        self._in_reflex = self._in_reflex or reflex


def _ik(pose: np.ndarray, q_near: np.ndarray) -> np.ndarray:
    """Joint positions putting ``fk`` at ``pose`` (panda-python's ``ik`` lands ~0.4 mm off ``fk``;
    one correction of the target removes that offset)."""
    q = np.asarray(panda_py.ik(pose, q_near, q_near[6]), dtype=np.float64)
    corrected = pose.copy()
    corrected[:3, 3] -= panda_py.fk(q)[:3, 3] - pose[:3, 3]
    return np.asarray(panda_py.ik(corrected, q_near, q_near[6]), dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class FakeGripperState:
    """The ``libfranka.GripperState`` fields (libfranka's has no Python constructor)."""

    width: float
    max_width: float
    is_grasped: bool
    temperature: int


class FakeGripper:
    """``panda_py.libfranka.Gripper``: ``move`` blocks while the fingers travel (like libfranka's),
    ``stop`` from another thread aborts it; an object between the fingers stops them."""

    def __init__(self, franka_address: str) -> None:
        self.address, self._clock = franka_address, time.monotonic
        self._lock = threading.Lock()
        self._from_m = self._to_m = 0.08
        self._start_s = self._end_s = time.monotonic()
        self._stopped = threading.Event()
        self._object_m = 0.0  # an object of this width between the fingers (0: none)
        self.moves: list[float] = []

    def move(self, width: float, speed: float) -> bool:
        if not 0.0 <= width <= 0.08 or speed <= 0.0:
            raise RuntimeError("libfranka gripper: Command failed!")
        with self._lock:
            start, self._stopped = self._width(), threading.Event()
            stop_at = max(width, self._object_m) if self._object_m and width < self._object_m else width
            self._from_m, self._to_m, self._start_s = start, stop_at, self._clock()
            self._end_s = self._start_s + abs(stop_at - start) / speed
            stopped, self.moves = self._stopped, self.moves + [width]
        if stopped.wait(max(0.0, self._end_s - self._clock())):
            raise RuntimeError("libfranka gripper: Command aborted!")
        return stop_at == width

    def read_once(self) -> FakeGripperState:
        with self._lock:
            width = self._width()
        return FakeGripperState(width, 0.08, bool(self._object_m) and abs(width - self._object_m) < 1e-6, 25)

    def homing(self) -> bool:
        return self.move(0.08, 0.1)

    def stop(self) -> bool:
        with self._lock:
            self._from_m = self._to_m = self._width()
            self._end_s = self._clock()
            self._stopped.set()
        return True

    def fake_hold_object(self, width_m: float) -> None:
        self._object_m = float(width_m)

    def _width(self) -> float:
        now = self._clock()
        if now >= self._end_s:
            return self._to_m
        phase = (now - self._start_s) / (self._end_s - self._start_s)
        return self._from_m + phase * (self._to_m - self._from_m)


class FakePandaRig:
    """One fake robot (arm + hand) and the :class:`PandaPyLibrary` that hands it to the backend."""

    def __init__(self) -> None:
        self.panda: FakePanda | None = None
        self.gripper: FakeGripper | None = None
        self.connects = 0

    def library(self) -> PandaPyLibrary:
        return PandaPyLibrary(Panda=self._panda, CartesianImpedance=FakeCartesianImpedance, Gripper=self._gripper,
                              fk=panda_py.fk, realtime_enforce="enforce", realtime_ignore="ignore")

    def _panda(self, hostname: str, name: str = "panda", realtime_config: Any = None) -> FakePanda:
        self.connects += 1
        if self.panda is None:
            self.panda = FakePanda(hostname, name, realtime_config)
        return self.panda

    def _gripper(self, franka_address: str) -> FakeGripper:
        if self.gripper is None:
            self.gripper = FakeGripper(franka_address)
        return self.gripper
