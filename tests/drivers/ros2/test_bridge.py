"""RobotBridge (the robot node's logic) wrapping the MuJoCo car, spoken to over CdrLoopback as another ROS node
would: state on every state topic, commands through the backend's own limits, the command timeout, the stop
topic and the reset/stop services, and hostile command messages refused and counted while the bridge runs on."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from drivers.ros2 import msg_dicts
from drivers.ros2.bridge import RobotBridge
from drivers.ros2.families import family_messages
from drivers.ros2.qos import qos_for
from drivers.ros2.transport import CdrLoopback
from sim.car.backend import MujocoCar, MujocoCarConfig

ACKERMANN = "ackermann_msgs/msg/AckermannDriveStamped"
TWIST = "geometry_msgs/msg/Twist"
PERIOD_S = 0.01
CAR = family_messages("car")


@pytest.fixture(scope="module")
def sim_car():
    car = MujocoCar(MujocoCarConfig(cameras=()))
    car.connect()
    start = car.read_state()
    car.start_pose = (start.pos_m.copy(), start.yaw_rad)
    yield car
    car.close()


@pytest.fixture
def rig(sim_car):
    """A fresh loopback and a bridge stepping the (re-placed) sim car every 10 ms; a recorder of topics."""
    sim_car.set_pose(*sim_car.start_pose)
    loop = CdrLoopback()
    bridge = RobotBridge(sim_car, loop, topics_prefix="/car1")
    bridge.run_every(PERIOD_S)
    heard: dict[str, list] = {}
    for topic in CAR.state_topics + CAR.command_topics:
        name = bridge.topics[topic.role] + ("_sent" if topic in CAR.command_topics else "")
        loop.subscribe(name, topic.typename, heard.setdefault(name, []).append, qos_for("state"))
    yield loop, bridge, heard
    loop.close()


def drive(speed_m_s: float, steering_rad: float = 0.0, time_ns: int = 0) -> dict:
    return {"header": msg_dicts.header(time_ns, "base_link"),
            "drive": {"steering_angle": steering_rad, "steering_angle_velocity": 0.0, "speed": speed_m_s,
                      "acceleration": 0.0, "jerk": 0.0}}


def send(loop: CdrLoopback, message: dict, topic: str = "/car1/cmd/ackermann", typename: str = ACKERMANN) -> None:
    loop.publish(topic, typename, message, qos_for("command", "publisher"))


def cruise(loop: CdrLoopback, seconds: float, speed_m_s: float = 0.6, steering_rad: float = 0.0) -> None:
    for _ in range(round(seconds / 0.05)):
        send(loop, drive(speed_m_s, steering_rad, loop.now_ns()))
        loop.sleep(0.05)


def test_every_state_topic_carries_the_wrapped_cars_state(rig, sim_car):
    loop, bridge, heard = rig
    cruise(loop, 0.5, steering_rad=0.1)
    newest = {role: heard[bridge.topics[role]][-1] for role in ("odom", "drive_state", "imu", "battery")}
    state, truth = CAR.state_from_messages(newest, sim_car.spec), sim_car.read_state()
    assert state.time_s == pytest.approx(loop.now_ns() * 1e-9)
    np.testing.assert_allclose(state.pos_m, truth.pos_m, atol=1e-12)
    np.testing.assert_allclose(state.vel_body_m_s, truth.vel_body_m_s, atol=1e-12)
    np.testing.assert_allclose(state.imu_gyro_rad_s, truth.imu_gyro_rad_s, atol=1e-12)
    assert state.yaw_rad == pytest.approx(truth.yaw_rad, abs=1e-9)
    assert state.steering_rad == pytest.approx(truth.steering_rad, abs=1e-6)  # float32 on the wire
    assert state.wheel_speed_m_s == pytest.approx(truth.wheel_speed_m_s, rel=1e-6) and truth.forward_speed_m_s > 0.3
    assert bridge.stats.states_published == len(heard["/car1/odom"]) == 50
    assert msg_dicts.stamp_to_ns(newest["odom"]["header"]["stamp"]) == loop.now_ns()


def test_the_cars_own_limits_apply_and_the_executed_command_comes_back(rig, sim_car):
    loop, bridge, heard = rig
    spec = sim_car.spec
    send(loop, drive(1e30, -3.0, loop.now_ns()))  # finite but absurd: clipped by the backend, not refused
    (sent,) = heard["/car1/cmd/ackermann_sent"]
    executed = CAR.command_from_message("ackermann", sent, spec)
    assert 0 < executed.speed_m_s <= spec.max_accel_m_s2 * 0.05 + 1e-6  # ramped from standstill (default period)
    assert -spec.max_steering_rad <= executed.steering_rad < 0
    assert bridge.stats.commands_executed == 1 and bridge.stats.commands_refused == 0
    send(loop, {"linear": {"x": 0.5, "y": 0.0, "z": 0.0}, "angular": {"x": 0.0, "y": 0.0, "z": 0.0}},
         "/car1/cmd_vel", TWIST)
    assert len(heard["/car1/cmd_vel_sent"]) == 1 and bridge.stats.commands_executed == 2


def test_no_command_for_the_timeout_stops_the_car_once_and_commands_resume(rig, sim_car, caplog):
    loop, bridge, _ = rig
    cruise(loop, 0.5)
    assert sim_car.read_state().forward_speed_m_s > 0.3
    send(loop, drive(0.6, 0.0, loop.now_ns()))
    with caplog.at_level(logging.WARNING, logger="drivers.ros2.bridge"):
        loop.sleep(bridge.command_timeout_s - 0.02)
        assert bridge.stats.timeouts == 0
        loop.sleep(1.5)
    assert bridge.stats.timeouts == 1
    assert [r.message for r in caplog.records if "no command" in r.message] == [caplog.records[0].message]
    assert abs(sim_car.read_state().forward_speed_m_s) < 0.05
    cruise(loop, 0.5)
    assert sim_car.read_state().forward_speed_m_s > 0.3  # driving again


def test_hostile_commands_are_refused_counted_and_never_reach_the_car(rig, sim_car, caplog):
    loop, bridge, heard = rig
    hostile = [drive(math.nan, 0.0), drive(0.5, math.inf), drive(-math.inf, 0.0)]
    twist = {"linear": {"x": math.nan, "y": 0.0, "z": 0.0}, "angular": {"x": 0.0, "y": 0.0, "z": 0.0}}
    with caplog.at_level(logging.WARNING, logger="drivers.ros2.bridge"):
        for i in range(150):
            send(loop, hostile[i % 3])
            send(loop, twist, "/car1/cmd_vel", TWIST)
            loop.sleep(0.001)
    stats = bridge.stats
    assert stats.commands_refused == 300 and stats.commands_executed == 0
    assert stats.refused_by_role == {"ackermann": 150, "cmd_vel": 150} and "finite" in stats.last_refusal
    assert len([r for r in caplog.records if "refused" in r.message]) == 10 + 3  # the first 10, then every 100th
    assert heard["/car1/cmd/ackermann_sent"] == [] and abs(sim_car.read_state().forward_speed_m_s) < 0.01
    cruise(loop, 0.5)  # the bridge runs on and obeys good commands
    assert sim_car.read_state().forward_speed_m_s > 0.3 and stats.commands_executed == 10


def test_the_stop_topic_and_the_services(rig, sim_car):
    loop, bridge, _ = rig
    cruise(loop, 0.5, steering_rad=0.2)
    send(loop, {"data": False}, "/car1/cmd/stop", "std_msgs/msg/Bool")  # false asks nothing
    assert bridge.stats.stops == 0
    send(loop, {"data": True}, "/car1/cmd/stop", "std_msgs/msg/Bool")
    assert bridge.stats.stops == 1
    loop.sleep(1.0)
    assert abs(sim_car.read_state().forward_speed_m_s) < 0.05
    moved = sim_car.read_state().pos_m
    assert np.linalg.norm(moved - sim_car.start_pose[0]) > 0.1
    assert bridge.reset() == (True, "back at the start pose")
    np.testing.assert_allclose(sim_car.read_state().pos_m, sim_car.start_pose[0], atol=1e-9)
    assert bridge.stop() == (True, "stopped") and bridge.stats.stops == 3
    loop.sleep(0.1)  # and it keeps stepping
    assert bridge.stats.states_published == 160
