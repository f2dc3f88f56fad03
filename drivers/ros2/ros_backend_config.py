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
    [car.ros.cameras.front]       # a camera: its frames are observed with obs="pixels" (RosCameraConfig)
    height = 64                   # the size the backend declares; frames are resized to it
    width = 64
    image_transport = "compressed"            # "raw": sensor_msgs/Image; "compressed": CompressedImage
    topic = "/car1/zed/left/image_rect_color/compressed"   # default: cameras/front/image_raw[/compressed]
    max_age_s = 0.25              # render() refuses an older frame, naming the topic

The table is ``[car.ros]``, ``[quadrotor.ros]`` or ``[arm.ros]``; ``robot_rl.make(..., backend="ros_car",
rig="car.toml")`` reads it and options given there win over it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Mapping

import numpy as np

from drivers.ros2.images import check_image_transport
from robot_rl.backends.arm import ArmSpec
from robot_rl.backends.base import CameraSpec
from robot_rl.backends.car import SPEED, CarSpec
from robot_rl.backends.quadrotor import QUAD_COMMAND_LEVELS, THRUST_RATES, VELOCITY, QuadSpec
from robot_rl.rig import build_rig_config, read_rig_table

FAMILIES = ("arm", "car", "quadrotor")
ROS_QUAD_LEVELS = (THRUST_RATES, VELOCITY)  # the quadrotor levels with a ROS message (drivers.ros2.messages_quad)


class RosRigError(ValueError):
    """A rig file's ``[<family>.ros]`` table is malformed; the message names the file and the field."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class RosCameraConfig:
    """One camera of a ROS backend (a ``[<family>.ros.cameras.<name>]`` table; the name is the table's key).

    Attributes:
        height, width: the image size the backend declares (its ``CameraSpec``) and ``render()`` returns; a
            frame of another size is resized to it (``cv2.INTER_AREA``, as our camera drivers' ``resize``).
        image_transport: ``"raw"`` (``sensor_msgs/msg/Image``: rgb8, bgr8, rgba8, bgra8 or mono8) or
            ``"compressed"`` (``sensor_msgs/msg/CompressedImage``: jpeg or png).
        topic: the image topic (a relative name goes under ``topics_prefix``); ``None``:
            ``cameras/<name>/image_raw`` (``.../image_raw/compressed``), where our robot and camera nodes publish.
        max_age_s: ``render()`` refuses a frame that arrived longer ago than this (our clock), naming the topic.
    """

    height: int
    width: int
    image_transport: str = "raw"
    topic: str | None = None
    max_age_s: float = 0.25

    def __post_init__(self) -> None:
        for name in ("height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"RosCameraConfig.{name} must be a positive integer, got {value!r}")
        check_image_transport(self.image_transport)
        if self.topic is not None and not isinstance(self.topic, str):
            raise ValueError(f"RosCameraConfig.topic must be a topic name, got {self.topic!r}")
        if not (isinstance(self.max_age_s, (int, float)) and 0 < self.max_age_s < math.inf):
            raise ValueError(f"RosCameraConfig.max_age_s must be a finite number > 0, got {self.max_age_s!r}")


def camera_config(name: str, value: Any) -> RosCameraConfig:
    """A :class:`RosCameraConfig` from itself or a mapping of its fields (a rig table); errors name the camera."""
    if isinstance(value, RosCameraConfig):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"RosBackendConfig.cameras[{name!r}] must be a table of RosCameraConfig fields, got {value!r}")
    try:
        return RosCameraConfig(**value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"RosBackendConfig.cameras[{name!r}]: {err}") from None


@dataclasses.dataclass(frozen=True, kw_only=True)
class RosBackendConfig:
    """Attributes:
        spec: the robot's limits -- a ``CarSpec``/``QuadSpec``/``ArmSpec``, or a mapping of its fields
            (a rig table); ``None``: the family default (car: the VESC car's limits, quadrotor: the
            Crazyflie's; an arm has none: required). Only what travels over the family's messages is
            kept: car speed mode, the quadrotor's ``command_levels``, the cameras below (:func:`ros_spec`).
        cameras: camera name -> :class:`RosCameraConfig` (or a mapping of its fields): the image topics the
            backend subscribes; observed with ``obs="pixels"``, else only rendered.
        topics_prefix: namespace of every topic (``""``: the node's own).
        topics: role -> topic name, replacing a default name (roles: :mod:`drivers.ros2.families`, and ``stop``).
        command_role: the command topic to publish on (``None``: the family's first); a quadrotor publishes each
            command on the topic of its level instead (``command_levels``), so leave it out (or ``"cmd_vel"``).
        command_levels: a quadrotor's: the command levels its ROS stack takes (``None``: ``("velocity",)``, the
            ``cmd_vel`` Twist). ``"thrust_rates"`` adds collective thrust + body rates as
            ``mavros_msgs/AttitudeTarget`` on ``attitude_target`` (PX4/ArduPilot through MAVROS, or our robot
            node around a backend that takes thrust_rates); the tasks' reset flies with velocity commands, so
            keep ``"velocity"`` in for them. The other families have one command form: leave it ``None``.
        world_frame, base_frame, tool_frame: frame ids written into command headers.
        state_max_age_s: a required state topic with no message for this long makes ``read_state``
            raise :class:`~drivers.ros2.ros_backend.StaleStateError` naming it.
        connect_timeout_s: ``connect()`` fails when a required state topic has not spoken by then.
        reset_timeout_s: an arm's ``reset()`` fails when the joints (then the TCP target) are not reached by then;
            so does a quadrotor's ``set_state`` (the flight to the task's start).
        reset_tolerance_m, reset_max_speed_m_s: a quadrotor's ``set_state`` has arrived once within this distance
            of the start and slower than this speed (as ``CrazyflieConfig``'s).
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
    command_levels: tuple[str, ...] | None = None
    world_frame: str = "odom"
    base_frame: str = "base_link"
    tool_frame: str = "tcp"
    state_max_age_s: float = 0.5
    connect_timeout_s: float = 5.0
    reset_timeout_s: float = 10.0
    reset_tolerance_m: float = 0.1
    reset_max_speed_m_s: float = 0.2
    stop_topic: bool = True
    cameras: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    node_name: str = "robot_rl_backend"
    rig: str | None = None

    def __post_init__(self) -> None:
        for name in ("state_max_age_s", "connect_timeout_s", "reset_timeout_s", "reset_tolerance_m",
                     "reset_max_speed_m_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value < math.inf):
                raise ValueError(f"RosBackendConfig.{name} must be a finite number > 0, got {value!r}")
        if not isinstance(self.topics, Mapping) or not all(isinstance(v, str) for v in self.topics.values()):
            raise ValueError(f"RosBackendConfig.topics must map roles to topic names, got {self.topics!r}")
        for name in ("topics_prefix", "world_frame", "base_frame", "tool_frame", "node_name"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"RosBackendConfig.{name} must be a string, got {getattr(self, name)!r}")
        if not isinstance(self.cameras, Mapping):
            raise ValueError(f"RosBackendConfig.cameras must map camera names to their settings, got {self.cameras!r}")
        object.__setattr__(self, "cameras", {name: camera_config(name, value) for name, value in self.cameras.items()})
        if self.command_levels is not None:
            object.__setattr__(self, "command_levels", ros_quad_levels(self.command_levels))
        self.camera_specs()  # a name CameraSpec refuses ("state") fails here, in the rig file's terms

    def camera_specs(self) -> dict[str, CameraSpec]:
        """The ``CameraSpec`` of every camera (name -> spec)."""
        return {name: CameraSpec(name, c.height, c.width) for name, c in self.cameras.items()}


def ros_quad_levels(levels: Any) -> tuple[str, ...]:
    """The quadrotor command levels a ROS stack takes, checked, in :data:`QUAD_COMMAND_LEVELS` order."""
    if isinstance(levels, str) or not isinstance(levels, (list, tuple)) or not levels \
            or not set(levels) <= set(ROS_QUAD_LEVELS) or len(set(levels)) != len(levels):
        raise ValueError(f"RosBackendConfig.command_levels must be distinct names from {ROS_QUAD_LEVELS} (the "
                         f"levels with a ROS message: Twist, mavros_msgs/AttitudeTarget), got {levels!r}")
    return tuple(level for level in QUAD_COMMAND_LEVELS if level in levels)


def ros_spec(family: str, spec: Any, cameras: Mapping[str, CameraSpec] | None = None, observed: bool = True,
             command_levels: tuple[str, ...] | None = None) -> Any:
    """The spec a ROS backend of ``family`` declares, from a config's ``spec`` (module docstring), its
    ``cameras`` (the observed ones with ``observed``, else only ``render_cameras``) and a quadrotor's
    ``command_levels`` (default: velocity only)."""
    cameras = dict(cameras or {})
    views = {"cameras": cameras if observed else {}, "render_cameras": () if observed else tuple(cameras)}
    if command_levels is not None and family != "quadrotor":
        raise ValueError(f"RosBackendConfig.command_levels is a quadrotor setting; a {family} over ROS has one "
                         f"command form: leave it out")
    if family == "car":
        return _car_spec(spec, views)
    if family == "quadrotor":
        levels = ros_quad_levels(command_levels) if command_levels is not None else (VELOCITY,)
        return _quad_spec(spec, {**views, "command_levels": levels})
    if family == "arm":
        return _arm_spec(spec, views)
    raise ValueError(f"no ROS backend for family {family!r}; families: {FAMILIES}")


def _car_spec(spec: Any, views: dict[str, Any]) -> CarSpec:
    if isinstance(spec, CarSpec):
        base, fields = spec, {}
    else:
        from drivers.car.config import VescConfig

        base, fields = VescConfig().spec(), dict(spec or {})
    if SPEED not in fields.get("command_modes", base.command_modes):
        raise ValueError("a car over ROS takes speed-mode commands (ackermann_msgs has no throttle field); "
                         f"its spec's command_modes lack 'speed': {fields.get('command_modes', base.command_modes)}")
    return dataclasses.replace(base, **{**fields, "command_modes": (SPEED,), **views})


def _quad_spec(spec: Any, views: dict[str, Any]) -> QuadSpec:
    if isinstance(spec, QuadSpec):
        base, fields = spec, {}
    else:
        from drivers.quad.crazyflie_config import CrazyflieConfig

        base, fields = CrazyflieConfig().spec(), dict(spec or {})
    fields = {name: np.asarray(value, dtype=np.float64) if isinstance(value, (list, tuple)) else value
              for name, value in fields.items()}
    return dataclasses.replace(base, **{**fields, **views})


def _arm_spec(spec: Any, views: dict[str, Any]) -> ArmSpec:
    if spec is None:
        raise ValueError("an arm over ROS needs its spec (dof, joint_limits_rad, workspace_low_m, workspace_high_m, "
                         "gripper_max_width_m, home_joint_pos_rad, ...): give spec= or an [arm.ros.spec] table")
    if isinstance(spec, ArmSpec):
        return dataclasses.replace(spec, **views)
    fields = {name: np.asarray(value, dtype=np.float64) if isinstance(value, (list, tuple)) else value
              for name, value in dict(spec).items()}
    try:
        return ArmSpec(**{**fields, **views})
    except TypeError as err:
        raise ValueError(f"ArmSpec: {err}") from err


def load_ros_rig(path: str | os.PathLike, family: str, **overrides: Any) -> RosBackendConfig:
    """The ``[<family>.ros]`` table of a rig file as a config; ``overrides`` win over the file."""
    if family not in FAMILIES:
        raise ValueError(f"no ROS backend for family {family!r}; families: {FAMILIES}")
    section = f"{family}.ros"
    table = {**read_rig_table(path, section, RosRigError), **overrides}
    return build_rig_config(RosBackendConfig, table, path, section, RosRigError)
