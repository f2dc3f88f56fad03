"""Settings of the ROS-driven backends (:mod:`drivers.ros2.ros_backend`), from code or a rig file.

Example rig file (the car behind an F1TENTH stack; other tables belong to other drivers)::

    [car.ros]
    topics_prefix = "/car1"
    state_max_age_s = 0.3
    stop_topic = false            # the stack has no robot_rl stop topic: stop() streams zero speed
    [car.ros.topics]              # role -> topic name, where the stack differs from our defaults
    ackermann = "/drive"
    odom = "/odom"
    [car.ros.spec]                # the car's limits (CarSpec fields); omitted ones: VescConfig's defaults
    max_speed_m_s = 2.0
    max_steering_rad = 0.3

The table is ``[car.ros]``, ``[quadrotor.ros]`` or ``[arm.ros]``; ``robot_rl.make(..., backend="ros_car",
rig="car.toml")`` reads it and options given there win over it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Mapping

import numpy as np

from robot_rl.backends.arm import ArmSpec
from robot_rl.backends.car import SPEED, CarSpec
from robot_rl.backends.quadrotor import VELOCITY, QuadSpec
from robot_rl.rig import build_rig_config, read_rig_table

FAMILIES = ("arm", "car", "quadrotor")


class RosRigError(ValueError):
    """A rig file's ``[<family>.ros]`` table is malformed; the message names the file and the field."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class RosBackendConfig:
    """Attributes:
        spec: the robot's limits -- a ``CarSpec``/``QuadSpec``/``ArmSpec``, or a mapping of its fields
            (a rig table); ``None``: the family default (car: the VESC car's limits, quadrotor: the
            Crazyflie's; an arm has none: required). Only what travels over the family's messages is
            kept: car speed mode, quadrotor velocity level, no cameras (:func:`ros_spec`).
        topics_prefix: namespace of every topic (``""``: the node's own).
        topics: role -> topic name, replacing a default name (roles: :mod:`drivers.ros2.families`, and ``stop``).
        command_role: the command topic to publish on (``None``: the family's first).
        world_frame, base_frame, tool_frame: frame ids written into command headers.
        state_max_age_s: a required state topic with no message for this long makes ``read_state``
            raise :class:`~drivers.ros2.ros_backend.StaleStateError` naming it.
        connect_timeout_s: ``connect()`` fails when a required state topic has not spoken by then.
        reset_timeout_s: an arm's ``reset()`` fails when the joints (then the TCP target) are not reached by then.
        stop_topic: ``stop()`` also publishes ``true`` on ``cmd/stop`` (``std_msgs/msg/Bool``),
            which the robot node (:class:`~drivers.ros2.bridge.RobotBridge`) serves; a quadrotor needs it
            (landing has no standard message).
        node_name: the rclpy node's name (when the backend makes its own transport).
        rig: the rig file these settings came from (set by :func:`load_ros_rig`).
    """

    spec: Any = None
    topics_prefix: str = ""
    topics: Mapping[str, str] = dataclasses.field(default_factory=dict)
    command_role: str | None = None
    world_frame: str = "odom"
    base_frame: str = "base_link"
    tool_frame: str = "tcp"
    state_max_age_s: float = 0.5
    connect_timeout_s: float = 5.0
    reset_timeout_s: float = 10.0
    stop_topic: bool = True
    node_name: str = "robot_rl_backend"
    rig: str | None = None

    def __post_init__(self) -> None:
        for name in ("state_max_age_s", "connect_timeout_s", "reset_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value < math.inf):
                raise ValueError(f"RosBackendConfig.{name} must be a finite number > 0, got {value!r}")
        if not isinstance(self.topics, Mapping) or not all(isinstance(v, str) for v in self.topics.values()):
            raise ValueError(f"RosBackendConfig.topics must map roles to topic names, got {self.topics!r}")
        for name in ("topics_prefix", "world_frame", "base_frame", "tool_frame", "node_name"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"RosBackendConfig.{name} must be a string, got {getattr(self, name)!r}")


def ros_spec(family: str, spec: Any) -> Any:
    """The spec a ROS backend of ``family`` declares, from a config's ``spec`` (module docstring)."""
    if family == "car":
        return _car_spec(spec)
    if family == "quadrotor":
        return _quad_spec(spec)
    if family == "arm":
        return _arm_spec(spec)
    raise ValueError(f"no ROS backend for family {family!r}; families: {FAMILIES}")


def _car_spec(spec: Any) -> CarSpec:
    if isinstance(spec, CarSpec):
        base, fields = spec, {}
    else:
        from drivers.car.config import VescConfig

        base, fields = VescConfig().spec(), dict(spec or {})
    if SPEED not in fields.get("command_modes", base.command_modes):
        raise ValueError("a car over ROS takes speed-mode commands (ackermann_msgs has no throttle field); "
                         f"its spec's command_modes lack 'speed': {fields.get('command_modes', base.command_modes)}")
    return dataclasses.replace(base, **{**fields, "command_modes": (SPEED,), "cameras": {}, "render_cameras": ()})


def _quad_spec(spec: Any) -> QuadSpec:
    if isinstance(spec, QuadSpec):
        base, fields = spec, {}
    else:
        from drivers.quad.crazyflie_config import CrazyflieConfig

        base, fields = CrazyflieConfig().spec(), dict(spec or {})
    fields = {name: np.asarray(value, dtype=np.float64) if isinstance(value, (list, tuple)) else value
              for name, value in fields.items()}
    return dataclasses.replace(base, **{**fields, "command_levels": (VELOCITY,), "cameras": {}, "render_cameras": ()})


def _arm_spec(spec: Any) -> ArmSpec:
    if spec is None:
        raise ValueError("an arm over ROS needs its spec (dof, joint_limits_rad, workspace_low_m, workspace_high_m, "
                         "gripper_max_width_m, home_joint_pos_rad, ...): give spec= or an [arm.ros.spec] table")
    if isinstance(spec, ArmSpec):
        return dataclasses.replace(spec, cameras={}, render_cameras=())
    fields = {name: np.asarray(value, dtype=np.float64) if isinstance(value, (list, tuple)) else value
              for name, value in dict(spec).items()}
    try:
        return ArmSpec(**{**fields, "cameras": {}, "render_cameras": ()})
    except TypeError as err:
        raise ValueError(f"ArmSpec: {err}") from err


def load_ros_rig(path: str | os.PathLike, family: str, **overrides: Any) -> RosBackendConfig:
    """The ``[<family>.ros]`` table of a rig file as a config; ``overrides`` win over the file."""
    if family not in FAMILIES:
        raise ValueError(f"no ROS backend for family {family!r}; families: {FAMILIES}")
    section = f"{family}.ros"
    table = {**read_rig_table(path, section, RosRigError), **overrides}
    return build_rig_config(RosBackendConfig, table, path, section, RosRigError)
