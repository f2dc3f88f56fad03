"""An FR3 rig's settings (:class:`Fr3Config`), read from the rig's TOML file (:func:`load_fr3_rig`):
the robot's address, reset pose, workspace box, gains and gripper live there, never in code.

Example rig file (other tables belong to other drivers and are ignored here)::

    [arm.fr3]
    host = "172.16.0.2"
    reported_ee_frame = "tcp"            # Desk has the Franka Hand set as end effector
    gripper = "franka_hand"              # or "none"
    reset_joint_pos_rad = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
    workspace_low_m = [0.3, -0.25, 0.02]
    workspace_high_m = [0.7, 0.25, 0.45]
    max_external_force_n = 25.0
    gain_set = "compliant"

    [arm.fr3.gains.precise]              # replaces the built-in "precise" set
    stiffness_pos_n_m = 2500.0
    stiffness_rot_nm_rad = 120.0
    clip_pos_m = 0.008
    clip_rot_rad = 0.05

Every field of :class:`Fr3Config` may appear; ``robot_rl.make(..., backend="fr3", rig="arm.toml")``
reads the file, and options given there win over it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Mapping

from drivers.arm import fr3_constants as fr3
from drivers.arm.impedance import STIFFNESS_POS_RANGE_N_M, STIFFNESS_ROT_RANGE_NM_RAD
from robot_rl.rig import build_rig_config, check_choice, float_vector, read_rig_table
from robot_rl.backends.checks import check_range

_choice, _vector = check_choice, float_vector  # their names before robot_rl.rig held them
SECTION = "arm.fr3"

#: What the robot reports as ``O_T_EE``: the hand's TCP (Desk has the Franka Hand configured),
#: the bare flange (no end effector configured), or link 7 (franka-sim: 0.107 m short of the flange).
REPORTED_EE_FRAMES = ("tcp", "flange", "link7")
GRIPPERS = ("franka_hand", "none")
READY_JOINT_POS_RAD = (0.0, -math.pi / 4, 0.0, -3 * math.pi / 4, 0.0, math.pi / 2, math.pi / 4)


class Fr3RigError(ValueError):
    """A rig file's ``[arm.fr3]`` table is malformed; the message names the file and the field."""


@dataclasses.dataclass(frozen=True)
class GainSet:
    """One Cartesian impedance gain set, with its reference limit (the error fed to the spring is
    clipped per axis to ``clip_*``, so a far target never asks for more than ``stiffness * clip``)."""

    stiffness_pos_n_m: float
    stiffness_rot_nm_rad: float
    clip_pos_m: float
    clip_rot_rad: float

    def __post_init__(self) -> None:
        check_range(self, "stiffness_pos_n_m", *STIFFNESS_POS_RANGE_N_M)
        check_range(self, "stiffness_rot_nm_rad", *STIFFNESS_ROT_RANGE_NM_RAD)
        check_range(self, "clip_pos_m", 0.0, 0.1, low_open=True)
        check_range(self, "clip_rot_rad", 0.0, 0.5, low_open=True)


DEFAULT_GAINS = {
    "compliant": GainSet(stiffness_pos_n_m=400.0, stiffness_rot_nm_rad=30.0, clip_pos_m=0.02, clip_rot_rad=0.1),
    "precise": GainSet(stiffness_pos_n_m=2000.0, stiffness_rot_nm_rad=100.0, clip_pos_m=0.01, clip_rot_rad=0.05),
}


@dataclasses.dataclass(frozen=True)
class Fr3Config:
    """Attributes (units in the names; "TCP" is the Franka Hand's tool centre point, base frame):
        host: the robot's FCI address (from the rig file).
        reported_ee_frame: what ``O_T_EE`` is on this robot (:data:`REPORTED_EE_FRAMES`); the
            backend maps it to the TCP both ways.
        gripper: ``"franka_hand"`` (libfranka's gripper server, port 1338) or ``"none"``.
        reset_joint_pos_rad: the pose ``reset()`` drives to by default (the spec's home pose).
        workspace_low_m, workspace_high_m: the TCP target box; every target is clipped into it.
        max_step_m, max_step_rad: the largest TCP move one command may ask for.
        max_tcp_speed_m_s: targets move at most this fast (a command's step is also limited to
            this speed times the time since the previous command).
        max_measured_tcp_speed_m_s: a measured TCP speed above this stops the arm and reports.
        max_external_force_n, max_external_torque_nm: an estimated external wrench above these
            stops the arm (holds the pose) and reports; it is not clipped away silently.
        gains: the gain sets by name; ``gain_set`` is used at connect, ``set_gains(name)`` switches.
        nullspace_stiffness_nm_rad: posture stiffness toward the reset pose.
        watchdog_s: no fresh command for this long: hold the current pose.
        monitor_hz: rate of the thread that checks faults, the watchdog and the force limit.
        max_reflex_recoveries: automatic recoveries from reflexes allowed between two resets.
        connect_timeout_s, reset_timeout_s: deadlines of ``connect()`` and of one reset motion.
        reset_dynamics_factor: fraction of the robot's velocity/acceleration/jerk limits a reset uses.
        max_torque_rate_nm_s: franky ramps the Cartesian impedance torques at most this fast (its
            ``max_delta_tau`` per 1 ms cycle; resets always use 1000). The robot aborts a motion
            whose torque changes faster than 1000 Nm/s (``controller_torque_discontinuity``): a rig
            sets it lower for smoother torques, higher only to provoke that reflex on purpose.
        realtime: ``"enforce"`` (a real-time kernel, as Franka requires) or ``"ignore"`` (franka-sim,
            development machines).
        rig: the rig file these settings came from (set by :func:`load_fr3_rig`).
    """

    host: str = ""
    reported_ee_frame: str = "tcp"
    gripper: str = "franka_hand"
    reset_joint_pos_rad: tuple[float, ...] = READY_JOINT_POS_RAD
    workspace_low_m: tuple[float, float, float] = (0.25, -0.35, 0.02)
    workspace_high_m: tuple[float, float, float] = (0.75, 0.35, 0.6)
    max_step_m: float = 0.05
    max_step_rad: float = 0.3
    max_tcp_speed_m_s: float = 0.5
    max_measured_tcp_speed_m_s: float = 1.0
    max_external_force_n: float = 30.0
    max_external_torque_nm: float = 10.0
    gains: Mapping[str, GainSet] = dataclasses.field(default_factory=lambda: dict(DEFAULT_GAINS))
    gain_set: str = "compliant"
    nullspace_stiffness_nm_rad: float = 10.0
    watchdog_s: float = 0.2
    monitor_hz: float = 100.0
    max_reflex_recoveries: int = 3
    connect_timeout_s: float = 5.0
    reset_timeout_s: float = 30.0
    reset_dynamics_factor: float = 0.2
    max_torque_rate_nm_s: float = 1000.0
    realtime: str = "enforce"
    rig: str | None = None

    # not fields: what a subclass for another Franka robot (PandaConfig) changes
    _section = SECTION  # the rig file's table
    _robot = "FR3"  # names the robot in messages
    _joint_limits_rad = fr3.JOINT_LIMITS_RAD  # the reset pose must lie within them

    def __post_init__(self) -> None:
        cls_name = type(self).__name__
        if not isinstance(self.host, str) or not self.host:
            raise ValueError(f"{cls_name}.host must name the robot's FCI address (rig file [{self._section}] host = ...)")
        _choice(self, "reported_ee_frame", REPORTED_EE_FRAMES)
        _choice(self, "realtime", ("enforce", "ignore"))
        if self.gripper not in GRIPPERS:
            raise NotImplementedError(f"{cls_name}.gripper {self.gripper!r}: the {self._robot} backend drives "
                                      f"{list(GRIPPERS)}; another gripper (e.g. a Robotiq 2F) needs its own gripper driver")
        check_joint_pos(self, self._joint_limits_rad, self._robot)
        low, high = (_vector(self, name, 3) for name in ("workspace_low_m", "workspace_high_m"))
        if any(lo >= hi for lo, hi in zip(low, high)):
            raise ValueError(f"Fr3Config.workspace_low_m {low} must be below workspace_high_m {high} on every axis")
        for name, high_value in (("max_step_m", 0.2), ("max_step_rad", 1.0), ("max_tcp_speed_m_s", 2.0),
                                 ("max_measured_tcp_speed_m_s", 2.0), ("max_external_force_n", 150.0),
                                 ("max_external_torque_nm", 50.0), ("watchdog_s", 2.0), ("connect_timeout_s", 60.0),
                                 ("reset_timeout_s", 300.0), ("reset_dynamics_factor", 1.0),
                                 ("max_torque_rate_nm_s", 20000.0)):
            check_range(self, name, 0.0, high_value, low_open=True)
        check_range(self, "nullspace_stiffness_nm_rad", 0.0, 50.0)
        check_range(self, "monitor_hz", 10.0, 1000.0)
        check_range(self, "max_reflex_recoveries", 0, 100)
        if not self.gains or not all(isinstance(g, GainSet) for g in self.gains.values()):
            raise ValueError(f"Fr3Config.gains must map names to GainSet, got {self.gains!r}")
        _choice(self, "gain_set", tuple(self.gains))


def check_joint_pos(config: Any, joint_limits_rad: Any, robot: str) -> None:
    """A ValueError unless ``config.reset_joint_pos_rad`` is 7 finite values within ``joint_limits_rad``."""
    q = _vector(config, "reset_joint_pos_rad", 7)
    outside = [i + 1 for i, (v, (lo, hi)) in enumerate(zip(q, joint_limits_rad)) if not lo <= v <= hi]
    if outside:
        raise ValueError(f"{type(config).__name__}.reset_joint_pos_rad {q}: joints {outside} are outside the {robot} "
                         f"joint limits {joint_limits_rad.tolist()}")


def load_fr3_rig(path: str | os.PathLike, **overrides: Any) -> Fr3Config:
    """Read and validate the ``[arm.fr3]`` table of a rig file; ``overrides`` win over the file."""
    return parse_fr3_table({**read_rig_table(path, SECTION, Fr3RigError), **overrides}, path)


def parse_fr3_table(table: Mapping[str, Any], path: str | os.PathLike = "<rig>") -> Fr3Config:
    """Validate a parsed ``[arm.fr3]`` table; errors name ``path`` and the field."""
    return parse_franka_table(Fr3Config, table, path, Fr3RigError)


def parse_franka_table(config_cls: type[Fr3Config], table: Mapping[str, Any], path: str | os.PathLike,
                       error: type[ValueError]) -> Any:
    """A Franka config (``config_cls``: Fr3Config or a subclass) from its parsed rig table
    (``[<section>.gains.<name>]`` tables add or replace gain sets); ``error`` names ``path`` and the field."""
    section, values = config_cls._section, dict(table)
    if "gains" in values:
        if not isinstance(values["gains"], Mapping):
            raise error(f"{path}: [{section}.gains] must be a table of gain sets")
        values["gains"] = {**DEFAULT_GAINS, **{name: _gain_set(name, g, path, section, error)
                                               for name, g in values["gains"].items()}}
    return build_rig_config(config_cls, values, path, section, error)


def _gain_set(name: str, table: Any, path: str | os.PathLike, section: str, error: type[ValueError]) -> GainSet:
    if isinstance(table, GainSet):
        return table
    if not isinstance(table, Mapping):
        raise error(f"{path}: [{section}.gains.{name}] must be a table")
    try:
        return GainSet(**table)
    except (TypeError, ValueError) as err:
        raise error(f"{path}: [{section}.gains.{name}]: {err}") from err
