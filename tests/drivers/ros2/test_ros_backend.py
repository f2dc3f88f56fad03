"""RosCarBackend / RosQuadBackend / RosArmBackend talking, over CdrLoopback (real CDR bytes), to a RobotBridge that
wraps the MuJoCo car, quadrotor and arm: the family contract checks pass through ROS messages; a silent topic is
a clear error naming it; the config, rig file and registry entries; what happens without rclpy."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from drivers.ros2.bridge import RobotBridge
from drivers.ros2.families import family_messages
from drivers.ros2.qos import qos_for
from drivers.ros2.registration import BACKENDS
from drivers.ros2.ros_backend import (RosArmBackend, RosCarBackend, RosQuadBackend, StaleStateError, make_backend,
                                      make_car)
from drivers.ros2.ros_backend_config import RosBackendConfig, RosRigError
from drivers.ros2.transport import CdrLoopback
from robot_rl.backends.car import CarCommand
from robot_rl.testing import quad_backend
from robot_rl.testing.arm_backend import check_arm_backend
from robot_rl.testing.car_backend import check_car_backend
from sim.arm.backend import MujocoArm, MujocoArmConfig
from sim.car.backend import MujocoCar, MujocoCarConfig
from sim.quad.backend import MujocoQuad

BRIDGE_PERIOD_S = 0.01


def bridged(sim, **bridge_options) -> tuple[CdrLoopback, RobotBridge]:
    loop = CdrLoopback()
    bridge = RobotBridge(sim, loop, **bridge_options)
    bridge.timer = bridge.run_every(BRIDGE_PERIOD_S)
    return loop, bridge


@pytest.fixture(scope="module")
def sim_car():
    with MujocoCar(MujocoCarConfig(cameras=())) as car:
        yield car


@pytest.fixture(scope="module")
def sim_arm():
    with MujocoArm(MujocoArmConfig(cameras=())) as arm:
        yield arm


def test_the_ros_car_passes_the_car_checks_through_cdr_messages(sim_car):
    # the node's own command timeout out of the way: the watchdog check sees the ROS backend's watchdog
    loop, bridge = bridged(sim_car, topics_prefix="/car1", command_timeout_s=10.0)
    car = RosCarBackend(RosBackendConfig(spec=sim_car.spec, topics_prefix="/car1"), transport=loop)
    assert car.spec.command_modes == ("speed",)  # ackermann_msgs has no throttle: refused by the checks
    check_car_backend(car, watchdog=True)
    assert bridge.stats.commands_executed > 20 and bridge.stats.commands_refused == 0
    assert bridge.stats.timeouts == 0 and bridge.stats.stops >= 3  # stop(), the watchdog's stop, close()


def test_without_a_stop_topic_the_car_brakes_on_the_zero_speed_stream(sim_car):
    sim_car.set_pose(np.zeros(2), 0.0)
    loop, bridge = bridged(sim_car, command_timeout_s=10.0)
    with RosCarBackend(RosBackendConfig(spec=sim_car.spec, stop_topic=False), transport=loop) as car:
        for _ in range(10):
            car.command(CarCommand(steering_rad=0.1, speed_m_s=0.6))
            car.sync(0.05)
        assert car.read_state().forward_speed_m_s > 0.3
        car.stop()
        car.sync(1.0)
        state = car.read_state()
        assert abs(state.forward_speed_m_s) < 0.05 and state.steering_rad == pytest.approx(0.1, abs=0.01)
    assert bridge.stats.stops == 0 and bridge.stats.commands_executed > 25  # braked by speed commands alone


def test_the_ros_quadrotor_flies_lands_and_refuses_other_levels_through_cdr():
    sim = MujocoQuad()
    with sim:
        sim.set_state(np.array([0.2, -0.1, 0.8]), quad_backend.LEVEL_WXYZ, np.zeros(3), np.zeros(3))
        loop, bridge = bridged(sim)
        with RosQuadBackend(RosBackendConfig(spec=sim.spec), transport=loop) as quad:
            assert quad.spec.command_levels == ("velocity",)
            state = quad.read_state()
            quad_backend.check_state(state)
            assert not state.armed
            np.testing.assert_allclose(state.pos_m, sim.read_state().pos_m, atol=1e-12)  # as of the last tick
            np.testing.assert_allclose(state.pos_m, [0.2, -0.1, 0.8], atol=1e-3)
            quad_backend.check_commands(quad)  # velocity clipped as clip_quad_command; other levels refused
            quad_backend.check_stop_lands(quad)  # through the stop topic: the sim lands and disarms
            quad.command(quad_backend.commands("velocity", sim.spec.hover_thrust_frac, 1.0))
            assert quad.read_state().armed  # a command resumes
    assert not quad.connected


def test_the_ros_arm_passes_the_arm_checks_through_cdr_messages(sim_arm):
    loop, bridge = bridged(sim_arm)
    check_arm_backend(RosArmBackend(RosBackendConfig(spec=sim_arm.spec), transport=loop))
    assert bridge.stats.commands_refused == 0 and bridge.stats.commands_executed > 20


def test_hostile_arm_commands_are_refused_by_the_bridge(sim_arm):
    sim_arm.reset(sim_arm.spec.home_joint_pos_rad)
    loop, bridge = bridged(sim_arm)
    held = sim_arm.read_state().tcp_pos_m
    pose = {"header": {"stamp": {"sec": 1, "nanosec": 0}, "frame_id": "base_link"},
            "pose": {"position": {"x": float("nan"), "y": 0.0, "z": 0.3},
                     "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}}}
    not_unit = {**pose, "pose": {"position": {"x": 0.4, "y": 0.0, "z": 0.3},
                                 "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 7.0}}}
    command = qos_for("command", "publisher")
    for message in (pose, not_unit):
        loop.publish("cmd/tcp_target", "geometry_msgs/msg/PoseStamped", message, command)
    loop.publish("cmd/gripper", "std_msgs/msg/Float64", {"data": float("inf")}, command)
    names = [f"joint{i + 1}" for i in range(sim_arm.spec.dof)]
    home = np.asarray(sim_arm.spec.home_joint_pos_rad)
    for name, position in ((names, home[:-1]), (names[:-1] + ["elbow_of_another_robot"], home)):
        reset = {"header": pose["header"], "name": name, "position": position, "velocity": np.zeros(0),
                 "effort": np.zeros(0)}
        loop.publish("cmd/reset_joints", "sensor_msgs/msg/JointState", reset, command)
    loop.sleep(0.3)
    assert bridge.stats.commands_refused == 5 and bridge.stats.commands_executed == 0
    assert bridge.stats.refused_by_role == {"tcp_target": 2, "gripper_cmd": 1, "reset_joints": 2}
    assert "elbow_of_another_robot" in bridge.stats.last_refusal
    assert np.linalg.norm(sim_arm.read_state().tcp_pos_m - held) < 0.005


def test_a_joint_the_arm_does_not_have_is_a_clear_error(sim_arm):
    loop, messages = CdrLoopback(), family_messages("arm")
    state = sim_arm.read_state()

    def publish_state() -> None:
        out = messages.state_to_messages(state, sim_arm.spec, loop.now_ns(), RobotBridge(sim_arm, loop).frames)
        out["joint_states"]["name"][2] = "elbow_of_another_robot"
        for topic in messages.state_topics:
            loop.publish(topic.default_name, topic.typename, out[topic.role])

    loop.create_timer(0.01, publish_state)
    with RosArmBackend(RosBackendConfig(spec=sim_arm.spec), transport=loop) as arm:
        with pytest.raises(ValueError, match="elbow_of_another_robot"):
            arm.read_state()


def test_a_silent_state_topic_is_an_error_naming_it(sim_car):
    loop, bridge = bridged(sim_car, topics_prefix="/car1")
    car = RosCarBackend(RosBackendConfig(spec=sim_car.spec, topics_prefix="/car1", state_max_age_s=0.3),
                        transport=loop)
    with car:
        car.read_state()
        bridge.timer.cancel()  # the robot node stops publishing
        loop.sleep(0.25)
        car.read_state()  # still young enough
        loop.sleep(0.1)
        with pytest.raises(StaleStateError, match="/car1/odom for 0.35"):
            car.read_state()


def test_connect_gives_up_naming_the_topics_that_never_spoke():
    loop = CdrLoopback()
    car = RosCarBackend(RosBackendConfig(connect_timeout_s=0.5, topics={"odom": "/vesc/odom"}), transport=loop)
    with pytest.raises(TimeoutError, match=r"\['/vesc/odom', 'drive_state'\] within 0.5 s"):
        car.connect()
    assert not car.connected and loop.now_ns() == 1_500_000_000  # virtual time: no real wait
    with pytest.raises(RuntimeError, match="not connected"):
        car.read_state()


def test_configs_rig_files_and_registry_entries(tmp_path):
    assert {(e.name, e.family) for e in BACKENDS} == {("ros_car", "car"), ("ros_quad", "quadrotor"), ("ros_arm", "arm")}
    rig = tmp_path / "car.toml"
    rig.write_text('[car.ros]\ntopics_prefix = "/car1"\nstate_max_age_s = 0.3\n'
                   '[car.ros.topics]\nackermann = "/drive"\n[car.ros.spec]\nmax_speed_m_s = 2.0\n')
    car = make_car(None, "state", rig=str(rig), state_max_age_s=0.4)
    assert car.spec.max_speed_m_s == 2.0 and car.spec.command_modes == ("speed",)
    assert car.topics["ackermann"] == "/drive" and car.topics["odom"] == "/car1/odom"
    assert car.config.state_max_age_s == 0.4 and car.config.rig == str(rig) and not car.connected
    arm_rig = tmp_path / "arm.toml"
    arm_rig.write_text('[arm.ros]\n[arm.ros.spec]\ndof = 2\njoint_limits_rad = [[-1.0, 1.0], [-2.0, 2.0]]\n'
                       'workspace_low_m = [0.2, -0.3, 0.0]\nworkspace_high_m = [0.6, 0.3, 0.5]\n'
                       'gripper_max_width_m = 0.08\nhome_joint_pos_rad = [0.0, 0.5]\n'
                       '[quadrotor.ros.spec]\ngeofence_low_m = [-2.0, -2.0, 0.0]\ngeofence_high_m = [2.0, 2.0, 3.0]\n')
    arm = make_backend("arm", None, "state", rig=str(arm_rig))
    assert arm.spec.joint_limits_rad.shape == (2, 2) and arm.spec.cameras == {}
    assert arm.command_roles == ("tcp_target", "gripper_cmd") and arm.topics["reset_joints"] == "cmd/reset_joints"
    quad = make_backend("quadrotor", None, "state", rig=str(arm_rig))
    np.testing.assert_array_equal(quad.spec.geofence_high_m, [2.0, 2.0, 3.0])
    assert quad.spec.command_levels == ("velocity",) and quad.spec.mass_kg == pytest.approx(0.027)  # the rest: Crazyflie
    rig.write_text("[car.ros]\nspeed_limit = 3\n")
    with pytest.raises(RosRigError, match="speed_limit"):
        make_car(None, "state", rig=str(rig))
    with pytest.raises(ValueError, match="obs must be 'state' or 'pixels'"):
        make_car(None, "depth")
    with pytest.raises(ValueError, match="unknown role"):
        RosCarBackend(RosBackendConfig(topics={"steering": "/x"}))
    with pytest.raises(ValueError, match="speed"):
        RosCarBackend(RosBackendConfig(spec={"command_modes": ("throttle",)}))
    with pytest.raises(ValueError, match="stop_topic"):
        RosQuadBackend(RosBackendConfig(stop_topic=False))
    with pytest.raises(ValueError, match="needs its spec"):
        RosArmBackend()


@pytest.mark.skipif(importlib.util.find_spec("rclpy") is not None, reason="rclpy is importable here")
def test_without_rclpy_connect_says_what_to_install():
    with pytest.raises(ImportError, match="source /opt/ros/humble/setup.bash"):
        RosCarBackend().connect()
