"""``robot_node``: any registered backend (sim or a real robot) on ROS 2 topics.

The node builds the backend the rig file and its parameters name, connects it, and hands it to a
:class:`~drivers.ros2.bridge.RobotBridge` over an :class:`~drivers.ros2.transport.RclpyTransport`:
a timer steps the bridge at ``state_rate_hz`` (backend sync, the command timeout, the state
published on the family's topics; a simulator's rendered ``cameras`` too), commands arrive on the
family's command topics, and ``<prefix>/reset`` and ``<prefix>/stop`` are ``std_srvs/srv/Trigger``
services. Safety limits stay
in the backend; on exit the robot is stopped and closed.

What to run comes from the rig file's ``[robot_node]`` table, the node's parameters win over it::

    [robot_node]
    backend = "vesc"          # a registered backend (`robot-rl envs`)
    family = "car"            # optional when the backend name is unique
    # task = "car_lap"        # build the backend for this task's scene (simulators)
    [robot_node.options]      # the backend's options (fields of its config): parameters options.*
    max_speed_m_s = 1.5

A backend whose config has a ``rig`` field (VESC, FR3, ...) also reads its own table from the file.
Everything but :func:`main`'s setup is pure and tested without ROS.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import Any, Callable, Mapping

from drivers.ros2 import params
from drivers.ros2.params import ParameterError, ParamSpec

PROG = "robot_node"
SECTION = "robot_node"
SECTION_FIELDS = ("backend", "family", "task", "options")
DYNAMIC_PREFIXES = ("options",)
SERVICES = ("reset", "stop")
MAX_STATE_RATE_HZ = 1000.0

PARAMETERS = (
    ParamSpec("rig", "", "the rig file (TOML): its [robot_node] table names the backend, the backend reads its own "
                         "table (e.g. [car.vesc]) from it"),
    ParamSpec("backend", "", "a registered backend (`robot-rl envs` lists them); empty: [robot_node] backend"),
    ParamSpec("family", "", "the backend's robot family (arm, car, quadrotor); empty: [robot_node] family, else the "
                            "family of the only backend of that name"),
    ParamSpec("task", "", "build the backend for this task's scene (simulators); empty: [robot_node] task, else none"),
    ParamSpec("topic_prefix", "", "namespace of every topic and service (empty: the node's namespace)"),
    ParamSpec("state_rate_hz", 50.0, "rate of the bridge's step: backend sync, command timeout, state published [Hz]"),
    ParamSpec("command_timeout_s", 0.0, "no command for this long stops the robot [s]; 0: the backend's watchdog_s"),
    ParamSpec("frame_world", "odom", "frame id of the world (odometry) frame in headers"),
    ParamSpec("frame_base", "base_link", "frame id of the robot base in headers"),
    ParamSpec("frame_tool", "tcp", "frame id of the tool (TCP) in headers"),
    ParamSpec("publish_sent", True, "publish what the backend really sent on <command topic>_sent"),
    ParamSpec("cameras", "", "comma-separated cameras of the backend to render and publish on cameras/<camera>/image_raw "
                             "(simulators; a real robot's cameras come from camera_node); empty: none"),
    ParamSpec("image_transport", "raw", "raw (sensor_msgs/Image) or compressed (jpeg sensor_msgs/CompressedImage)"),
    ParamSpec("camera_rate_hz", 0.0, "publish rendered camera frames at most this often [Hz]; 0: every step"),
)
PARAMETER_NAMES = params.names(PARAMETERS)


@dataclasses.dataclass(frozen=True)
class RobotNodeSettings:
    """What the node runs, resolved from the parameters and the rig file."""

    rig: pathlib.Path
    backend: str
    family: str
    task: str | None
    options: dict[str, Any]
    topic_prefix: str
    state_rate_hz: float
    command_timeout_s: float | None
    frames: tuple[str, str, str]  # world, base, tool
    publish_sent: bool
    cameras: tuple[str, ...] = ()
    image_transport: str = "raw"
    camera_period_s: float | None = None  # None: every step

    @property
    def period_s(self) -> float:
        return 1.0 / self.state_rate_hz


def robot_settings(given: Mapping[str, Any], rig_table: Mapping[str, Any] | None = None) -> RobotNodeSettings:
    """The node's settings from the parameters it was given (``options.*`` included) and the rig's
    ``[robot_node]`` table (read from the ``rig`` parameter's file when None); errors name the parameter."""
    from drivers.ros2.images import check_image_transport

    values = params.resolve(PARAMETERS, given, DYNAMIC_PREFIXES)
    rig = _rig_path(values["rig"])
    if rig_table is None:
        from robot_rl.rig import check_fields, read_rig_table

        rig_table = read_rig_table(rig, SECTION, ParameterError, missing_ok=True)
        check_fields(rig_table, SECTION_FIELDS, rig, SECTION, ParameterError)
    backend = values["backend"] or rig_table.get("backend", "")
    if not backend:
        raise ParameterError(f"parameter 'backend' is empty and {rig} has no [{SECTION}] backend: name the backend to run")
    family = values["family"] or rig_table.get("family", "") or backend_family(backend)
    if not isinstance(rig_table.get("options", {}), Mapping):
        raise ParameterError(f"{rig}: [{SECTION}] options must be a table ([{SECTION}.options])")
    options = {**rig_table.get("options", {}), **params.unflatten(values, "options")}
    settings = RobotNodeSettings(
        rig=rig, backend=backend, family=family, task=values["task"] or rig_table.get("task") or None,
        options={name: _tuples(value) for name, value in options.items()},
        topic_prefix=params.topic_prefix("topic_prefix", values["topic_prefix"]),
        state_rate_hz=_rate(values["state_rate_hz"]),
        command_timeout_s=_timeout(values["command_timeout_s"]),
        frames=(values["frame_world"], values["frame_base"], values["frame_tool"]), publish_sent=values["publish_sent"],
        cameras=params.split_names(values["cameras"]),
        image_transport=params.checked("image_transport", check_image_transport, values["image_transport"]),
        camera_period_s=_camera_period(values["camera_rate_hz"]))
    check_options(settings)
    return settings


def _rig_path(value: str) -> pathlib.Path:
    if not value:
        raise ParameterError("parameter 'rig' is empty: give the rig file (rig:=/path/to/rig.toml)")
    path = pathlib.Path(value).expanduser()
    if not path.is_file():
        raise ParameterError(f"parameter 'rig': no such file {path}")
    return path


def _rate(value: float) -> float:
    if not 0.0 < value <= MAX_STATE_RATE_HZ:
        raise ParameterError(f"parameter 'state_rate_hz' must be in (0, {MAX_STATE_RATE_HZ:g}] Hz, got {value}")
    return value


def _timeout(value: float) -> float | None:
    if not (math.isfinite(value) and value >= 0.0):
        raise ParameterError(f"parameter 'command_timeout_s' must be >= 0 (0: the backend's watchdog_s), got {value}")
    return value or None


def _camera_period(rate_hz: float) -> float | None:
    if not (math.isfinite(rate_hz) and rate_hz >= 0.0):
        raise ParameterError(f"parameter 'camera_rate_hz' must be >= 0 (0: every step), got {rate_hz}")
    return 1.0 / rate_hz if rate_hz else None


def _tuples(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _tuples(v) for k, v in value.items()}
    return tuple(value) if isinstance(value, list) else value


def backend_family(backend: str) -> str:
    """The family of the only registered backend named ``backend``; otherwise a ParameterError
    listing the families that have it (or the known backends)."""
    from robot_rl import registry

    families = sorted(family for family, name in registry.backends() if name == backend)
    if len(families) == 1:
        return families[0]
    if families:
        raise ParameterError(f"parameter 'family': backend {backend!r} exists in {families}: name the family")
    known = sorted({name for _, name in registry.backends()})
    raise ParameterError(f"parameter 'backend': no registered backend {backend!r}; known: {known}")


def check_options(settings: RobotNodeSettings) -> None:
    """A ParameterError unless the family has the backend, naming ``options.<name>`` for an option
    the backend's config does not have."""
    from robot_rl import registry

    entry = registry.backends(settings.family).get((settings.family, settings.backend))
    if entry is None:
        known = sorted(name for _, name in registry.backends(settings.family))
        raise ParameterError(f"parameter 'backend': no backend {settings.backend!r} in the {settings.family} family; "
                             f"known: {known}")
    allowed = set(registry.option_names(entry.config))
    unknown = sorted(set(settings.options) - allowed)
    if unknown:
        raise ParameterError(f"unknown backend option(s) {['options.' + n for n in unknown]} for {settings.backend!r}; "
                             f"its options: {sorted(allowed - {'rig'})}")


def build_robot_backend(settings: RobotNodeSettings) -> Any:
    """The unconnected backend the settings name (as ``robot-rl serve-robot`` builds it)."""
    from robot_rl.remote.command import build_backend

    serve = {"family": settings.family, "backend": settings.backend, "task": settings.task, "obs": "state",
             "options": settings.options}
    return build_backend(serve, settings.rig)


def make_bridge(backend: Any, transport: Any, settings: RobotNodeSettings) -> Any:
    """The :class:`~drivers.ros2.bridge.RobotBridge` of a connected backend."""
    from drivers.ros2.bridge import RobotBridge
    from drivers.ros2.families import Frames

    return RobotBridge(backend, transport, topics_prefix=settings.topic_prefix, frames=Frames(*settings.frames),
                       command_timeout_s=settings.command_timeout_s, publish_sent=settings.publish_sent,
                       cameras=settings.cameras, image_transport=settings.image_transport,
                       camera_period_s=settings.camera_period_s)


def call_trigger(handler: Callable[[], tuple[bool, str]], log: Callable[[str], None]) -> tuple[bool, str]:
    """A Trigger service's answer: the handler's ``(success, message)``, or ``(False, what failed)``
    when it raised (logged; the node keeps serving)."""
    try:
        success, message = handler()
    except Exception as err:  # a failed reset is an answer, not the end of the node
        message = f"{type(err).__name__}: {err}"
        log(message)
        return False, message
    return bool(success), str(message)


# ----------------------------------------------------------------------------- rclpy (thin)
def _setup(node: Any) -> Callable[[], None]:
    from drivers.ros2.qos import import_ros
    from drivers.ros2.transport import RclpyTransport, join_topic

    settings = robot_settings(params.declare(node, PARAMETERS, DYNAMIC_PREFIXES))
    backend = build_robot_backend(settings)
    backend.connect()
    try:
        bridge = make_bridge(backend, RclpyTransport(node), settings)
        bridge.run_every(settings.period_s)
        trigger = import_ros("std_srvs.srv").Trigger
        for name, handler in zip(SERVICES, (bridge.reset, bridge.stop)):
            node.create_service(trigger, join_topic(settings.topic_prefix, name), _serve(handler, node))
    except BaseException:
        backend.close()
        raise
    node.get_logger().info(f"{settings.backend} ({settings.family}) on ROS 2 at {settings.state_rate_hz:g} Hz; "
                           f"topics {sorted(bridge.topics.values())}")

    def cleanup() -> None:
        try:
            backend.stop()
        finally:
            backend.close()

    return cleanup


def _serve(handler: Callable[[], tuple[bool, str]], node: Any) -> Callable[[Any, Any], Any]:
    def callback(request: Any, response: Any) -> Any:
        response.success, response.message = call_trigger(handler, node.get_logger().error)
        return response

    return callback


def main(argv: list[str] | None = None) -> int:
    """Console script ``robot_node`` (``ros2 run robot_rl_ros robot_node --ros-args -p rig:=car.toml``)."""
    from drivers.ros2.node_runtime import run_node

    return run_node(PROG, _setup, argv)


if __name__ == "__main__":
    raise SystemExit(main())
