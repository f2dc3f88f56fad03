"""The family-independent part of the ROS-driven backends (:mod:`drivers.ros2.ros_backend`): a robot
already driven by a ROS 2 stack, used through its topics (:mod:`drivers.ros2.families` names them and
converts the messages).

* ``connect()`` subscribes the family's state topics (sensor-data QoS) and waits, at most
  ``connect_timeout_s``, until every required one has spoken; the transport is an
  :class:`~drivers.ros2.transport.RclpyTransport` the backend makes (rclpy, spun in its own thread)
  unless one is given (tests pass a :class:`~drivers.ros2.transport.CdrLoopback`);
* cameras (``config.cameras``; :mod:`drivers.ros2.ros_backend_cameras`): their image topics are subscribed
  too; with ``observe_cameras`` (``obs="pixels"``) they are the spec's ``cameras`` and ``connect()`` also waits
  for a first frame of each, else they are ``render_cameras`` only; ``render(camera)`` returns the newest
  frame at the declared size, and a frame older than the camera's ``max_age_s`` raises
  :class:`~robot_rl.camera.CameraTimeout` naming the topic;
* ``read_state()`` converts the newest message of each topic (``state_from_messages``); a required
  topic silent for more than ``state_max_age_s`` (by arrival time on our clock) raises
  :class:`StaleStateError` naming the topic, and a stale optional topic is left out (its fields read ``nan``);
* ``command()`` applies the family's clip function against the newest state, publishes the result
  (reliable command QoS) and returns it;
* ``stop()`` publishes ``true`` on ``cmd/stop`` (the robot node stops its backend) and the
  family's hold command, if it has one;
* a command watchdog (:class:`~robot_rl.backends.watchdog.CommandWatchdog`, ``spec.watchdog_s``,
  checked on a transport timer) calls ``stop()`` when no ``command()`` came for that long;
* ``sync(period_s)`` waits on the transport's clock (:class:`~robot_rl.rate.Rate`), during which
  messages and timers keep flowing.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import numpy as np

from drivers.ros2.bridge import STOP_ROLE, STOP_TYPENAME, topic_names
from drivers.ros2.families import Frames, family_messages
from drivers.ros2.qos import qos_for
from drivers.ros2.ros_backend_cameras import CameraTopics
from drivers.ros2.ros_backend_config import RosBackendConfig, ros_spec
from drivers.ros2.transport import Message, RclpyTransport, Transport
from robot_rl.backends.base import ConnectOnEnter
from robot_rl.backends.watchdog import CommandWatchdog
from robot_rl.rate import Rate

log = logging.getLogger(__name__)

CONNECT_POLL_S = 0.01
MAX_WATCHDOG_TICK_S = 0.05
DEFAULT_PERIOD_S = 0.05  # the rate-limit period before the first sync() says the real one
# What the backend does between commands: nothing yet (connected, never commanded: it only listens), driving
# (the watchdog runs), holding (after stop(): a car streams its hold command until the next command()).
IDLE, DRIVING, HOLDING = "idle", "driving", "holding"


class StaleStateError(TimeoutError):
    """A required state topic has been silent for longer than ``state_max_age_s``; names the topic."""


class RosTopicBackend(ConnectOnEnter):
    """The family-independent part (module docstring); subclasses add clipping and the hold command.

    Args:
        config: topics, limits, cameras, timeouts.
        transport: where the topics are (default: an rclpy node made at ``connect()``).
        observe_cameras: the configured cameras are observed (``obs="pixels"``: the spec's ``cameras``,
            awaited at ``connect()``), else only rendered (``render_cameras``).
    """

    family: str

    def __init__(self, config: RosBackendConfig | None = None, transport: Transport | None = None,
                 observe_cameras: bool = True) -> None:
        self.config = c = config or RosBackendConfig()
        self._spec = ros_spec(self.family, c.spec, c.camera_specs(), observe_cameras, c.command_levels)
        self.messages = family_messages(self.family)
        self.cameras = CameraTopics(c.cameras, c.topics_prefix, f"{self.family} over ROS")
        self.frames = Frames(world=c.world_frame, base=c.base_frame, tool=c.tool_frame)
        self.topics = topic_names(self.messages.state_topics + self.messages.command_topics, c.topics_prefix,
                                  c.topics)
        self.command_roles = self._choose_command_roles(c.command_role)
        self._typenames = {t.role: t.typename for t in self.messages.command_topics}
        self._given_transport = transport
        self._transport: Transport | None = None
        self._lock = threading.RLock()  # stop() reads the state under it
        self._generation = 0
        self._watchdog: CommandWatchdog | None = None
        self._timer = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._latest: dict[str, Message] = {}
        self._received_ns: dict[str, int] = {}
        self._previous: Any = None
        self._phase = IDLE
        self._period_s, self._sync_rate = DEFAULT_PERIOD_S, None

    # ------------------------------------------------------------------ contract: structure
    @property
    def spec(self) -> Any:
        return self._spec

    @property
    def connected(self) -> bool:
        return self._transport is not None

    # ------------------------------------------------------------------ lifecycle
    def connect(self) -> None:
        """Subscribe the state topics and wait for every required one (``connect_timeout_s``)."""
        if self.connected:
            return
        transport = self._given_transport or RclpyTransport.open(self.config.node_name)
        self._reset_state()
        self._generation += 1
        for topic in self.messages.state_topics:
            transport.subscribe(self.topics[topic.role], topic.typename, self._state_callback(topic.role, transport),
                                qos_for("state"))
        generation = self._generation
        self.cameras.subscribe(transport, lambda: generation == self._generation)
        try:
            self._wait_for_state(transport)
        except BaseException:
            self._release(transport)
            raise
        self._transport = transport
        clock = transport.now_ns
        self._watchdog = CommandWatchdog(self._spec_watchdog_s(), clock=lambda: clock() * 1e-9)
        self._timer = transport.create_timer(min(MAX_WATCHDOG_TICK_S, self._watchdog.timeout_s / 4), self._tick)

    def close(self) -> None:
        """Stop the robot, stop listening; closes the transport if it made it. Safe twice."""
        transport = self._transport
        if transport is None:
            return
        self.stop()
        self._timer.cancel()
        self._generation += 1  # callbacks of this connection are ignored from now on
        self._transport = None
        self._release(transport)

    def _release(self, transport: Transport) -> None:
        if transport is not self._given_transport:
            transport.close()

    def _wait_for_state(self, transport: Transport) -> None:
        deadline_ns = transport.now_ns() + round(self.config.connect_timeout_s * 1e9)
        while missing := self._missing_required():
            left_s = (deadline_ns - transport.now_ns()) * 1e-9
            if left_s <= 0:
                raise TimeoutError(f"{self.family} over ROS: no message on {missing} within "
                                   f"{self.config.connect_timeout_s} s (is the robot's node running? "
                                   f"`ros2 topic list`)")
            transport.sleep(min(CONNECT_POLL_S, left_s))

    def _missing_required(self) -> list[str]:
        with self._lock:
            silent = [self.topics[t.role] for t in self.messages.state_topics
                      if t.required and t.role not in self._latest]
        return silent + self.cameras.silent(tuple(self._spec.cameras))

    def _state_callback(self, role: str, transport: Transport) -> Callable[[Message], None]:
        generation = self._generation

        def store(message: Message) -> None:
            if generation != self._generation:
                return
            now_ns = transport.now_ns()  # arrival time on our clock: what staleness is measured by
            with self._lock:
                self._latest[role], self._received_ns[role] = message, now_ns
        return store

    def _require(self) -> Transport:
        if self._transport is None:
            raise RuntimeError(f"{type(self).__name__} is not connected: call connect() first")
        return self._transport

    # ------------------------------------------------------------------ contract: control
    def read_state(self) -> Any:
        """The newest messages as the family's state (module docstring); StaleStateError if a required topic is silent."""
        transport = self._require()
        now_ns = transport.now_ns()
        with self._lock:
            latest, received = dict(self._latest), dict(self._received_ns)
        for topic in self.messages.state_topics:
            age_s = (now_ns - received[topic.role]) * 1e-9 if topic.role in received else None
            if age_s is not None and age_s <= self.config.state_max_age_s:
                continue
            latest.pop(topic.role, None)
            if topic.required:
                raise StaleStateError(f"{self.family} over ROS: no {topic.typename} on {self.topics[topic.role]} for "
                                      f"{age_s:.3f} s (state_max_age_s {self.config.state_max_age_s}): is the "
                                      f"robot's node still publishing?")
        return self.messages.state_from_messages(latest, self._spec)

    def command(self, command: Any) -> Any:
        """Clip by the family's limits against the newest state, publish, feed the watchdog; returns what was sent."""
        transport = self._require()
        state = self.read_state()
        with self._lock:
            sent = self._clip(command, state)
            self._publish_command(transport, sent)
            self._previous, self._phase = sent, DRIVING
            self._watchdog.feed()
        return sent

    def stop(self) -> None:
        """Stop the robot now (module docstring); the next ``command()`` resumes."""
        transport = self._transport
        if transport is None:
            return
        with self._lock:
            self._phase = HOLDING
            if self.config.stop_topic:
                transport.publish(self.topics[STOP_ROLE], STOP_TYPENAME, {"data": True}, qos_for("command", "publisher"))
            hold = self._hold_command()
            if hold is not None:
                self._publish_command(transport, hold)
                self._previous = hold

    def sync(self, period_s: float) -> None:
        """Wait until ``period_s`` has passed (transport clock) since the previous ``sync`` (the control
        period the next command's rate limits use)."""
        transport = self._require()
        if not period_s > 0:
            raise ValueError(f"sync period_s must be > 0, got {period_s}")
        if self._sync_rate is None or self._sync_rate.period != 1.0 / period_s:
            self._sync_rate = Rate(1.0 / period_s, clock=lambda: transport.now_ns() * 1e-9, sleep=transport.sleep)
        self._sync_rate.sleep()
        self._period_s = float(period_s)

    def render(self, camera: str, height: int | None = None, width: int | None = None) -> np.ndarray:
        """The newest frame of ``camera`` (module docstring); ``CameraTimeout`` naming the topic when stale."""
        return self.cameras.render(camera, self._require().now_ns(), height, width)

    # ------------------------------------------------------------------ internals
    def _choose_command_roles(self, wanted: str | None) -> tuple[str, ...]:
        """The command topics to publish on: the wanted one (default: the family's first); an arm's
        target is split over all of its command topics (pose and gripper)."""
        roles = tuple(topic.role for topic in self.messages.command_topics)
        if self.family == "arm":
            if wanted is not None:
                raise ValueError(f"arm over ROS: a target goes to every command topic {roles}; leave command_role out")
            return roles
        if wanted is not None and wanted not in roles:
            raise ValueError(f"{self.family} over ROS: command_role must be one of {list(roles)}, got {wanted!r}")
        return (wanted or roles[0],)

    def _publish_command(self, transport: Transport, command: Any) -> None:
        for role in self.command_roles:
            self._publish_on(transport, role, command)

    def _publish_on(self, transport: Transport, role: str, command: Any) -> None:
        message = self.messages.command_to_message(command, self._spec, role, transport.now_ns(), self.frames)
        transport.publish(self.topics[role], self._typenames[role], message, qos_for("command", "publisher"))

    def _tick(self) -> None:
        """The watchdog timer: stop when no command came for ``watchdog_s``; a stopped car keeps braking."""
        if self._transport is None or self._phase == IDLE:
            return
        if self._phase == HOLDING:
            if self.streams_hold:
                with self._lock:
                    self._publish_command(self._transport, self._previous_hold())
            return
        if self._watchdog.expired():
            log.warning("%s over ROS: no command for %.0f ms (watchdog %.0f ms): stopping", self.family,
                        self._watchdog.age_s() * 1e3, self._watchdog.timeout_s * 1e3)
            self.stop()

    def _spec_watchdog_s(self) -> float:
        return float(getattr(self._spec, "watchdog_s", 0.2))

    streams_hold = False

    def _clip(self, command: Any, state: Any) -> Any:
        raise NotImplementedError

    def _hold_command(self) -> Any:
        return None

    def _previous_hold(self) -> Any:
        return self._previous
