"""How our ROS 2 code reaches topics: a small :class:`Transport` Protocol and two implementations.

The node logic (:mod:`drivers.ros2.bridge`) and the ROS-driven backends (:mod:`drivers.ros2.ros_backend`)
speak only this Protocol, over message dicts (:mod:`drivers.ros2.msg_dicts`):

* :class:`RclpyTransport` -- the real one, over an rclpy node (rclpy imported lazily; it is not
  installable here, so this class is thin and untested here);
* :class:`CdrLoopback` -- an in-process transport for tests and tools: every published message is
  CDR-serialized with rosbags (the bytes DDS carries) and deserialized for each subscription of that
  topic name, so whatever talks over it exercises the real conversions and the wire encoding.

Delivery in :class:`CdrLoopback` is synchronous and deterministic: ``publish()`` returns after every
matching subscription's callback ran, in subscription order; an exception in a callback propagates
out of ``publish()`` (as it would out of rclpy's ``spin``). A subscription receives a publication only
when the two QoS profiles are compatible (:func:`drivers.ros2.qos.compatible`: DDS's
request-vs-offered rule); a ``transient_local`` publisher's last ``depth`` messages reach a late
``transient_local`` subscription. Time is virtual, ROS's ``use_sim_time`` in miniature: ``now_ns()``
stands still until ``sleep(seconds)`` advances it, firing every timer that falls due on the way, in
time order -- so a backend's ``sync`` and a bridge's stepping timer interleave exactly, with no
real sleeps and no threads.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from typing import Any, Callable, Protocol, runtime_checkable

from drivers.ros2 import msg_dicts
from drivers.ros2.qos import QosProfile, compatible, import_ros, qos_for, to_rclpy

log = logging.getLogger(__name__)

Message = dict[str, Any]
_TOPIC_NAME = re.compile(r"^(~/|/)?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")
CLOSE_TIMEOUT_S = 2.0
CLOCK_STALL_S = 5.0
SLEEP_SLICE_S = 0.005


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


@runtime_checkable
class Transport(Protocol):
    """Publish/subscribe on named ROS topics with message dicts, a clock and timers.

    ``publish``'s ``qos`` is the publisher's offered profile (default: the ``state`` publisher
    profile); ``subscribe``'s is the requested one. ``now_ns()`` is the ROS clock in integer
    nanoseconds (header stamps use it). ``sleep(seconds)`` waits on that clock while callbacks and
    timers keep running; ``create_timer`` calls ``callback()`` every ``period_s``.
    """

    def publish(self, topic: str, typename: str, data: Message, qos: QosProfile | None = None) -> None: ...

    def subscribe(self, topic: str, typename: str, callback: Callable[[Message], None], qos: QosProfile) -> None: ...

    def now_ns(self) -> int: ...

    def sleep(self, seconds: float) -> None: ...

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> TimerHandle: ...

    def close(self) -> None: ...


def check_topic_name(topic: str) -> str:
    """``topic`` if it is a valid ROS 2 topic name (relative, absolute or ``~/``-private), else ValueError."""
    if not isinstance(topic, str) or not _TOPIC_NAME.match(topic):
        raise ValueError(f"not a valid ROS 2 topic name: {topic!r} (tokens of letters, digits and '_', "
                         f"not starting with a digit, separated by single '/')")
    return topic


def join_topic(prefix: str, name: str) -> str:
    """``prefix/name`` (``name`` alone when ``prefix`` is empty or ``name`` is absolute), checked."""
    if not prefix or name.startswith("/"):
        return check_topic_name(name)
    return check_topic_name(prefix.rstrip("/") + "/" + name)


def _check_period(period_s: float) -> int:
    if not (isinstance(period_s, (int, float)) and period_s > 0 and period_s < float("inf")):
        raise ValueError(f"timer period_s must be a finite number > 0, got {period_s!r}")
    return max(1, round(period_s * 1e9))


# ----------------------------------------------------------------------------- in-process, CDR on the wire
@dataclasses.dataclass
class _Subscription:
    typename: str
    callback: Callable[[Message], None]
    qos: QosProfile


@dataclasses.dataclass
class _LoopbackTimer:
    period_ns: int
    due_ns: int
    callback: Callable[[], None]
    order: int
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclasses.dataclass
class LoopbackStats:
    """What went over a :class:`CdrLoopback`: publications, CDR bytes, deliveries, and the
    (topic, publisher QoS, subscription QoS) triples that did not connect."""

    published: int = 0
    cdr_bytes: int = 0
    delivered: int = 0
    incompatible: set = dataclasses.field(default_factory=set)


class CdrLoopback:
    """An in-process :class:`Transport`: CDR bytes (rosbags) between publishers and subscriptions,
    synchronous delivery and a virtual clock (module docstring).

    Args:
        distro: the typestore's ROS distribution (``"humble"`` or ``"jazzy"``).
        start_ns: the clock's first reading (ROS time, nanoseconds; not 0, which ROS reads as "unset").
    """

    def __init__(self, distro: str = "humble", start_ns: int = 1_000_000_000) -> None:
        self._typestore = msg_dicts.typestore(distro)
        self._now_ns = int(start_ns)
        self._topic_types: dict[str, str] = {}
        self._subscriptions: dict[str, list[_Subscription]] = {}
        self._latched: dict[str, tuple[QosProfile, list[bytes]]] = {}
        self._timers: list[_LoopbackTimer] = []
        self._sleeping = False
        self._closed = False
        self.stats = LoopbackStats()

    def publish(self, topic: str, typename: str, data: Message, qos: QosProfile | None = None) -> None:
        self._check_open()
        self._claim(topic, typename)
        offered = qos or qos_for("state", "publisher")
        raw = bytes(msg_dicts.serialize(self._typestore, typename, data))
        self.stats.published += 1
        self.stats.cdr_bytes += len(raw)
        if offered.durability == "transient_local":
            kept = self._latched.get(topic, (offered, []))[1] + [raw]
            self._latched[topic] = (offered, kept[-offered.depth:])
        for subscription in list(self._subscriptions.get(topic, ())):
            self._deliver(topic, offered, subscription, raw)

    def subscribe(self, topic: str, typename: str, callback: Callable[[Message], None], qos: QosProfile) -> None:
        self._check_open()
        self._claim(topic, typename)
        if not isinstance(qos, QosProfile):
            raise ValueError(f"subscribe({topic!r}): qos must be a QosProfile, got {qos!r}")
        subscription = _Subscription(typename, callback, qos)
        self._subscriptions.setdefault(topic, []).append(subscription)
        if topic in self._latched and qos.durability == "transient_local":
            offered, kept = self._latched[topic]
            for raw in kept[-qos.depth:]:
                self._deliver(topic, offered, subscription, raw)

    def now_ns(self) -> int:
        return self._now_ns

    def sleep(self, seconds: float) -> None:
        """Advance the clock by ``seconds``, firing the timers due on the way in time order (timers due
        at the same instant: in creation order). Not from inside a timer callback (it would deadlock a
        single-threaded ROS executor too)."""
        self._check_open()
        if self._sleeping:
            raise RuntimeError("CdrLoopback.sleep() called from a timer callback: a callback must not wait")
        if not seconds > 0:
            return
        end_ns = self._now_ns + max(1, round(seconds * 1e9))
        self._sleeping = True
        try:
            while (timer := self._next_timer(end_ns)) is not None:
                self._now_ns = max(self._now_ns, timer.due_ns)
                timer.due_ns += timer.period_ns
                timer.callback()
            self._now_ns = end_ns
        finally:
            self._sleeping = False

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> TimerHandle:
        self._check_open()
        period_ns = _check_period(period_s)
        timer = _LoopbackTimer(period_ns, self._now_ns + period_ns, callback, len(self._timers))
        self._timers.append(timer)
        return timer

    def close(self) -> None:
        """Drop every subscription and timer; later calls raise. Safe twice."""
        self._closed = True
        self._subscriptions.clear()
        self._timers.clear()

    def subscription_count(self, topic: str) -> int:
        """How many subscriptions ``topic`` has (ROS's ``count_subscribers``)."""
        return len(self._subscriptions.get(topic, ()))

    def _next_timer(self, end_ns: int) -> _LoopbackTimer | None:
        self._timers = [t for t in self._timers if not t.cancelled]
        due = [t for t in self._timers if t.due_ns <= end_ns]
        return min(due, key=lambda t: (t.due_ns, t.order)) if due else None

    def _deliver(self, topic: str, offered: QosProfile, subscription: _Subscription, raw: bytes) -> None:
        if not compatible(offered, subscription.qos):
            key = (topic, offered, subscription.qos)
            if key not in self.stats.incompatible:
                log.warning("%s: publisher QoS %s is incompatible with subscription QoS %s: not delivered",
                            topic, offered, subscription.qos)
                self.stats.incompatible.add(key)
            return
        self.stats.delivered += 1
        subscription.callback(msg_dicts.deserialize(self._typestore, subscription.typename, raw))

    def _claim(self, topic: str, typename: str) -> None:
        check_topic_name(topic)
        known = self._topic_types.setdefault(topic, typename)
        if known != typename:
            raise ValueError(f"topic {topic!r} carries {known}, not {typename}")

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this CdrLoopback is closed")


# ----------------------------------------------------------------------------- rclpy (lazy, thin)
def rclpy_message_class(typename: str) -> type:
    """The rclpy message class of ``"pkg/msg/Name"`` (``pkg.msg.Name``), imported lazily."""
    package, kind, name = typename.split("/")
    return getattr(import_ros(f"{package}.{kind}"), name)


class RclpyTransport:
    """A :class:`Transport` over an rclpy node: publishers made on first use per topic, subscriptions
    turning rclpy messages into dicts, the node's clock (ROS time; sim time under ``use_sim_time``).

    ``RclpyTransport(node)`` wraps a node its owner spins (the robot node); :meth:`open` creates one
    (initializing rclpy if needed) and spins it in a background thread (a backend's transport).
    Callbacks run in the executor's thread.
    """

    def __init__(self, node: Any, executor: Any = None, thread: threading.Thread | None = None) -> None:
        self._node, self._executor, self._thread = node, executor, thread
        self._publishers: dict[str, tuple[str, Any]] = {}
        self._owns_node = executor is not None

    @classmethod
    def open(cls, node_name: str = "robot_rl", namespace: str = "") -> "RclpyTransport":
        rclpy = import_ros("rclpy")
        executors = import_ros("rclpy.executors")
        if not rclpy.ok():
            rclpy.init()
        node = rclpy.create_node(node_name, namespace=namespace)
        executor = executors.SingleThreadedExecutor()
        executor.add_node(node)
        thread = threading.Thread(target=executor.spin, name=f"rclpy {node_name}", daemon=True)
        thread.start()
        return cls(node, executor, thread)

    def publish(self, topic: str, typename: str, data: Message, qos: QosProfile | None = None) -> None:
        known = self._publishers.get(topic)
        if known is None:
            profile = to_rclpy(qos or qos_for("state", "publisher"))
            known = (typename, self._node.create_publisher(rclpy_message_class(typename), topic, profile))
            self._publishers[topic] = known
        if known[0] != typename:
            raise ValueError(f"topic {topic!r} carries {known[0]}, not {typename}")
        known[1].publish(msg_dicts.dict_to_rclpy(typename, data))

    def subscribe(self, topic: str, typename: str, callback: Callable[[Message], None], qos: QosProfile) -> None:
        self._node.create_subscription(rclpy_message_class(typename), check_topic_name(topic),
                                       lambda msg: callback(msg_dicts.message_to_dict(msg)), to_rclpy(qos))

    def now_ns(self) -> int:
        return int(self._node.get_clock().now().nanoseconds)

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of the node's clock (sim time too), in short wall-clock slices; a clock that
        stands still for ``CLOCK_STALL_S`` (``use_sim_time`` with nobody publishing /clock) is a TimeoutError."""
        if not seconds > 0:
            return
        end_ns = self.now_ns() + round(seconds * 1e9)
        seen_ns, seen_at_s = self.now_ns(), time.monotonic()
        while (now_ns := self.now_ns()) < end_ns:
            if now_ns != seen_ns:
                seen_ns, seen_at_s = now_ns, time.monotonic()
            elif time.monotonic() - seen_at_s > CLOCK_STALL_S:
                raise TimeoutError(f"the ROS clock of node {self._node.get_name()!r} stood still for {CLOCK_STALL_S} s "
                                   f"(use_sim_time without a /clock publisher?)")
            time.sleep(min((end_ns - now_ns) * 1e-9, SLEEP_SLICE_S))

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> TimerHandle:
        _check_period(period_s)
        timer = self._node.create_timer(period_s, callback)
        return _RclpyTimer(self._node, timer)

    def close(self) -> None:
        """Stop the executor thread and destroy the node when this transport made them. Safe twice."""
        if not self._owns_node or self._executor is None:
            return
        executor, self._executor = self._executor, None
        executor.shutdown(timeout_sec=CLOSE_TIMEOUT_S)
        if self._thread is not None:
            self._thread.join(CLOSE_TIMEOUT_S)
        self._node.destroy_node()


@dataclasses.dataclass
class _RclpyTimer:
    node: Any
    timer: Any

    def cancel(self) -> None:
        self.node.destroy_timer(self.timer)
