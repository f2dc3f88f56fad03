"""Quality-of-service profiles for our ROS 2 topics, as plain data.

A DDS connection forms only when the publisher *offers* at least what the subscription
*requests*: a ``best_effort`` publisher never reaches a ``reliable`` subscription, a
``volatile`` publisher never reaches a ``transient_local`` one (`compatible`). So the choice
is made per kind of data and per side, following REP 2003 (sensor data and maps):

- ``state`` (joint states, odometry, IMU, battery, poses) and ``image``: the subscription
  requests the sensor-data profile (best effort, volatile, small depth: the newest sample is
  what matters, a late one is useless, retransmitting it over Wi-Fi only adds latency); the
  publisher offers ``reliable`` so that every subscription connects, including tools that
  request the ROS default (reliable), while best-effort subscriptions still get best-effort
  delivery.
- ``command``: reliable both sides, depth 1 — a command must not be silently dropped, but a
  queue of old commands is never replayed to the robot (keep-last 1 keeps only the newest).
  The command timeout of the robot node stops the robot when commands stop arriving.
- ``camera_info``: published with every image and offered ``transient_local`` (a late
  subscription gets the last one at once); the subscription requests volatile best effort so
  that it connects to any camera driver (most publish CameraInfo volatile).
- ``latched`` (the robot's spec and other once-published descriptions, like
  ``robot_description`` and maps in REP 2003): reliable transient-local, depth 1, both sides.
- ``parameter``: the ROS parameter-event profile (reliable, volatile, depth 1000).

rclpy is optional: `to_rclpy` imports it lazily and `import_ros` says what to install or
source when it is absent.
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType

RELIABILITIES = ("reliable", "best_effort")
DURABILITIES = ("volatile", "transient_local")
SIDES = ("subscription", "publisher")

ROS_MISSING_HINT = (
    "rclpy is not importable: it is not on PyPI; install ROS 2 (Humble or Jazzy) and run "
    "`source /opt/ros/humble/setup.bash` (or jazzy) before starting this, with robot_rl "
    "pip-installed into that Python"
)


@dataclasses.dataclass(frozen=True)
class QosProfile:
    """Keep-last QoS: reliability ("reliable"|"best_effort"), durability
    ("volatile"|"transient_local") and the history depth in messages (>= 1)."""

    reliability: str
    durability: str
    depth: int

    def __post_init__(self) -> None:
        if self.reliability not in RELIABILITIES:
            raise ValueError(f"QosProfile.reliability must be one of {RELIABILITIES}, got {self.reliability!r}")
        if self.durability not in DURABILITIES:
            raise ValueError(f"QosProfile.durability must be one of {DURABILITIES}, got {self.durability!r}")
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 1:
            raise ValueError(f"QosProfile.depth must be an int >= 1, got {self.depth!r}")


SENSOR_DATA = QosProfile("best_effort", "volatile", 5)  # rmw_qos_profile_sensor_data
SYSTEM_DEFAULT = QosProfile("reliable", "volatile", 10)  # the ROS 2 default publisher profile

# kind -> (subscription profile, publisher profile); the reasons are in the module docstring.
_PROFILES: dict[str, tuple[QosProfile, QosProfile]] = {
    "state": (SENSOR_DATA, SYSTEM_DEFAULT),
    "image": (QosProfile("best_effort", "volatile", 2), QosProfile("reliable", "volatile", 2)),
    "command": (QosProfile("reliable", "volatile", 1), QosProfile("reliable", "volatile", 1)),
    "camera_info": (SENSOR_DATA, QosProfile("reliable", "transient_local", 1)),
    "latched": (QosProfile("reliable", "transient_local", 1), QosProfile("reliable", "transient_local", 1)),
    "parameter": (QosProfile("reliable", "volatile", 1000), QosProfile("reliable", "volatile", 1000)),
}
KINDS = tuple(_PROFILES)


def qos_for(kind: str, side: str = "subscription") -> QosProfile:
    """The profile for a kind of data (`KINDS`) on one side ("subscription" or "publisher")."""
    if kind not in _PROFILES:
        raise ValueError(f"unknown QoS kind {kind!r}; known kinds: {', '.join(KINDS)}")
    if side not in SIDES:
        raise ValueError(f"unknown QoS side {side!r}; known sides: {', '.join(SIDES)}")
    subscription, publisher = _PROFILES[kind]
    return subscription if side == "subscription" else publisher


def compatible(publisher: QosProfile, subscription: QosProfile) -> bool:
    """Whether DDS connects this publisher to this subscription (request-vs-offered rules for
    reliability and durability; depth never blocks a connection)."""
    reliability_ok = publisher.reliability == "reliable" or subscription.reliability == "best_effort"
    durability_ok = publisher.durability == "transient_local" or subscription.durability == "volatile"
    return reliability_ok and durability_ok


def import_ros(module: str) -> ModuleType:
    """Import a ROS 2 Python module (rclpy, sensor_msgs.msg, ...) or raise ImportError with
    `ROS_MISSING_HINT`."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"cannot import {module}: {error}. {ROS_MISSING_HINT}") from error


def to_rclpy(profile: QosProfile):
    """The `rclpy.qos.QoSProfile` for a profile (imports rclpy lazily)."""
    qos = import_ros("rclpy.qos")
    return qos.QoSProfile(
        history=qos.HistoryPolicy.KEEP_LAST,
        depth=profile.depth,
        reliability=getattr(qos.ReliabilityPolicy, profile.reliability.upper()),
        durability=getattr(qos.DurabilityPolicy, profile.durability.upper()),
    )
