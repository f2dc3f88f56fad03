"""Message dicts against rosbags' CDR (the ROS 2 wire and rosbag2 layout), Humble and Jazzy typestores.

Every message type the families and images build is filled into a rosbags object, CDR-serialized,
deserialized and compared with what went in: a wrong field name, order or kind fails here.
"""

import struct

import numpy as np
import pytest
from ros2_msg_samples import sim_arm, sim_car, sim_quad

from drivers.ros2 import images, msg_dicts
from drivers.ros2.families import FAMILIES, Frames
from drivers.ros2.msg_dicts import (deserialize, dict_to_rosbags, header, message_differences, serialize, stamp,
                                    stamp_to_ns, typestore)
from robot_rl.backends.arm import ArmTarget
from robot_rl.backends.car import CarCommand
from robot_rl.backends.quadrotor import ThrustRates, VelocityCommand

TIME_NS = 1_733_500_000_123_456_789
FRAMES = Frames()


def built_messages() -> list[tuple[str, str, dict]]:
    """(label, typename, message) of every message our code builds, from real sim states."""
    out = []
    commands = {"car": CarCommand(steering_rad=0.25, speed_m_s=-1.5),
                "quadrotor": VelocityCommand(vel_m_s=np.array([0.5, -0.25, 1.0]), yaw_rate_rad_s=0.3),
                "arm": ArmTarget(tcp_pos_m=np.array([0.4, 0.1, 0.3]), tcp_quat_wxyz=np.array([0.0, 1.0, 0.0, 0.0]),
                                 gripper_width_m=0.04),
                "quadrotor:attitude_target": ThrustRates(collective_thrust_frac=0.6,
                                                         body_rates_rad_s=np.array([0.5, -1.0, 0.25]))}
    for family, (spec, state) in (("car", sim_car()), ("quadrotor", sim_quad()), ("arm", sim_arm())):
        messages = FAMILIES[family]
        for topic, message in zip(messages.state_topics, messages.state_to_messages(state, spec, TIME_NS, FRAMES)
                                  .values()):
            out.append((f"{family}:{topic.role}", topic.typename, message))
        for topic in messages.command_topics:
            command = commands.get(f"{family}:{topic.role}", commands[family])
            message = messages.command_to_message(command, spec, topic.role, TIME_NS, FRAMES)
            out.append((f"{family}:{topic.role}", topic.typename, message))
    frame = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    out += [("image", images.IMAGE, images.image_message(frame, TIME_NS, "cam")),
            ("compressed", images.COMPRESSED_IMAGE, images.compressed_image_message(frame, TIME_NS, "cam", "png")),
            ("camera_info", images.CAMERA_INFO, images.camera_info_message(4, 5, TIME_NS, "cam", fx_px=100.0,
                                                                           distortion=(0.1, -0.2, 0, 0, 0.01)))]
    return out


def test_every_role_in_the_order_of_its_topics():
    for family, messages in FAMILIES.items():
        spec, state = {"car": sim_car, "quadrotor": sim_quad, "arm": sim_arm}[family]()
        roles = list(messages.state_to_messages(state, spec, TIME_NS, FRAMES))
        assert roles == [t.role for t in messages.state_topics], family


@pytest.mark.parametrize("distro", ["humble", "jazzy"])
def test_cdr_round_trip_of_every_built_message(distro):
    store = typestore(distro)
    for label, typename, message in built_messages():
        raw = serialize(store, typename, message)
        assert raw[:4] == b"\x00\x01\x00\x00", label  # CDR little-endian encapsulation
        back = deserialize(store, typename, raw)
        assert message_differences(back, message) == [], label


def test_ackermann_layout_matches_the_ackermann_msgs_field_list_byte_for_byte():
    message = {"header": header(TIME_NS, "base_link"),
               "drive": {"steering_angle": 0.25, "steering_angle_velocity": 0.5, "speed": -1.5,
                         "acceleration": 2.0, "jerk": 4.0}}
    frame = b"base_link\x00"
    expected = (b"\x00\x01\x00\x00" + struct.pack("<iI", 1_733_500_000, 123_456_789)
                + struct.pack("<I", len(frame)) + frame + b"\x00\x00" + struct.pack("<5f", 0.25, 0.5, -1.5, 2.0, 4.0))
    for distro in ("humble", "jazzy"):
        assert serialize(typestore(distro), "ackermann_msgs/msg/AckermannDriveStamped", message) == expected


def test_typestore_is_cached_per_distro_and_knows_our_types():
    assert typestore("humble") is typestore("humble")
    assert typestore("jazzy") is not typestore("humble")
    for distro in ("humble", "jazzy"):
        fields = typestore(distro).fielddefs["ackermann_msgs/msg/AckermannDrive"][1]
        assert [name for name, _ in fields] == ["steering_angle", "steering_angle_velocity", "speed",
                                                "acceleration", "jerk"]
    with pytest.raises(ValueError, match="rolling"):
        typestore("rolling")


def test_stamps_are_integer_nanoseconds():
    assert stamp(TIME_NS) == {"sec": 1_733_500_000, "nanosec": 123_456_789}
    assert stamp(-1) == {"sec": -1, "nanosec": 999_999_999}
    for time_ns in (0, 1, TIME_NS, -1, 2 ** 31 * 10 ** 9 - 1):
        assert stamp_to_ns(stamp(time_ns)) == time_ns
    for bad in (1.5, True, "1"):
        with pytest.raises(ValueError, match="integer"):
            stamp(bad)
    with pytest.raises(ValueError, match="int32"):
        stamp(2 ** 31 * 10 ** 9)
    with pytest.raises(ValueError, match="nanosec"):
        stamp_to_ns({"sec": 1, "nanosec": 10 ** 9})
    with pytest.raises(ValueError, match="sec and nanosec"):
        stamp_to_ns({"sec": 1})


def joint_state():
    return {"header": header(5, "base_link"), "name": ["a", "b"], "position": np.array([1.0, 2.0]),
            "velocity": np.zeros(2), "effort": np.zeros(0)}


@pytest.mark.parametrize("change, match", [
    (lambda m: m.pop("effort"), r"missing field sensor_msgs/msg/JointState\.effort"),
    (lambda m: m.update(extra=1), r"unknown field sensor_msgs/msg/JointState\.extra"),
    (lambda m: m.update(name=["a", 2]), r"JointState\.name\[1\]: needs a str"),
    (lambda m: m.update(position=np.array(["x"])), r"JointState\.position: needs float64"),
    (lambda m: m.update(position=np.ones((2, 1))), r"JointState\.position: needs a 1-D"),
    (lambda m: m.update(position=1.0), r"JointState\.position: needs an array"),
    (lambda m: m["header"]["stamp"].update(sec=1.5), r"JointState\.header\.stamp\.sec: needs an integer"),
    (lambda m: m["header"]["stamp"].update(nanosec=-1), r"header\.stamp\.nanosec: uint32 must be in"),
    (lambda m: m["header"].update(frame_id=None), r"header\.frame_id: needs a str"),
    (lambda m: m.update(header="now"), r"JointState\.header: needs a std_msgs/msg/Header message dict"),
])
def test_dict_to_rosbags_names_the_bad_field(change, match):
    message = joint_state()
    change(message)
    with pytest.raises(ValueError, match=match):
        dict_to_rosbags(typestore(), "sensor_msgs/msg/JointState", message)


def test_wrong_kinds_in_arrays_and_scalars():
    store = typestore()
    image = images.image_message(np.zeros((2, 2, 3), np.uint8), 0, "cam")
    with pytest.raises(ValueError, match=r"Image\.data: needs uint8 elements"):
        dict_to_rosbags(store, images.IMAGE, dict(image, data=np.zeros(12)))
    with pytest.raises(ValueError, match=r"Image\.data: uint8 elements must be in"):
        dict_to_rosbags(store, images.IMAGE, dict(image, data=np.full(12, 300)))
    with pytest.raises(ValueError, match=r"Image\.height: needs a number"):
        dict_to_rosbags(store, images.IMAGE, dict(image, height="2"))
    info = images.camera_info_message(2, 2, 0, "cam")
    with pytest.raises(ValueError, match=r"CameraInfo\.k: needs exactly 9 elements, got 8"):
        dict_to_rosbags(store, images.CAMERA_INFO, dict(info, k=np.zeros(8)))
    with pytest.raises(ValueError, match=r"Bool\.data: needs a bool"):
        dict_to_rosbags(store, "std_msgs/msg/Bool", {"data": 1})
    with pytest.raises(ValueError, match="unknown message type 'sensor_msgs/JointState'"):
        dict_to_rosbags(store, "sensor_msgs/JointState", joint_state())


def test_integer_arrays_widen_into_float_fields_and_lists_are_accepted():
    store = typestore()
    back = deserialize(store, "sensor_msgs/msg/JointState",
                       serialize(store, "sensor_msgs/msg/JointState", dict(joint_state(), position=[1, 2])))
    assert back["position"].dtype == np.float64 and back["position"].tolist() == [1.0, 2.0]


def test_truncated_and_unknown_cdr_give_clear_errors():
    store = typestore()
    raw = serialize(store, "sensor_msgs/msg/JointState", joint_state())
    with pytest.raises(ValueError, match=r"sensor_msgs/msg/JointState: cannot decode \d+ bytes"):
        deserialize(store, "sensor_msgs/msg/JointState", raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="unknown message type"):
        deserialize(store, "my_msgs/msg/Nothing", raw)


def test_message_to_dict_refuses_other_objects():
    with pytest.raises(ValueError, match="not a rosbags or rclpy message"):
        msg_dicts.message_to_dict(object())


def test_message_differences_names_the_path():
    a, b = joint_state(), joint_state()
    b["position"] = np.array([1.0, 2.5])
    b["header"]["frame_id"] = "x"
    assert message_differences(a, b) == [".header.frame_id: 'base_link' != 'x'",
                                          ".position: array([1., 2.]) != array([1. , 2.5])"]
    assert message_differences({"v": np.nan}, {"v": np.nan}) == []


def test_dict_to_rclpy_fills_a_real_rclpy_message():
    pytest.importorskip("rclpy", reason="rclpy comes with a ROS 2 installation (source /opt/ros/humble/setup.bash)")
    msg = msg_dicts.dict_to_rclpy("sensor_msgs/msg/JointState", joint_state())
    assert list(msg.position) == [1.0, 2.0] and msg.header.frame_id == "base_link"
    assert message_differences(msg_dicts.message_to_dict(msg), joint_state()) == []


def test_sequences_of_messages_round_trip_and_name_the_bad_element():
    store = typestore("jazzy")
    message = {"layout": {"dim": [{"label": "rows", "size": 2, "stride": 6}, {"label": "cols", "size": 3,
                                                                              "stride": 3}], "data_offset": 0},
               "data": np.arange(6.0)}
    back = deserialize(store, "std_msgs/msg/Float64MultiArray",
                       serialize(store, "std_msgs/msg/Float64MultiArray", message))
    assert message_differences(back, message) == []
    message["layout"]["dim"][1]["size"] = 3.0
    with pytest.raises(ValueError, match=r"Float64MultiArray\.layout\.dim\[1\]\.size: needs an integer"):
        dict_to_rosbags(store, "std_msgs/msg/Float64MultiArray", message)
    message["layout"]["dim"][1]["size"] = 3
    with pytest.raises(ValueError, match=r"Float64MultiArray\.data: needs an array or list"):
        dict_to_rosbags(store, "std_msgs/msg/Float64MultiArray", dict(message, data=np.float64(1.0)))
