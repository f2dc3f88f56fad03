"""The family table: every family's topics name real ROS 2 types, roles are unique, names are relative."""

import pytest

from drivers.ros2.families import FAMILIES, FamilyMessages, family_messages
from drivers.ros2.msg_dicts import typestore


def test_every_family_follows_the_protocol_and_names_known_types():
    assert sorted(FAMILIES) == ["arm", "car", "quadrotor"]
    for family, messages in FAMILIES.items():
        assert isinstance(messages, FamilyMessages) and messages.family == family
        topics = messages.state_topics + messages.command_topics
        roles = [topic.role for topic in topics]
        assert len(set(roles)) == len(roles), family
        assert any(topic.required for topic in messages.state_topics), family
        for topic in topics:
            assert not topic.default_name.startswith("/"), topic  # relative: a namespace/prefix applies
            for distro in ("humble", "jazzy"):
                assert topic.typename in typestore(distro).fielddefs, (distro, topic)


def test_unknown_family_lists_the_known_ones():
    known = r"no ROS 2 messages for robot family 'boat'; known: \['arm', 'car', 'quadrotor'\]"
    with pytest.raises(ValueError, match=known):
        family_messages("boat")
