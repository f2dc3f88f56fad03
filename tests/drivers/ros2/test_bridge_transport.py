"""The transports of drivers/ros2/transport.py: CdrLoopback carries real CDR bytes (rosbags) with DDS's QoS
matching and a virtual clock whose timers fire in time order; RclpyTransport against a live rclpy (skipped here)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers.ros2 import msg_dicts
from drivers.ros2.qos import QosProfile, qos_for
from drivers.ros2.transport import CdrLoopback, Transport, check_topic_name, join_topic

JOINTS = "sensor_msgs/msg/JointState"


def joint_state(time_ns: int, positions) -> dict:
    positions = np.asarray(positions, dtype=np.float64)
    return {"header": msg_dicts.header(time_ns, "base"), "name": [f"j{i}" for i in range(len(positions))],
            "position": positions, "velocity": np.zeros(len(positions)), "effort": np.zeros(0)}


def test_a_message_arrives_through_its_cdr_bytes():
    loop, got = CdrLoopback(), []
    assert isinstance(loop, Transport)
    loop.subscribe("arm/joint_states", JOINTS, got.append, qos_for("state"))
    sent = joint_state(loop.now_ns(), [0.5, -1.25, math.nan])
    loop.publish("arm/joint_states", JOINTS, sent)
    (message,) = got
    assert message["name"] == ["j0", "j1", "j2"] and message["position"].dtype == np.float64
    np.testing.assert_array_equal(message["position"], sent["position"])  # NaN survives CDR
    assert msg_dicts.stamp_to_ns(message["header"]["stamp"]) == loop.now_ns()
    expected = len(msg_dicts.serialize(msg_dicts.typestore(), JOINTS, sent))
    assert loop.stats.cdr_bytes == expected and loop.stats.delivered == 1


def test_a_malformed_message_is_refused_at_the_publisher_naming_the_field():
    loop = CdrLoopback()
    bad = joint_state(0, [0.0])
    del bad["velocity"]
    with pytest.raises(ValueError, match="velocity"):
        loop.publish("joint_states", JOINTS, bad)
    with pytest.raises(ValueError, match="carries sensor_msgs/msg/JointState"):
        loop.publish("joint_states", "std_msgs/msg/Bool", {"data": True})
    with pytest.raises(ValueError, match="topic name"):
        loop.publish("bad//name", "std_msgs/msg/Bool", {"data": True})


def test_qos_matching_follows_dds_request_vs_offered():
    loop, reliable, best_effort = CdrLoopback(), [], []
    loop.subscribe("cmd", "std_msgs/msg/Bool", reliable.append, qos_for("command"))
    loop.subscribe("cmd", "std_msgs/msg/Bool", best_effort.append, QosProfile("best_effort", "volatile", 1))
    loop.publish("cmd", "std_msgs/msg/Bool", {"data": True}, QosProfile("best_effort", "volatile", 1))
    assert reliable == [] and best_effort == [{"data": True}]
    assert len(loop.stats.incompatible) == 1
    loop.publish("cmd", "std_msgs/msg/Bool", {"data": False}, qos_for("command", "publisher"))
    assert reliable == [{"data": False}] and len(best_effort) == 2


def test_a_late_transient_local_subscription_gets_the_kept_messages():
    loop, late, volatile = CdrLoopback(), [], []
    latched = qos_for("latched", "publisher")
    for value in (True, False):
        loop.publish("spec", "std_msgs/msg/Bool", {"data": value}, latched)
    loop.subscribe("spec", "std_msgs/msg/Bool", late.append, qos_for("latched"))
    loop.subscribe("spec", "std_msgs/msg/Bool", volatile.append, qos_for("command"))
    assert late == [{"data": False}] and volatile == []  # depth 1: the newest only


def test_timers_fire_in_time_order_while_the_clock_advances():
    loop, fired = CdrLoopback(start_ns=5), []
    loop.create_timer(0.03, lambda: fired.append(("slow", loop.now_ns())))
    fast = loop.create_timer(0.01, lambda: fired.append(("fast", loop.now_ns())))
    loop.sleep(0.035)
    assert loop.now_ns() == 5 + 35_000_000
    assert fired == [("fast", 5 + 10_000_000), ("fast", 5 + 20_000_000), ("slow", 5 + 30_000_000),
                     ("fast", 5 + 30_000_000)]  # due together: in creation order
    fast.cancel()
    loop.sleep(0.03)
    assert fired[-1] == ("slow", 5 + 60_000_000) and len(fired) == 5


def test_a_timer_callback_may_not_wait_and_a_closed_loopback_refuses():
    loop = CdrLoopback()
    loop.create_timer(0.01, lambda: loop.sleep(0.01))
    with pytest.raises(RuntimeError, match="must not wait"):
        loop.sleep(0.02)
    with pytest.raises(ValueError, match="period_s"):
        loop.create_timer(0.0, lambda: None)
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.publish("x", "std_msgs/msg/Bool", {"data": True})
    loop.close()


def test_topic_names_are_checked_and_joined():
    assert join_topic("", "odom") == "odom"
    assert join_topic("/car1/", "cmd/ackermann") == "/car1/cmd/ackermann"
    assert join_topic("/car1", "/drive") == "/drive"
    assert check_topic_name("~/state") == "~/state"
    for bad in ("", "1odom", "a//b", "odom/", "a b"):
        with pytest.raises(ValueError, match="topic name"):
            check_topic_name(bad)


def test_rclpy_transport_round_trip_through_dds():
    pytest.importorskip("rclpy", reason="rclpy is not installable here (source /opt/ros/<distro>/setup.bash)")
    import threading

    from drivers.ros2.transport import RclpyTransport

    transport, got = RclpyTransport.open("robot_rl_transport_test"), threading.Event()
    try:
        transport.subscribe("robot_rl_test/flag", "std_msgs/msg/Bool", lambda m: got.set() if m["data"] else None,
                            qos_for("command"))
        for _ in range(50):  # discovery takes a moment: publish until the subscription hears it
            transport.publish("robot_rl_test/flag", "std_msgs/msg/Bool", {"data": True}, qos_for("command", "publisher"))
            if got.wait(0.1):
                break
        assert got.is_set()
    finally:
        transport.close()
