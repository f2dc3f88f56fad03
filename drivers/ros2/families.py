"""Each robot family's state and commands on standard ROS 2 messages, keyed by family.

``FAMILIES[family]`` converts a backend's state to message dicts (one per *role*: ``odom``, ``imu``,
...) and back, and commands both ways. The per-family modules document the messages, units and
frames: :mod:`drivers.ros2.messages_arm`, :mod:`drivers.ros2.messages_car`,
:mod:`drivers.ros2.messages_quad`. Round trip: ``state_from_messages(state_to_messages(s)) == s``
for the fields the messages carry (float32 fields, e.g. Ackermann and battery, to float32 precision).
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

from drivers.ros2.messages_arm import ArmMessages
from drivers.ros2.messages_car import CarMessages
from drivers.ros2.messages_common import Frames, Topic
from drivers.ros2.messages_quad import QuadMessages
from drivers.ros2.msg_dicts import Message

__all__ = ["FAMILIES", "FamilyMessages", "Frames", "Topic", "family_messages", "ArmMessages", "CarMessages",
           "QuadMessages"]


@runtime_checkable
class FamilyMessages(Protocol):
    """One family's conversions (one instance per family, stateless)."""

    family: str
    state_topics: tuple[Topic, ...]
    command_topics: tuple[Topic, ...]

    def state_to_messages(self, state: Any, spec: Any, time_ns: int, frames: Frames) -> dict[str, Message]:
        """Role -> message dict of one state reading, stamped ``time_ns``, frame ids from ``frames``."""
        ...

    def state_from_messages(self, messages: Mapping[str, Message], spec: Any) -> Any:
        """The state (ArmState/CarState/QuadState) of role -> newest message; ``time_s`` from the newest stamp.

        Raises ValueError naming a missing required role or a bad field.
        """
        ...

    def command_to_message(self, command: Any, spec: Any, role: str, time_ns: int, frames: Frames) -> Message:
        """The message of ``command`` for a command role."""
        ...

    def command_from_message(self, role: str, message: Message, spec: Any, previous: Any = None) -> Any:
        """The command after one message of ``role`` (form checks only; ranges are the backend's).

        ``previous`` (the last command) fills what the message does not carry: the arm's pose and
        gripper travel on two topics; car and quadrotor messages are complete on their own.
        """
        ...

    def command_from_messages(self, messages: Mapping[str, Message], spec: Any) -> Any:
        """The command of role -> newest command message (the arm needs both of its roles)."""
        ...


FAMILIES: dict[str, FamilyMessages] = {m.family: m for m in (ArmMessages(), CarMessages(), QuadMessages())}


def family_messages(family: str) -> FamilyMessages:
    """The conversions of ``family``; ValueError listing the known families for any other name."""
    try:
        return FAMILIES[family]
    except KeyError:
        raise ValueError(f"no ROS 2 messages for robot family {family!r}; known: {sorted(FAMILIES)}") from None
