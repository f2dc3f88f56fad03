"""The camera node without rclpy: its publishing plan from parameters and the rig's cameras, and a real
OpenCVCamera playing an MP4 (frames carry their index) published as Image + CameraInfo over CdrLoopback:
each new frame once, pixels intact, stamped with its capture time, cropped and resized on request."""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np
import pytest

from drivers.cameras import load_rig
from drivers.ros2.camera_node import CameraPublisher, camera_streams, capture_stamp_ns, frame_messages
from drivers.ros2.images import camera_topics, frame_from_message, image_from_message
from drivers.ros2.qos import qos_for
from drivers.ros2.transport import CdrLoopback, join_topic
from robot_rl.wrappers.images import crop_resize

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "cameras"))
from camera_fakes import decode_index, write_index_video

FPS = 40.0


@pytest.fixture
def rig(tmp_path):
    write_index_video(tmp_path / "front.mp4", frames=80, fps=FPS)
    path = tmp_path / "rig.toml"
    path.write_text(f"""
[cameras.front]
kind = "opencv"
source = "front.mp4"
width = 96
height = 64
fps = {FPS}
crop = [0, 64, 16, 80]
resize = [32, 32]

[cameras.wrist]
kind = "opencv"
source = 3
width = 640
height = 480
fps = 30
""")
    return load_rig(path)


def test_streams_follow_the_parameters(rig):
    front, wrist = camera_streams({"topic_prefix": "arm1"}, rig.configs)
    assert (front.image_topic, front.info_topic, front.frame_id) == (
        "arm1/cameras/front/image_raw", "arm1/cameras/front/camera_info", "front_optical_frame")
    assert wrist.image_topic == join_topic("arm1", camera_topics("wrist")[0]), "where a ROS backend looks for it"
    (compressed,) = camera_streams({"cameras": "front", "image_transport": "compressed"}, rig.configs)
    assert compressed.image_topic == "cameras/front/image_raw/compressed"
    assert front.period_s == pytest.approx(1 / (2 * FPS)) and wrist.period_s == pytest.approx(1 / 60)
    assert front.size is None and front.crop is None, "the full capture unless crop_resize"
    (front,) = camera_streams({"cameras": " front ", "crop_resize": True, "rate_hz": 10}, rig.configs)
    assert (front.crop, front.size, front.period_s) == ((0, 64, 16, 80), (32, 32), 0.1)
    (wrist,) = camera_streams({"cameras": "wrist", "crop_resize": True}, rig.configs)
    assert wrist.size is None, "a camera without crop/resize publishes its capture"


@pytest.mark.parametrize("given, complaint", [
    ({"cameras": "front,rear"}, r"parameter 'cameras': no camera\(s\) \['rear'\]"),
    ({"rate_hz": -1.0}, r"'rate_hz' \(>= 0\)"),
    ({"read_timeout_s": 0.0}, r"'read_timeout_s' \(> 0\)"),
    ({"topic_prefix": "9cams"}, r"parameter 'topic_prefix': not a valid ROS 2 topic name"),
    ({"image_transport": "theora"}, r"parameter 'image_transport': unknown image_transport 'theora'"),
])
def test_bad_camera_parameters_are_named(rig, given, complaint):
    with pytest.raises(ValueError, match=complaint):
        camera_streams(given, rig.configs)


def test_capture_stamp_is_now_less_the_frames_age():
    assert capture_stamp_ns(10_000_000_000, 50.0, 49.75) == 9_750_000_000
    assert capture_stamp_ns(10_000_000_000, 50.0, 50.5) == 10_000_000_000, "a frame from the future is stamped now"


def test_frame_messages_crop_and_resize_as_the_policy_sees(rig):
    (stream,) = camera_streams({"cameras": "front", "crop_resize": True}, rig.configs)
    color = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    image, info = frame_messages(stream, color, 123)
    np.testing.assert_array_equal(image_from_message(image), crop_resize(color, (0, 64, 16, 80), (32, 32)))
    assert (info["height"], info["width"], info["header"]["frame_id"]) == (32, 32, "front_optical_frame")
    assert image["header"]["stamp"] == info["header"]["stamp"] == {"sec": 0, "nanosec": 123}


def test_a_playing_camera_is_published_frame_by_frame(rig):
    (stream,) = camera_streams({"cameras": "front"}, rig.configs)
    loop = CdrLoopback()
    images, infos = [], []
    loop.subscribe(stream.image_topic, "sensor_msgs/msg/Image", images.append, qos_for("image"))
    loop.subscribe(stream.info_topic, "sensor_msgs/msg/CameraInfo", infos.append, qos_for("camera_info"))
    with rig.cameras["front"] as camera:
        publisher = CameraPublisher(stream, camera, loop, read_timeout_s=1.0, log=pytest.fail)
        deadline = time.monotonic() + 5.0
        while publisher.published < 6 and time.monotonic() < deadline:
            publisher.tick()  # the newest frame, published when its number is new
            loop.sleep(1 / (2 * FPS))  # the ROS clock (virtual here) moves on as the node's timer would
    assert publisher.published == len(images) == len(infos) == 6
    indices = [decode_index(image_from_message(m)) for m in images]
    assert indices == sorted(set(indices)), f"each frame once, in order: {indices}"
    assert publisher.last_frame_number == indices[-1]
    stamps = [m["header"]["stamp"]["sec"] * 10**9 + m["header"]["stamp"]["nanosec"] for m in images]
    assert stamps == sorted(stamps) and all(s <= loop.now_ns() for s in stamps)
    assert all((m["height"], m["width"]) == (64, 96) and m["encoding"] == "rgb8" for m in images)
    assert all(i["header"] == m["header"] for i, m in zip(infos, images))


def test_a_camera_without_fresh_frames_is_logged_not_fatal(tmp_path):
    write_index_video(tmp_path / "slow.mp4", frames=5, fps=1.0)
    path = tmp_path / "rig.toml"
    path.write_text("[cameras.slow]\nkind = 'opencv'\nsource = 'slow.mp4'\nwidth = 96\nheight = 64\nfps = 1\n"
                    "max_age_s = 0.01\n")
    rig = load_rig(path)
    (stream,) = camera_streams({}, rig.configs)
    logged = []
    with rig.cameras["slow"] as camera:
        publisher = CameraPublisher(stream, camera, CdrLoopback(), read_timeout_s=0.02, log=logged.append)
        deadline = time.monotonic() + 3.0  # a frame a second, fresh for 10 ms: nearly every tick times out
        while publisher.timeouts < 3 and time.monotonic() < deadline:
            publisher.tick()
    assert publisher.timeouts == 3 and publisher.published <= 2
    assert len(logged) == 1 and "camera 'slow'" in logged[0], "timeouts are logged at most every few seconds"


def test_compressed_frames_decode_to_the_capture(rig):
    (stream,) = camera_streams({"cameras": "front", "image_transport": "compressed"}, rig.configs)
    color = np.zeros((64, 96, 3), np.uint8)
    color[:, 48:] = (200, 30, 10)
    image, info = frame_messages(stream, color, 5)
    assert image["format"] == "jpeg" and (info["height"], info["width"]) == (64, 96)
    assert np.abs(frame_from_message(image, "compressed").astype(int) - color).max() < 40, "jpeg of the same picture"
