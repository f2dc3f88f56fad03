"""The robot and actor nodes without rclpy: their settings from parameters and rig files (errors naming the
parameter), the robot node's backend and bridge wired as main() wires them -- over CdrLoopback, the
in-process CDR transport, with the MuJoCo car -- the actor's `robot-rl actor` command line parsed by
robot-rl's own CLI, and main() without rclpy: one line, exit code 2."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tyro

from drivers.ros2 import actor_node, camera_node, robot_node
from drivers.ros2.families import Frames
from drivers.ros2.params import ParameterError
from drivers.ros2.qos import qos_for
from drivers.ros2.transport import CdrLoopback
from robot_rl import registry
from robot_rl.cli import COMMANDS

SIM_CAR_RIG = """
[robot_node]
backend = "sim"
family = "car"
task = "car_lap"
"""


@pytest.fixture
def rig(tmp_path):
    def write(text: str, name: str = "rig.toml"):
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


@pytest.mark.parametrize("module", [robot_node, camera_node, actor_node])
def test_declared_parameters_are_plain_data(module):
    names = module.PARAMETER_NAMES
    assert len(set(names)) == len(names) and all(name and "." not in name for name in names)
    assert all(spec.description for spec in module.PARAMETERS)


def test_robot_node_frame_defaults_are_the_message_layers():
    defaults = {spec.name: spec.default for spec in robot_node.PARAMETERS}
    assert (defaults["frame_world"], defaults["frame_base"], defaults["frame_tool"]) == tuple(vars(Frames()).values())


def test_robot_settings_come_from_the_rig_and_parameters_win(rig):
    path = rig(SIM_CAR_RIG + "[robot_node.options]\nphysics_hz = 250.0\n")
    settings = robot_node.robot_settings({"rig": path})
    assert (settings.backend, settings.family, settings.task) == ("sim", "car", "car_lap")
    assert settings.options == {"physics_hz": 250.0} and settings.command_timeout_s is None
    settings = robot_node.robot_settings({"rig": path, "task": "", "options.physics_hz": 500, "state_rate_hz": 20,
                                          "command_timeout_s": 0.3, "topic_prefix": "car1"})
    assert settings.options == {"physics_hz": 500} and settings.period_s == pytest.approx(0.05)
    assert settings.task == "car_lap", "an empty parameter leaves the rig's value"
    assert (settings.command_timeout_s, settings.topic_prefix) == (0.3, "car1")


def test_the_family_of_a_unique_backend_name_is_found(rig):
    assert robot_node.robot_settings({"rig": rig(""), "backend": "vesc"}).family == "car"
    with pytest.raises(ParameterError, match=r"parameter 'family': backend 'sim' exists in \['arm', 'car'"):
        robot_node.robot_settings({"rig": rig(""), "backend": "sim"})


@pytest.mark.parametrize("given, complaint", [
    ({}, r"parameter 'rig' is empty"),
    ({"rig": "/no/such/rig.toml"}, r"parameter 'rig': no such file"),
    ({"rig": "RIG", "state_rate_hz": 0.0}, r"parameter 'state_rate_hz' must be in \(0, 1000\]"),
    ({"rig": "RIG", "command_timeout_s": -1.0}, r"parameter 'command_timeout_s' must be >= 0"),
    ({"rig": "RIG", "state_rate_hz": "fast"}, r"parameter 'state_rate_hz' has type double"),
    ({"rig": "RIG", "backend": "warp_drive"}, r"parameter 'backend': no backend 'warp_drive' in the car family"),
    ({"rig": "RIG", "backend": "vesc", "family": "arm"}, r"parameter 'backend': no backend 'vesc' in the arm family"),
    ({"rig": "RIG", "stat_rate_hz": 5.0}, r"undeclared parameter\(s\) \['stat_rate_hz'\]"),
    ({"rig": "RIG", "image_transport": "theora"}, r"parameter 'image_transport': unknown image_transport"),
    ({"rig": "RIG", "camera_rate_hz": -2.0}, r"parameter 'camera_rate_hz' must be >= 0"),
    ({"rig": "RIG", "topic_prefix": "car 1"}, r"parameter 'topic_prefix': not a valid ROS 2 topic name"),
])
def test_bad_robot_parameters_are_named(rig, given, complaint):
    path = rig(SIM_CAR_RIG)
    with pytest.raises(ParameterError, match=complaint):
        robot_node.robot_settings({k: path if v == "RIG" else v for k, v in given.items()})


def test_a_rig_without_a_backend_or_with_a_bad_table_says_so(rig):
    with pytest.raises(ParameterError, match=r"no \[robot_node\] backend"):
        robot_node.robot_settings({"rig": rig("[car.vesc]\nport = '/dev/x'\n")})
    with pytest.raises(ParameterError, match=r"\[robot_node\]: unknown field\(s\) \['rate'\]"):
        robot_node.robot_settings({"rig": rig("[robot_node]\nbackend = 'vesc'\nrate = 5\n")})


def test_backend_options_are_checked_against_its_config(rig):
    with pytest.raises(ParameterError, match=r"unknown backend option\(s\) \['options.max_sped_m_s'\] for 'sim'"):
        robot_node.robot_settings({"rig": rig(SIM_CAR_RIG), "options.max_sped_m_s": 1.0})
    with pytest.raises(ParameterError, match=r"unknown backend option\(s\) \['options.colour'\]"):
        robot_node.robot_settings({"rig": rig(SIM_CAR_RIG + "[robot_node.options]\ncolour = 'red'\n")})


def test_a_real_backend_reads_its_own_table_from_the_rig(rig):
    """The VESC backend built as the node builds it (not connected: no serial port is opened)."""
    path = rig("[robot_node]\nbackend = 'vesc'\n[car.vesc]\nport = '/dev/ttyACM7'\nmax_speed_m_s = 1.5\n")
    car = robot_node.build_robot_backend(robot_node.robot_settings({"rig": path, "options.max_speed_m_s": 1.2}))
    assert car.config.port == "/dev/ttyACM7" and car.config.max_speed_m_s == 1.2 and not car.connected
    bad = robot_node.robot_settings({"rig": path, "options.max_speed_m_s": -1.0})
    with pytest.raises(ValueError, match=r"\[car.vesc\]: VescConfig.max_speed_m_s must be a finite number > 0"):
        robot_node.build_robot_backend(bad)


@pytest.fixture(scope="module")
def sim_car_node(tmp_path_factory):
    """The sim car built from a rig file as the robot node builds it, connected once for the module."""
    path = tmp_path_factory.mktemp("rig") / "rig.toml"
    path.write_text(SIM_CAR_RIG)
    backend = robot_node.build_robot_backend(robot_node.robot_settings({"rig": str(path)}))
    backend.connect()
    yield str(path), backend
    backend.close()


def test_the_robot_node_wiring_publishes_state_and_takes_commands(sim_car_node):
    path, backend = sim_car_node
    settings = robot_node.robot_settings({"rig": path, "topic_prefix": "car1", "state_rate_hz": 20.0,
                                          "command_timeout_s": 0.3, "frame_world": "map", "frame_base": "chassis",
                                          "cameras": "front", "camera_rate_hz": 5.0})
    loop = CdrLoopback()
    odom, sent, frames = [], [], []
    loop.subscribe("car1/odom", "nav_msgs/msg/Odometry", odom.append, qos_for("state"))
    loop.subscribe("car1/cameras/front/image_raw", "sensor_msgs/msg/Image", frames.append, qos_for("image"))
    loop.subscribe("car1/cmd/ackermann_sent", "ackermann_msgs/msg/AckermannDriveStamped", sent.append, qos_for("state"))
    bridge = robot_node.make_bridge(backend, loop, settings)
    timer = bridge.run_every(settings.period_s)
    loop.sleep(0.5)
    assert len(odom) == 10, "20 Hz for 0.5 s of ROS time"
    assert (odom[-1]["header"]["frame_id"], odom[-1]["child_frame_id"]) == ("map", "chassis")
    stamps_s = [f["header"]["stamp"]["sec"] + f["header"]["stamp"]["nanosec"] * 1e-9 for f in frames]
    assert len(frames) == 3 and min(np.diff(stamps_s)) >= 0.2 - 1e-9, f"the sim's camera at most at 5 Hz: {stamps_s}"
    assert frames[0]["header"]["frame_id"] == "front_optical_frame"
    command = {"header": {"stamp": {"sec": 1, "nanosec": 0}, "frame_id": "chassis"},
               "drive": {"steering_angle": 0.1, "steering_angle_velocity": 0.0, "speed": 0.5, "acceleration": 0.0,
                         "jerk": 0.0}}
    loop.publish("car1/cmd/ackermann", "ackermann_msgs/msg/AckermannDriveStamped", command, qos_for("command", "publisher"))
    assert len(sent) == 1 and 0.0 < sent[0]["drive"]["speed"] <= 0.5, "what the backend sent, within its limits"
    loop.sleep(0.5)
    assert bridge.command_timeout_s == 0.3 and bridge.stats.timeouts == 1, "the node's command_timeout_s is the bridge's"
    assert robot_node.call_trigger(bridge.reset, pytest.fail) == (True, "back at the start pose")
    timer.cancel()
    loop.close()


def test_a_failing_service_handler_is_an_answer_and_a_log_line():
    logged = []

    def broken() -> tuple[bool, str]:
        raise RuntimeError("the gripper is unplugged")

    assert robot_node.call_trigger(broken, logged.append) == (False, "RuntimeError: the gripper is unplugged")
    assert logged == ["RuntimeError: the gripper is unplugged"]


# ----------------------------------------------------------------------------- actor node
def parse_actor(argv: list[str]):
    """robot-rl's own CLI parsing the command line the actor node runs (without running it)."""
    config = tyro.extras.subcommand_cli_from_dict(COMMANDS, args=["actor", *argv])
    assert type(config).__name__ == "Actor"
    return config


def test_the_actor_command_line_is_robot_rl_actor_on_a_ros_backend(rig):
    path = rig("[car.ros]\nstate_max_age_s = 0.3\n")
    argv = actor_node.actor_argv({"id": "car7", "task": "car_lap", "rig": path, "topic_prefix": "car",
                                  "learner": "tcp://10.0.0.2:5555", "seed": 3, "max_hz": 20.0,
                                  "env_kwargs": "control_hz=20", "extra_args": "--sac.utd-ratio 4 --chunk-steps 5"})
    actor = parse_actor(argv)
    assert (actor.id, actor.learner, actor.env.task, actor.env.backend) == ("car7", "tcp://10.0.0.2:5555", "car_lap", "ros_car")
    assert (actor.env.seed, actor.max_hz, actor.sac.utd_ratio, actor.chunk_steps, actor.keys) == (3, 20.0, 4, 5, None)
    assert actor.env.options() == {"topics_prefix": "car", "rig": path, "control_hz": 20}
    _, _, backend_options, env_options = registry.make_parts("car_lap", "ros_car", "state", actor.env.options())
    assert backend_options == {"topics_prefix": "car", "rig": path} and env_options == {"control_hz": 20}, \
        "the ROS backend's config takes the options the actor node gives it"


def test_the_ros_backend_follows_the_tasks_family(rig):
    assert parse_actor(actor_node.actor_argv({"task": "quad_hover"})).env.backend == "ros_quad"
    arm = parse_actor(actor_node.actor_argv({"task": "pick_cube", "rig": rig("[cameras.front]\nkind = 'opencv'\n")}))
    assert arm.env.backend == "ros_arm" and arm.env.options() == {}, "no [arm.ros] table: the rig is not passed"
    assert parse_actor(actor_node.actor_argv({"task": "car_lap", "backend": "sim"})).env.backend == "sim"
    assert parse_actor(actor_node.actor_argv({"task": "car_lap", "obs": "pixels"})).env.obs == "pixels"


@pytest.mark.parametrize("given, complaint", [
    ({}, r"parameter 'task' is empty"),
    ({"task": "car_lap", "extra_args": "--hil 'simulated"}, r"parameter 'extra_args': No closing quotation"),
    ({"task": "car_lap", "seed": "three"}, r"parameter 'seed' has type integer"),
    ({"task": "no_such_task"}, r"unknown task 'no_such_task'"),
    ({"task": "car_lap", "rig": "/no/such/rig.toml"}, r"cannot read the rig file"),
    ({"task": "car_lap", "topic_prefix": "/car//1"}, r"parameter 'topic_prefix': not a valid ROS 2 topic name"),
])
def test_bad_actor_parameters_are_named(given, complaint):
    with pytest.raises(ValueError, match=complaint):
        actor_node.actor_argv(given)


# ----------------------------------------------------------------------------- main() without rclpy
@pytest.mark.parametrize("module", [robot_node, camera_node, actor_node])
def test_main_without_rclpy_prints_one_line_and_exits_2(module, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "rclpy", None)  # absent even on a machine with ROS sourced
    assert module.main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"{module.PROG}: error: cannot import rclpy") and "source /opt/ros/humble/setup.bash" in err


def test_parameters_declared_on_a_real_rclpy_node():
    rclpy = pytest.importorskip("rclpy", reason="rclpy comes with a ROS 2 install (source /opt/ros/<distro>/setup.bash)")
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from drivers.ros2 import params

    context = Context()
    rclpy.init(context=context)
    try:
        given = [Parameter("state_rate_hz", value=20), Parameter("options.max_speed_m_s", value=1.5)]
        node = rclpy.create_node("robot_node_test", context=context, parameter_overrides=given,
                                 automatically_declare_parameters_from_overrides=True)
        values = params.declare(node, robot_node.PARAMETERS, robot_node.DYNAMIC_PREFIXES)
        assert values["state_rate_hz"] == 20.0 and values["options.max_speed_m_s"] == 1.5 and values["rig"] == ""
        assert node.describe_parameter("command_timeout_s").description.startswith("no command for this long")
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_the_robot_node_on_a_live_ros_graph(tmp_path):
    """The MuJoCo car behind robot_node's own setup, on a real ROS 2 graph: odometry arrives, stop answers."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy comes with a ROS 2 install (source /opt/ros/<distro>/setup.bash)")
    import time

    from nav_msgs.msg import Odometry
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from std_srvs.srv import Trigger

    from drivers.ros2.qos import to_rclpy

    rig = tmp_path / "rig.toml"
    rig.write_text(SIM_CAR_RIG)
    context = Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    node = rclpy.create_node("robot_node", context=context, automatically_declare_parameters_from_overrides=True,
                             parameter_overrides=[Parameter("rig", value=str(rig)), Parameter("topic_prefix", value="car9")])
    probe = rclpy.create_node("probe", context=context)
    cleanup = robot_node._setup(node)
    try:
        odom = []
        probe.create_subscription(Odometry, "car9/odom", odom.append, to_rclpy(qos_for("state")))
        stop = probe.create_client(Trigger, "car9/stop")
        executor.add_node(node)
        executor.add_node(probe)
        deadline = time.monotonic() + 10.0
        while len(odom) < 3 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert len(odom) >= 3 and odom[-1].header.frame_id == "odom"
        assert stop.wait_for_service(timeout_sec=5.0)
        answer = stop.call_async(Trigger.Request())
        executor.spin_until_future_complete(answer, timeout_sec=5.0)
        assert answer.result().success and answer.result().message == "stopped"
    finally:
        cleanup()
        executor.shutdown()
        probe.destroy_node()
        node.destroy_node()
        rclpy.shutdown(context=context)
