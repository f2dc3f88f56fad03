"""A robot_rl backend on ROS 2 topics: the logic of the robot node, over a :class:`~drivers.ros2.transport.Transport`.

:class:`RobotBridge` wraps any connected backend of a registered family (sim or real) and

* publishes its state on the family's state topics (:mod:`drivers.ros2.families`) at every
  :meth:`~RobotBridge.step` (``backend.sync(period_s)``, the command timeout check, then
  :meth:`~RobotBridge.publish_state`), driven by a timer (:meth:`~RobotBridge.run_every`);
* turns each message on the family's command topics into the family's command and calls
  ``backend.command()``: the backend applies its own safety limits (safety stays in the backend) and
  the command it really sent is published back on ``<command topic>_sent``;
* refuses a bad command message (a NaN, a wrong array size, a joint the robot does not have, a
  command mode the backend does not take): logged and counted in :attr:`~RobotBridge.stats`, it never
  reaches the backend and never stops the bridge (any other error of the backend propagates: the node
  ends and its cleanup stops the robot);
* calls ``backend.stop()`` once (and logs it) when no command came for ``command_timeout_s``; the
  next command resumes;
* calls ``backend.stop()`` for every ``true`` on ``cmd/stop`` (``std_msgs/msg/Bool``), the
  channel a :mod:`ROS backend <drivers.ros2.ros_backend>` stops the robot through (not
  ``std_msgs/msg/Empty``: rosbags gives it a placeholder field rclpy's class lacks);
* for an arm, resets it to the joint positions of each ``sensor_msgs/msg/JointState`` on
  ``cmd/reset_joints`` (the arm's joint names, any order; an unknown or missing joint is refused);
* with ``cameras`` (an option: rendering costs), renders those cameras of the backend every
  ``camera_period_s`` (default: every step) and publishes each frame on ``cameras/<name>/image_raw``
  (``sensor_msgs/Image``, rgb8) or, with ``image_transport="compressed"``, ``cameras/<name>/image_raw/compressed``
  (jpeg ``sensor_msgs/CompressedImage``), and an uncalibrated ``sensor_msgs/CameraInfo`` on
  ``cameras/<name>/camera_info``, frame id ``<name>_optical_frame`` -- where a ROS backend's camera
  (:class:`~drivers.ros2.ros_backend_config.RosCameraConfig`) listens by default;
* offers :meth:`~RobotBridge.reset` and :meth:`~RobotBridge.stop` as plain methods returning
  ``(success, message)``, which the node serves as ``std_srvs/srv/Trigger`` services.

The bridge's clock is the transport's (ROS time), so header stamps and the command timeout follow
``use_sim_time`` -- and :class:`~drivers.ros2.transport.CdrLoopback`'s virtual clock in tests.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from drivers.ros2.families import Frames, Topic, family_messages
from drivers.ros2.images import (CAMERA_INFO, IMAGE_TRANSPORTS, camera_info_message, camera_topics,
                                 check_image_transport, frame_message, optical_frame)
from drivers.ros2.qos import qos_for
from drivers.ros2.transport import Message, TimerHandle, Transport, join_topic
from robot_rl.backends.arm import ArmTarget
from robot_rl.backends.base import render_camera_names
from robot_rl.backends.car import CarSceneControl
from robot_rl.backends.quadrotor import QuadSceneControl
from robot_rl.backends.watchdog import CommandWatchdog

log = logging.getLogger(__name__)

#: Our control topics beside the family's: stop now (``true``), and an arm's joint-space reset.
STOP = Topic("stop", "std_msgs/msg/Bool", "cmd/stop", False)  # beside the node's "stop" Trigger service
RESET_JOINTS = Topic("reset_joints", "sensor_msgs/msg/JointState", "cmd/reset_joints", False)
CONTROL_TOPICS = (STOP, RESET_JOINTS)
STOP_ROLE, STOP_TYPENAME = STOP.role, STOP.typename
SENT_SUFFIX = "_sent"
LOG_FIRST_REFUSALS = 10  # then one refusal log in LOG_EVERY_REFUSAL, so a flood cannot flood the log
LOG_EVERY_REFUSAL = 100


@dataclasses.dataclass
class BridgeStats:
    """Counters of a :class:`RobotBridge` (``refused_by_role``: refusals per command role)."""

    commands_received: int = 0
    commands_executed: int = 0
    commands_refused: int = 0
    refused_by_role: dict[str, int] = dataclasses.field(default_factory=dict)
    timeouts: int = 0
    stops: int = 0
    states_published: int = 0
    frames_published: int = 0
    last_refusal: str | None = None


def topic_names(topics: tuple[Topic, ...], prefix: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """Role -> full topic name for ``topics`` and the control topics: the override for the role if any, else
    the topic's default name, under ``prefix``."""
    topics = topics + CONTROL_TOPICS
    roles = sorted(topic.role for topic in topics)
    unknown = sorted(set(overrides) - set(roles))
    if unknown:
        raise ValueError(f"topic overrides for unknown role(s) {unknown}; roles: {roles}")
    return {topic.role: join_topic(prefix, overrides.get(topic.role, topic.default_name)) for topic in topics}


class RobotBridge:
    """A connected backend exposed on ROS topics (module docstring).

    Args:
        backend: a connected backend of a family in :data:`drivers.ros2.families.FAMILIES`; the bridge
            neither connects nor closes it.
        transport: where the topics are.
        topics_prefix: namespace of every topic (``""``: the node's own namespace).
        frames: the frame ids written into headers.
        command_timeout_s: no command for this long -> ``backend.stop()`` (default: the spec's
            ``watchdog_s``, else 0.2 s).
        topic_overrides: role -> topic name, replacing a default name.
        publish_sent: publish what the backend really sent on ``<command topic>_sent``.
        cameras: cameras of the backend (its ``render_cameras``) to render and publish (module docstring).
        image_transport: ``"raw"`` (Image) or ``"compressed"`` (jpeg CompressedImage).
        camera_period_s: publish frames at most this often (``None``: at every step).
    """

    def __init__(self, backend: Any, transport: Transport, *, topics_prefix: str = "", frames: Frames | None = None,
                 command_timeout_s: float | None = None, topic_overrides: Mapping[str, str] | None = None,
                 publish_sent: bool = True, cameras: Sequence[str] = (), image_transport: str = "raw",
                 camera_period_s: float | None = None) -> None:
        self.backend, self.transport = backend, transport
        self.messages = family_messages(backend.family)
        self.spec = backend.spec
        self.frames = frames or Frames()
        self.publish_sent = publish_sent
        topics = self.messages.state_topics + self.messages.command_topics
        self.topics = topic_names(topics, topics_prefix, topic_overrides or {})
        self._typenames = {topic.role: topic.typename for topic in topics}
        timeout_s = command_timeout_s if command_timeout_s is not None else getattr(self.spec, "watchdog_s", 0.2)
        self._watchdog = CommandWatchdog(timeout_s, clock=lambda: transport.now_ns() * 1e-9)
        self._timed_out = True  # nothing to stop before the first command
        self._started = False
        self._start_pose: tuple | None = None
        self._last_sent: Any = None
        self.image_transport = check_image_transport(image_transport)
        self.camera_topics = self._camera_topics(tuple(cameras), topics_prefix)
        if camera_period_s is not None and not 0 < camera_period_s < float("inf"):
            raise ValueError(f"camera_period_s must be a finite number > 0 (or None: every step), "
                             f"got {camera_period_s!r}")
        self._camera_period_ns = round((camera_period_s or 0.0) * 1e9)
        self._frames_due_ns: int | None = None
        self.stats = BridgeStats()

    def _camera_topics(self, cameras: tuple[str, ...], prefix: str) -> dict[str, tuple[str, str]]:
        """Camera -> (image topic, camera_info topic); ValueError for a camera the backend cannot render."""
        available = render_camera_names(self.spec)
        unknown = [name for name in cameras if name not in available]
        if unknown:
            raise ValueError(f"cannot publish camera(s) {unknown}: {type(self.backend).__name__} renders "
                             f"{list(available)}")
        return {name: tuple(join_topic(prefix, topic) for topic in camera_topics(name, self.image_transport))
                for name in cameras}

    @property
    def command_timeout_s(self) -> float:
        return self._watchdog.timeout_s

    def start(self) -> None:
        """Subscribe the command topics and the stop topic; remember a simulator's pose for :meth:`reset`."""
        if self._started:
            return
        qos = qos_for("command")
        for topic in self.messages.command_topics:
            self.transport.subscribe(self.topics[topic.role], topic.typename,
                                     self._command_callback(topic.role), qos)
        self.transport.subscribe(self.topics[STOP_ROLE], STOP_TYPENAME, self._stop_request, qos)
        if self.backend.family == "arm":
            self.transport.subscribe(self.topics[RESET_JOINTS.role], RESET_JOINTS.typename, self._reset_joints, qos)
        self._start_pose = self._scene_pose()
        self._started = True

    def run_every(self, period_s: float) -> TimerHandle:
        """Start, then :meth:`step` every ``period_s`` on a transport timer (cancel the handle to end)."""
        self.start()
        return self.transport.create_timer(period_s, lambda: self.step(period_s))

    def step(self, period_s: float) -> None:
        """One period of the node: ``backend.sync(period_s)``, the command timeout, the state published, and
        the camera frames when due."""
        self.backend.sync(period_s)
        self.check_timeout()
        self.publish_state()
        if self.camera_topics and self._frames_due():
            self.publish_cameras()

    def publish_state(self) -> dict[str, Message]:
        """Publish the backend's newest state on every state topic; returns role -> message."""
        state = self.backend.read_state()
        messages = self.messages.state_to_messages(state, self.spec, self.transport.now_ns(), self.frames)
        qos = qos_for("state", "publisher")
        for role, message in messages.items():
            self.transport.publish(self.topics[role], self._typenames[role], message, qos)
        self.stats.states_published += 1
        return messages

    def publish_cameras(self) -> dict[str, np.ndarray]:
        """Render each of ``cameras`` now and publish its frame and CameraInfo; returns camera -> frame."""
        now_ns, frames = self.transport.now_ns(), {}
        image_qos, info_qos = qos_for("image", "publisher"), qos_for("camera_info", "publisher")
        for name, (image_topic, info_topic) in self.camera_topics.items():
            frame = frames[name] = np.asarray(self.backend.render(name))
            frame_id = optical_frame(name)
            self.transport.publish(image_topic, IMAGE_TRANSPORTS[self.image_transport],
                                   frame_message(frame, now_ns, frame_id, self.image_transport), image_qos)
            self.transport.publish(info_topic, CAMERA_INFO, camera_info_message(*frame.shape[:2], now_ns, frame_id),
                                   info_qos)
        self.stats.frames_published += len(frames)
        return frames

    def _frames_due(self) -> bool:
        now_ns = self.transport.now_ns()
        if self._frames_due_ns is not None and now_ns < self._frames_due_ns:
            return False
        self._frames_due_ns = now_ns + self._camera_period_ns
        return True

    def check_timeout(self) -> bool:
        """``backend.stop()`` once when the last command is older than the timeout; True if it did now."""
        if self._timed_out or not self._watchdog.expired():
            return False
        log.warning("no command for %.0f ms (timeout %.0f ms): stopping the robot",
                    self._watchdog.age_s() * 1e3, self._watchdog.timeout_s * 1e3)
        self.backend.stop()
        self._timed_out = True
        self.stats.timeouts += 1
        return True

    def stop(self) -> tuple[bool, str]:
        """The stop service: ``backend.stop()`` now; the next command resumes."""
        self.backend.stop()
        self._timed_out = True
        self.stats.stops += 1
        return True, "stopped"

    def reset(self) -> tuple[bool, str]:
        """The reset service: stop; then an arm goes to its home pose, a simulator back to where it was
        at :meth:`start`. A real car or quadrotor cannot be placed: stopped only, ``success`` False."""
        self.stop()
        home = getattr(self.spec, "home_joint_pos_rad", None)
        if self.backend.family == "arm" and home is not None:
            self.backend.reset(np.asarray(home))
            return True, "at the home pose"
        if self._start_pose is None:
            return False, f"a {type(self.backend).__name__} cannot be placed: stopped only"
        if isinstance(self.backend, CarSceneControl):
            self.backend.set_pose(*self._start_pose)
        else:
            self.backend.set_state(*self._start_pose)
        return True, "back at the start pose"

    # ------------------------------------------------------------------ commands in
    def _command_callback(self, role: str) -> Callable[[Message], None]:
        return lambda message: self.on_command(role, message)

    def on_command(self, role: str, message: Message) -> Any:
        """A command message of ``role``: to the backend, or refused (returns what was sent, or None)."""
        self.stats.commands_received += 1
        try:
            sent = self.backend.command(self._command_of(role, message))
        except ValueError as err:
            self._refuse(role, err)
            return None
        self._watchdog.feed()
        self._timed_out, self._last_sent = False, sent
        self.stats.commands_executed += 1
        if self.publish_sent:
            reply = self.messages.command_to_message(sent, self.spec, role, self.transport.now_ns(), self.frames)
            self.transport.publish(self.topics[role] + SENT_SUFFIX, self._typenames[role], reply,
                                   qos_for("state", "publisher"))
        return sent

    def _command_of(self, role: str, message: Message) -> Any:
        if self.backend.family != "arm":
            return self.messages.command_from_message(role, message, self.spec)
        # An arm's pose and gripper travel on two topics: the other part is the last target sent, or
        # (before the first command) the pose and opening the arm has now.
        if self._last_sent is None:
            state = self.backend.read_state()
            self._last_sent = ArmTarget(tcp_pos_m=state.tcp_pos_m, tcp_quat_wxyz=state.tcp_quat_wxyz,
                                        gripper_width_m=state.gripper_width_m)
        return self.messages.command_from_message(role, message, self.spec, self._last_sent)

    def _refuse(self, role: str, err: ValueError) -> None:
        stats = self.stats
        stats.commands_refused += 1
        stats.refused_by_role[role] = stats.refused_by_role.get(role, 0) + 1
        stats.last_refusal = f"{role}: {err}"
        if stats.commands_refused <= LOG_FIRST_REFUSALS or stats.commands_refused % LOG_EVERY_REFUSAL == 0:
            log.warning("refused a command on %s (%d refused so far): %s", self.topics[role],
                        stats.commands_refused, err)

    def _reset_joints(self, message: Message) -> None:
        """An arm's reset to the joint positions of a JointState (names: the arm's joints, any order)."""
        self.stats.commands_received += 1
        try:
            joint_pos_rad = self.messages.joint_positions(message, self.spec)
            self.backend.reset(joint_pos_rad)
        except ValueError as err:
            self._refuse(RESET_JOINTS.role, err)
            return
        log.info("reset to joint positions %s", np.round(joint_pos_rad, 4).tolist())
        self._timed_out, self._last_sent = True, None  # nothing to stop: the arm holds its reset pose

    def _stop_request(self, message: Message) -> None:
        if not message["data"]:
            return
        log.info("stop requested on %s", self.topics[STOP_ROLE])
        self.stop()

    def _scene_pose(self) -> tuple | None:
        if isinstance(self.backend, CarSceneControl):
            state = self.backend.read_state()
            return (state.pos_m.copy(), state.yaw_rad)
        if isinstance(self.backend, QuadSceneControl):
            state = self.backend.read_state()
            return (state.pos_m.copy(), state.quat_wxyz.copy(), np.zeros(3), np.zeros(3))
        return None
