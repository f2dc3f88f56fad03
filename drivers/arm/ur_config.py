"""A UR rig's settings (:class:`UrConfig`), read from the rig's TOML file (:func:`load_ur_rig`): the
robot's address and model, reset pose, workspace box, servo gains and limits live there, not in code.

Example rig file (other tables belong to other drivers and are ignored here)::

    [arm.ur]
    host = "192.168.1.10"
    model = "ur5e"
    reset_joint_pos_rad = [0.0, -1.571, 1.571, -1.571, -1.571, 0.0]
    workspace_low_m = [-0.75, -0.35, 0.05]
    workspace_high_m = [-0.25, 0.35, 0.6]
    max_external_force_n = 40.0
    servo_lookahead_s = 0.1
    servo_gain = 300.0

Every field of :class:`UrConfig` may appear; ``robot_rl.make(..., backend="ur", rig="arm.toml")``
reads the file, and options given there win over it. Poses are in the controller's base frame (the
one the teach pendant shows) and the TCP is the pendant's active TCP.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from drivers.arm import ur_constants as ur
from robot_rl.backends.checks import check_range
from robot_rl.rig import build_rig_config, check_choice, float_vector, read_rig_table

SECTION = "arm.ur"

#: (field, low, high) of every number; the low end is open (the value must be above it).
_RANGES = (
    ("max_step_m", 0.0, 0.2), ("max_step_rad", 0.0, 1.0), ("max_tcp_speed_m_s", 0.0, 1.0),
    ("max_tcp_angular_speed_rad_s", 0.0, 3.0), ("max_measured_tcp_speed_m_s", 0.0, 2.0),
    ("max_external_force_n", 0.0, 200.0), ("max_external_torque_nm", 0.0, 50.0), ("watchdog_s", 0.0, 2.0),
    ("connect_timeout_s", 0.0, 60.0), ("reset_timeout_s", 0.0, 300.0), ("reset_speed_rad_s", 0.0, 3.14),
    ("reset_acceleration_rad_s2", 0.0, 40.0), ("stop_deceleration_m_s2", 0.0, 20.0),
    ("kinematics_tolerance_m", 0.0, 0.1), ("script_watchdog_hz", 0.0, 500.0),
)


class UrRigError(ValueError):
    """A rig file's ``[arm.ur]`` table is malformed; the message names the file and the field."""


@dataclasses.dataclass(frozen=True)
class UrConfig:
    """Attributes (units in the names; poses in the controller's base frame, at the active TCP):
        host: the robot's address (from the rig file).
        model: the arm (:data:`drivers.arm.ur_constants.MODELS`): its kinematics are checked
            against the robot's at connect, and it sets the default RTDE rate.
        frequency_hz: the RTDE rate and the servo stream's rate (``None``: the model's, 500 Hz on
            e-Series, 125 Hz on CB3).
        reset_joint_pos_rad: the pose ``reset()`` drives to by default (the spec's home pose).
        workspace_low_m, workspace_high_m: the TCP target box; every target is clipped into it.
        max_step_m, max_step_rad: the largest TCP move one command may ask for.
        max_tcp_speed_m_s, max_tcp_angular_speed_rad_s: the servo setpoint moves toward the
            commanded target at most this fast.
        max_measured_tcp_speed_m_s: a measured TCP speed above this stops the arm and reports.
        max_external_force_n, max_external_torque_nm: a measured TCP wrench above these stops the
            arm (``servoStop``) and reports; every command raises until ``reset()``.
        servo_lookahead_s, servo_gain: ``servoL``'s look-ahead time (smoothing, [0.03, 0.2] s) and
            proportional gain ([100, 2000]).
        watchdog_s: no fresh command for this long: stop servoing and hold the pose.
        script_watchdog_hz: the robot-side watchdog of ur_rtde's control script: if the servo
            stream stops kicking it this often the controller stops the arm (``0``: off).
        stop_deceleration_m_s2: TCP deceleration of ``servoStop`` (hold, watchdog, safety stops).
        connect_timeout_s, reset_timeout_s: deadlines of ``connect()`` and of the reset motion.
        reset_speed_rad_s, reset_acceleration_rad_s2: the reset ``moveJ``'s joint speed/acceleration.
        kinematics_tolerance_m: at connect, our DH model of ``model`` (with the robot's TCP offset)
            must put the TCP within this of the robot's reported TCP, or ``connect()`` fails.
        rig: the rig file these settings came from (set by :func:`load_ur_rig`).
    """

    host: str = ""
    model: str = "ur5e"
    frequency_hz: float | None = None
    reset_joint_pos_rad: tuple[float, ...] = ur.READY_JOINT_POS_RAD
    workspace_low_m: tuple[float, float, float] = (-0.75, -0.35, 0.05)
    workspace_high_m: tuple[float, float, float] = (-0.25, 0.35, 0.6)
    max_step_m: float = 0.05
    max_step_rad: float = 0.3
    max_tcp_speed_m_s: float = 0.25
    max_tcp_angular_speed_rad_s: float = 1.0
    max_measured_tcp_speed_m_s: float = 0.5
    max_external_force_n: float = 40.0
    max_external_torque_nm: float = 10.0
    servo_lookahead_s: float = 0.1
    servo_gain: float = 300.0
    watchdog_s: float = 0.2
    script_watchdog_hz: float = 10.0
    stop_deceleration_m_s2: float = 10.0
    connect_timeout_s: float = 5.0
    reset_timeout_s: float = 30.0
    reset_speed_rad_s: float = 0.5
    reset_acceleration_rad_s2: float = 1.0
    kinematics_tolerance_m: float = 0.01
    rig: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ValueError("UrConfig.host must name the robot's address (rig file [arm.ur] host = ...)")
        check_choice(self, "model", tuple(ur.MODELS))
        if self.frequency_hz is not None:
            check_range(self, "frequency_hz", 10.0, 500.0)
        q = float_vector(self, "reset_joint_pos_rad", 6)
        if any(abs(v) > ur.JOINT_LIMITS_RAD[0, 1] for v in q):
            raise ValueError(f"UrConfig.reset_joint_pos_rad {q} must lie within the UR joint limits of +-2 pi")
        low, high = float_vector(self, "workspace_low_m", 3), float_vector(self, "workspace_high_m", 3)
        if any(lo >= hi for lo, hi in zip(low, high)):
            raise ValueError(f"UrConfig.workspace_low_m {low} must be below workspace_high_m {high} on every axis")
        for name, low_value, high_value in _RANGES:
            check_range(self, name, low_value, high_value, low_open=name != "script_watchdog_hz")
        check_range(self, "servo_lookahead_s", 0.03, 0.2)
        check_range(self, "servo_gain", 100.0, 2000.0)

    @property
    def rtde_hz(self) -> float:
        """The RTDE and servo-stream rate [Hz]."""
        return float(self.frequency_hz) if self.frequency_hz is not None else ur.MODELS[self.model].rtde_hz


def load_ur_rig(path: str | os.PathLike, **overrides: Any) -> UrConfig:
    """Read and validate the ``[arm.ur]`` table of a rig file; ``overrides`` win over the file."""
    return parse_ur_table({**read_rig_table(path, SECTION, UrRigError), **overrides}, path)


def parse_ur_table(table: Mapping[str, Any], path: str | os.PathLike = "<rig>") -> UrConfig:
    """Validate a parsed ``[arm.ur]`` table; errors name ``path`` and the field."""
    return build_rig_config(UrConfig, table, path, SECTION, UrRigError)
