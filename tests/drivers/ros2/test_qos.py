"""QoS choices: every kind's publisher reaches its own subscriptions and the ones other ROS tools make
(DDS's request-vs-offered rule), bad profiles and kinds are refused, rclpy conversion is lazy."""

from __future__ import annotations

import sys

import pytest

from drivers.ros2.qos import KINDS, SENSOR_DATA, SYSTEM_DEFAULT, QosProfile, compatible, qos_for, to_rclpy

RELIABLE_VOLATILE = QosProfile("reliable", "volatile", 10)  # what `ros2 topic echo`, rviz... request by default
LATCHED = QosProfile("reliable", "transient_local", 1)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_connects_its_own_publisher_and_subscription(kind):
    assert compatible(qos_for(kind, "publisher"), qos_for(kind, "subscription"))
    assert qos_for(kind) == qos_for(kind, "subscription")


@pytest.mark.parametrize("publisher, subscription, connects", [
    (QosProfile("best_effort", "volatile", 1), QosProfile("reliable", "volatile", 1), False),
    (QosProfile("reliable", "volatile", 1), QosProfile("best_effort", "volatile", 1), True),
    (QosProfile("best_effort", "volatile", 1), QosProfile("best_effort", "volatile", 1), True),
    (QosProfile("reliable", "volatile", 1), QosProfile("reliable", "transient_local", 1), False),
    (QosProfile("reliable", "transient_local", 1), QosProfile("reliable", "volatile", 1), True),
    (QosProfile("reliable", "transient_local", 9), QosProfile("reliable", "transient_local", 1), True),
])
def test_compatibility_is_ddss_request_vs_offered_rule(publisher, subscription, connects):
    assert compatible(publisher, subscription) is connects


@pytest.mark.parametrize("kind", ["state", "image"])
def test_sensor_data_follows_rep_2003(kind):
    """Subscriptions request best effort (newest sample, no retransmits); publishers offer reliable so a
    subscription with the ROS default profile connects too."""
    subscription, publisher = qos_for(kind), qos_for(kind, "publisher")
    assert (subscription.reliability, subscription.durability) == ("best_effort", "volatile")
    assert subscription.depth <= SENSOR_DATA.depth
    assert compatible(publisher, RELIABLE_VOLATILE) and compatible(publisher, SENSOR_DATA)
    assert compatible(SYSTEM_DEFAULT, subscription) and compatible(SENSOR_DATA, subscription), \
        "a foreign driver publishing best effort or reliable must reach our state subscriptions"


def test_commands_are_reliable_and_never_queue_old_ones():
    for side in ("publisher", "subscription"):
        command = qos_for("command", side)
        assert (command.reliability, command.durability, command.depth) == ("reliable", "volatile", 1)
    assert compatible(RELIABLE_VOLATILE, qos_for("command")), "a teleop node with default QoS can command"


def test_latched_kinds_reach_late_subscribers():
    assert qos_for("camera_info", "publisher").durability == "transient_local"
    assert compatible(qos_for("camera_info", "publisher"), LATCHED), "a late transient-local subscriber gets the last"
    assert compatible(SENSOR_DATA, qos_for("camera_info")), "our CameraInfo subscription takes any camera driver"
    assert qos_for("latched", "publisher") == qos_for("latched") == LATCHED


@pytest.mark.parametrize("fields, named", [
    (("reliably", "volatile", 1), "reliability"),
    (("reliable", "durable", 1), "durability"),
    (("reliable", "volatile", 0), "depth"),
    (("reliable", "volatile", True), "depth"),
    (("reliable", "volatile", 2.0), "depth"),
])
def test_bad_profile_names_the_field(fields, named):
    with pytest.raises(ValueError, match=f"QosProfile.{named}"):
        QosProfile(*fields)


def test_unknown_kind_or_side_lists_the_known_ones():
    with pytest.raises(ValueError, match="known kinds: state, image, command"):
        qos_for("telemetry")
    with pytest.raises(ValueError, match="known sides: subscription, publisher"):
        qos_for("state", "server")


def test_to_rclpy_without_ros_says_what_to_source(monkeypatch):
    monkeypatch.setitem(sys.modules, "rclpy", None)  # absent even where ROS is installed
    monkeypatch.setitem(sys.modules, "rclpy.qos", None)
    with pytest.raises(ImportError, match=r"source /opt/ros/humble/setup\.bash"):
        to_rclpy(SENSOR_DATA)


def test_to_rclpy_maps_every_field():
    qos = pytest.importorskip("rclpy.qos", reason="rclpy comes with a ROS 2 install (source /opt/ros/<distro>/setup.bash)")
    for kind in KINDS:
        for side in ("publisher", "subscription"):
            ours = qos_for(kind, side)
            theirs = to_rclpy(ours)
            assert theirs.depth == ours.depth and theirs.history == qos.HistoryPolicy.KEEP_LAST
            assert theirs.reliability == getattr(qos.ReliabilityPolicy, ours.reliability.upper())
            assert theirs.durability == getattr(qos.DurabilityPolicy, ours.durability.upper())
