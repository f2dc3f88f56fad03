"""``camera_node``: a rig's cameras (:mod:`drivers.cameras`: RealSense, OpenCV) on ROS 2 topics.

Each camera of the rig file's ``[cameras.<name>]`` tables (all, or the ``cameras`` parameter's)
publishes where the robot node publishes a simulator's cameras and a ROS backend looks for them
(:func:`drivers.ros2.images.camera_topics`): ``<topic_prefix>/cameras/<name>/image_raw``
(``sensor_msgs/msg/Image``, ``rgb8``; with ``image_transport`` ``compressed`` a jpeg
``sensor_msgs/msg/CompressedImage`` on ``.../image_raw/compressed``) and
``<topic_prefix>/cameras/<name>/camera_info`` (``sensor_msgs/msg/CameraInfo``, uncalibrated: the rig
has no intrinsics), frame id ``<name>_optical_frame``. Cameras are polled on a timer at twice their
fps (or ``rate_hz``); each new frame is published once (a repeated frame number is skipped),
stamped with its capture time on the ROS clock. With ``crop_resize`` the image is the one the
policy sees (the rig's crop and resize, :func:`robot_rl.wrappers.images.crop_resize`), otherwise the
full capture. QoS: :mod:`drivers.ros2.qos` ``image`` and ``camera_info`` publisher profiles.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Mapping

import numpy as np

from drivers.ros2 import params
from drivers.ros2.params import ParameterError, ParamSpec

PROG = "camera_node"
LOG_EVERY_S = 5.0
POLLS_PER_FRAME = 2  # a timer at the camera's own fps would alias with it and miss every other frame

PARAMETERS = (
    ParamSpec("rig", "", "the rig file (TOML) with the [cameras.<name>] tables"),
    ParamSpec("cameras", "", "comma-separated camera names to publish; empty: every camera of the rig"),
    ParamSpec("topic_prefix", "", "the robot's namespace: topics are <topic_prefix>/cameras/<camera>/image_raw and "
                                  ".../camera_info"),
    ParamSpec("image_transport", "raw", "raw (sensor_msgs/Image) or compressed (jpeg sensor_msgs/CompressedImage on "
                                        ".../image_raw/compressed)"),
    ParamSpec("rate_hz", 0.0, "how often each camera is polled [Hz]; 0: twice its fps (each new frame is published "
                              "once)"),
    ParamSpec("read_timeout_s", 0.05, "how long one publishing tick waits for a fresh frame [s]"),
    ParamSpec("crop_resize", False, "publish the rig's cropped and resized image (what the policy sees)"),
)
PARAMETER_NAMES = params.names(PARAMETERS)


@dataclasses.dataclass(frozen=True)
class CameraStream:
    """One camera's publishing plan: topics, frame id, timer period and the crop/resize applied."""

    name: str
    image_topic: str
    info_topic: str
    image_transport: str
    frame_id: str
    period_s: float
    crop: tuple[int, int, int, int] | None
    size: tuple[int, int] | None  # (height, width) to resize to; None: as captured


def camera_streams(given: Mapping[str, Any], configs: Mapping[str, Any]) -> list[CameraStream]:
    """The streams for the parameters the node was given and the rig's camera configs
    (:class:`drivers.cameras.CameraConfig` by name); errors name the parameter."""
    from drivers.ros2.images import camera_topics, check_image_transport, optical_frame
    from drivers.ros2.transport import join_topic

    values = params.resolve(PARAMETERS, given)
    transport = params.checked("image_transport", check_image_transport, values["image_transport"])
    prefix = params.topic_prefix("topic_prefix", values["topic_prefix"])
    chosen = params.split_names(values["cameras"]) or tuple(configs)
    unknown = sorted(set(chosen) - set(configs))
    if unknown:
        raise ParameterError(f"parameter 'cameras': no camera(s) {unknown} in the rig; it has {sorted(configs)}")
    if not values["rate_hz"] >= 0.0 or not values["read_timeout_s"] > 0.0:
        raise ParameterError(f"parameters 'rate_hz' (>= 0) and 'read_timeout_s' (> 0): got {values['rate_hz']}, "
                             f"{values['read_timeout_s']}")
    streams = []
    for name in chosen:
        config = configs[name]
        crop_resize = values["crop_resize"] and (config.crop is not None or config.resize is not None)
        image_topic, info_topic = (join_topic(prefix, topic) for topic in camera_topics(name, transport))
        streams.append(CameraStream(
            name=name, image_topic=image_topic, info_topic=info_topic, image_transport=transport,
            frame_id=optical_frame(name),
            period_s=1.0 / (values["rate_hz"] or POLLS_PER_FRAME * config.fps), crop=config.crop if crop_resize else None,
            size=config.output_size if crop_resize else None))
    return streams


def capture_stamp_ns(ros_now_ns: int, monotonic_now_s: float, frame_timestamp_s: float) -> int:
    """The ROS time at which a frame was captured: now on the ROS clock less the frame's age on the
    host's monotonic clock (which :class:`robot_rl.camera.Frame` stamps)."""
    age_s = max(0.0, monotonic_now_s - frame_timestamp_s)
    return max(1, int(ros_now_ns - round(age_s * 1e9)))


def frame_messages(stream: CameraStream, color: np.ndarray, time_ns: int) -> tuple[dict, dict]:
    """The ``(Image or CompressedImage, CameraInfo)`` message dicts of one RGB frame for ``stream``."""
    from drivers.ros2.images import camera_info_message, frame_message
    from robot_rl.wrappers.images import crop_resize

    if stream.size is not None:
        color = crop_resize(color, stream.crop, stream.size)
    height, width = color.shape[:2]
    return (frame_message(color, time_ns, stream.frame_id, stream.image_transport),
            camera_info_message(height, width, time_ns, stream.frame_id))


class CameraPublisher:
    """Publishes one camera's new frames on a transport; ``tick()`` is the timer callback."""

    def __init__(self, stream: CameraStream, camera: Any, transport: Any, read_timeout_s: float,
                 log: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        from drivers.ros2.images import CAMERA_INFO, IMAGE_TRANSPORTS
        from drivers.ros2.qos import qos_for

        self.image_typename, self.info_typename = IMAGE_TRANSPORTS[stream.image_transport], CAMERA_INFO
        self.stream, self.camera, self.transport = stream, camera, transport
        self.read_timeout_s, self.log, self.clock = read_timeout_s, log, clock
        self.image_qos, self.info_qos = qos_for("image", "publisher"), qos_for("camera_info", "publisher")
        self.last_frame_number: int | None = None
        self.published = self.timeouts = 0
        self._last_log_s = -LOG_EVERY_S

    def tick(self) -> bool:
        """Publish the newest frame if it is new; True if one was published."""
        from robot_rl.camera import CameraTimeout

        try:
            frame = self.camera.read(self.read_timeout_s)
        except CameraTimeout as err:
            self.timeouts += 1
            self._throttled(f"{err} ({self.timeouts} timeouts so far)")
            return False
        if frame.frame_number == self.last_frame_number:
            return False
        self.last_frame_number = frame.frame_number
        stamp_ns = capture_stamp_ns(self.transport.now_ns(), self.clock(), frame.timestamp_s)
        image, info = frame_messages(self.stream, frame.color, stamp_ns)
        self.transport.publish(self.stream.image_topic, self.image_typename, image, self.image_qos)
        self.transport.publish(self.stream.info_topic, self.info_typename, info, self.info_qos)
        self.published += 1
        return True

    def _throttled(self, message: str) -> None:
        now = self.clock()
        if now - self._last_log_s >= LOG_EVERY_S:
            self._last_log_s = now
            self.log(message)


# ----------------------------------------------------------------------------- rclpy (thin)
def _setup(node: Any) -> Callable[[], None]:
    from drivers.cameras import load_rig
    from drivers.ros2.transport import RclpyTransport

    values = params.declare(node, PARAMETERS)
    if not values["rig"]:
        raise ParameterError("parameter 'rig' is empty: give the rig file with the [cameras.<name>] tables")
    rig = load_rig(values["rig"])
    streams = camera_streams(values, rig.configs)
    cameras = [rig.cameras[s.name] for s in streams]
    transport = RclpyTransport(node)
    opened = []
    try:
        for stream, camera in zip(streams, cameras):
            camera.connect()
            opened.append(camera)
            publisher = CameraPublisher(stream, camera, transport, values["read_timeout_s"], node.get_logger().warning)
            transport.create_timer(stream.period_s, publisher.tick)
    except BaseException:
        for camera in reversed(opened):
            camera.close()
        raise
    node.get_logger().info(f"publishing {[s.image_topic for s in streams]}")

    def cleanup() -> None:
        for camera in reversed(opened):
            camera.close()

    return cleanup


def main(argv: list[str] | None = None) -> int:
    """Console script ``camera_node`` (``ros2 run robot_rl_ros camera_node --ros-args -p rig:=arm.toml``)."""
    from drivers.ros2.node_runtime import run_node

    return run_node(PROG, _setup, argv)


if __name__ == "__main__":
    raise SystemExit(main())
