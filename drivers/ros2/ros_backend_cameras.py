"""The camera topics of a ROS-driven backend (:mod:`drivers.ros2.ros_backend`): the newest frame per camera.

Each camera of :attr:`RosBackendConfig.cameras <drivers.ros2.ros_backend_config.RosBackendConfig>` is a
subscription to its image topic (``sensor_msgs/msg/Image`` or ``CompressedImage``, image QoS: best effort,
the newest frames only). A callback only keeps the newest message and its arrival time (our clock);
:meth:`CameraTopics.render` decodes that message once (:mod:`drivers.ros2.images`), resizes it to the
camera's declared size as our camera drivers do (:func:`robot_rl.wrappers.images.crop_resize`) and
returns it -- or raises :class:`~robot_rl.camera.CameraTimeout` naming the topic when the newest frame
arrived longer ago than the camera's ``max_age_s`` (a policy never acts on a stale picture), or none
arrived yet.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Callable, Mapping

import numpy as np

from drivers.ros2.images import IMAGE_TRANSPORTS, camera_topics, frame_from_message
from drivers.ros2.qos import qos_for
from drivers.ros2.ros_backend_config import RosCameraConfig
from drivers.ros2.transport import Message, Transport, join_topic
from robot_rl.camera import CameraTimeout
from robot_rl.wrappers.images import crop_resize


@dataclasses.dataclass
class _Newest:
    """A camera's newest message, its arrival time, and (once decoded) its full-size RGB frame."""

    message: Message
    received_ns: int
    frame: np.ndarray | None = None


class CameraTopics:
    """The cameras of one ROS backend (module docstring).

    Args:
        cameras: camera name -> its settings.
        topics_prefix: the namespace of a camera topic given by a relative name.
        owner: what the cameras belong to, for messages (``"car over ROS"``).
    """

    def __init__(self, cameras: Mapping[str, RosCameraConfig], topics_prefix: str, owner: str) -> None:
        self.configs = dict(cameras)
        self.owner = owner
        self.topics = {name: join_topic(topics_prefix, c.topic or camera_topics(name, c.image_transport)[0])
                       for name, c in self.configs.items()}
        self._lock = threading.Lock()
        self._newest: dict[str, _Newest] = {}

    def subscribe(self, transport: Transport, current: Callable[[], bool]) -> None:
        """Forget older frames; subscribe every camera topic (a callback is ignored once ``current()`` is false)."""
        with self._lock:
            self._newest = {}
        for name, config in self.configs.items():
            transport.subscribe(self.topics[name], IMAGE_TRANSPORTS[config.image_transport],
                                self._callback(name, transport, current), qos_for("image"))

    def _callback(self, name: str, transport: Transport, current: Callable[[], bool]) -> Callable[[Message], None]:
        def store(message: Message) -> None:
            if current():
                newest = _Newest(message, transport.now_ns())
                with self._lock:
                    self._newest[name] = newest
        return store

    def silent(self, names: tuple[str, ...]) -> list[str]:
        """The topics of the cameras ``names`` that have not delivered a frame yet."""
        with self._lock:
            return [self.topics[name] for name in names if name not in self._newest]

    def render(self, camera: str, now_ns: int, height: int | None = None, width: int | None = None) -> np.ndarray:
        """The newest frame of ``camera``, ``uint8 (H, W, 3)`` RGB at the camera's size (or ``height`` x ``width``).

        Raises:
            KeyError: no such camera (the message lists them).
            CameraTimeout: no frame yet, or the newest arrived more than ``max_age_s`` before ``now_ns``.
            ValueError: the newest message cannot be decoded (encoding, format), naming the topic.
        """
        config = self.configs.get(camera)
        if config is None:
            raise KeyError(f"unknown camera {camera!r}; the {self.owner} backend has {sorted(self.configs)} "
                           f"(RosBackendConfig.cameras)")
        with self._lock:
            newest = self._newest.get(camera)
        self._check_fresh(camera, config, newest, now_ns)
        if newest.frame is None:
            try:
                newest.frame = frame_from_message(newest.message, config.image_transport)
            except ValueError as err:
                raise ValueError(f"{self.owner}: camera {camera!r} on {self.topics[camera]}: {err}") from None
        return crop_resize(newest.frame, None, (height or config.height, width or config.width))

    def _check_fresh(self, camera: str, config: RosCameraConfig, newest: _Newest | None, now_ns: int) -> None:
        topic = self.topics[camera]
        if newest is None:
            raise CameraTimeout(f"{self.owner}: camera {camera!r}: no frame on {topic} yet (is its camera node "
                                f"publishing? `ros2 topic hz {topic}`)", camera, topic, None)
        age_s = (now_ns - newest.received_ns) * 1e-9
        if age_s > config.max_age_s:
            raise CameraTimeout(f"{self.owner}: camera {camera!r}: no frame on {topic} for {age_s:.3f} s (max_age_s "
                                f"{config.max_age_s}): is its camera node still publishing?", camera, topic, age_s)

