"""SpaceMouse over a fake hidapi that emits the report bytes a real SpaceMouse sends."""

import logging
import os
import struct
import time

import numpy as np
import pytest

from drivers.teleop.spacemouse import (
    FULL_SCALE,
    SPACEMOUSE_EE_DELTA_XYZ_FACING_ROBOT,
    SpaceMouse,
    SpaceMouseConfig,
    button_index,
    known_models,
    parse_report,
)
from drivers.teleop.testing import FakeHidApi, FakeHidDevice, wait_for
from robot_rl.human.teleop import ButtonMap


@pytest.fixture
def hid_device():
    return FakeHidDevice()


@pytest.fixture
def mouse(hid_device):
    with SpaceMouse(hid_api=FakeHidApi([hid_device])) as device:
        yield device


def translation(x, y, z):
    """Report 1 of a SpaceMouse Compact: id 1, then x, y, z as int16 little endian (HID frame)."""
    return struct.pack("<Bhhh", 1, x, y, z)


# ---------------------------------------------------------------------- report parsing
def test_parse_translation_report_bytes():
    # x = +350 (0x015e), y = -350 (0xfea2), z = 0: little endian int16.
    axes, buttons = parse_report(bytes([1, 0x5E, 0x01, 0xA2, 0xFE, 0x00, 0x00]), np.zeros(6), frozenset())
    assert axes.tolist() == [1.0, -1.0, 0.0, 0.0, 0.0, 0.0] and buttons == frozenset()


def test_parse_six_axis_report_one_and_separate_rotation_report():
    axes, _ = parse_report(struct.pack("<B6h", 1, 35, -70, 175, 350, -350, 700), np.zeros(6), frozenset())
    np.testing.assert_allclose(axes, [0.1, -0.2, 0.5, 1.0, -1.0, 1.0])  # clipped at full scale
    axes, _ = parse_report(struct.pack("<B3h", 2, 0, 0, -175), axes, frozenset())
    np.testing.assert_allclose(axes, [0.1, -0.2, 0.5, 0.0, 0.0, -0.5])
    axes, _ = parse_report(translation(0, 0, 0), axes, frozenset())  # 3-axis report keeps rotation
    np.testing.assert_allclose(axes, [0.0, 0.0, 0.0, 0.0, 0.0, -0.5])


def test_parse_button_report_and_ignore_others():
    _, buttons = parse_report(bytes([3, 0b0000_0011, 0b0000_0100]), np.zeros(6), frozenset())
    assert buttons == {0, 1, 10}
    axes, buttons = parse_report(bytes([0x17, 0x64]), np.ones(6) * 0.5, frozenset({1}))  # battery
    assert buttons == {1} and axes.tolist() == [0.5] * 6
    assert FULL_SCALE == 350.0


def test_known_models_and_button_names_come_from_pyspacemouse_table():
    models = known_models()
    assert models[(0x256F, 0xC635)] == "SpaceMouseCompact"
    assert models[(0x046D, 0xC626)] == "SpaceNavigator"
    assert button_index("SpaceMouseCompact", "LEFT") == 0 and button_index("SpaceMouseCompact", "RIGHT") == 1
    assert button_index("SpaceMousePro", "BTN_1") == 12 and button_index("SpaceMouseEnterprise", "CTRL") == 25
    with pytest.raises(KeyError, match="LEFT"):
        button_index("SpaceMouseCompact", "MIDDLE")


# ---------------------------------------------------------------------- frames
@pytest.mark.parametrize(
    "hid_counts, expected_base",
    [
        ((0, -350, 0), [1.0, 0.0, 0.0]),   # cap pushed away from the operator -> +x (forward)
        ((0, 350, 0), [-1.0, 0.0, 0.0]),   # pulled towards the operator -> -x
        ((-350, 0, 0), [0.0, 1.0, 0.0]),   # pushed left -> +y (left)
        ((350, 0, 0), [0.0, -1.0, 0.0]),   # pushed right -> -y
        ((0, 0, -350), [0.0, 0.0, 1.0]),   # lifted -> +z (up)
        ((0, 0, 350), [0.0, 0.0, -1.0]),   # pressed down -> -z
    ],
)
def test_default_map_device_frame_to_base_frame(hid_device, mouse, hid_counts, expected_base):
    hid_device.send(translation(*hid_counts))
    event = wait_for(lambda: (e := mouse.poll()).intervening and e)
    np.testing.assert_allclose(event.action[:3], expected_base, atol=1e-6)
    assert event.action[3] == 1.0  # gripper: open when the policy gave none


def test_facing_robot_map_mirrors_x_and_y(hid_device):
    config = SpaceMouseConfig(axis_map=SPACEMOUSE_EE_DELTA_XYZ_FACING_ROBOT)
    with SpaceMouse(config, hid_api=FakeHidApi([hid_device])) as mouse:
        hid_device.send(translation(-350, -350, -350))  # away, left, up from the operator's view
        event = wait_for(lambda: (e := mouse.poll()).intervening and e)
    np.testing.assert_allclose(event.action[:3], [-1.0, -1.0, 1.0], atol=1e-6)


def test_release_hands_back_and_small_deflections_are_deadband(hid_device, mouse):
    hid_device.send(translation(0, -350, 0))
    wait_for(lambda: mouse.poll().intervening)
    hid_device.send(translation(0, 0, 0))
    wait_for(lambda: not mouse.poll().intervening)
    hid_device.send(translation(20, -30, 10))  # < 10 % of full scale on every axis
    time.sleep(0.05)
    assert mouse.poll().action is None


# ---------------------------------------------------------------------- buttons
def test_left_closes_right_opens_the_gripper(hid_device, mouse):
    policy = np.array([0, 0, 0, 1.0], dtype=np.float32)
    hid_device.send(bytes([3, 0b01]))  # left button
    event = wait_for(lambda: (e := mouse.poll(policy)).intervening and e)
    assert event.action.tolist() == [0.0, 0.0, 0.0, -1.0]
    hid_device.send(translation(0, -350, 0))  # move first, then let go of the button
    hid_device.send(bytes([3, 0b00]))
    event = wait_for(lambda: (e := mouse.poll(policy)).intervening and e.action[0] > 0.5 and e)
    assert event.action[-1] == -1.0  # latched while the human keeps control
    hid_device.send(bytes([3, 0b10]))  # right button
    wait_for(lambda: (e := mouse.poll(policy)).intervening and e.action[-1] == 1.0)


def test_a_tap_between_two_polls_is_not_lost(hid_device):
    config = SpaceMouseConfig(buttons=ButtonMap(success=0, end_episode=1))
    with SpaceMouse(config, hid_api=FakeHidApi([hid_device])) as mouse:
        hid_device.send(bytes([3, 0b01]))
        hid_device.send(bytes([3, 0b00]))
        wait_for(lambda: hid_device.pending == 0)
        time.sleep(0.05)  # the reader has parsed both reports
        event = mouse.poll()
        assert event.success and not event.end_episode and not event.intervening
        assert not mouse.poll().success  # edge-triggered


# ---------------------------------------------------------------------- link loss
def test_stale_axes_stop_the_intervention(hid_device):
    with SpaceMouse(SpaceMouseConfig(stale_after_s=0.1), hid_api=FakeHidApi([hid_device])) as mouse:
        hid_device.send(translation(0, -350, 0))
        wait_for(lambda: mouse.poll().intervening)
        wait_for(lambda: not mouse.poll().intervening, timeout_s=2.0)
        assert mouse.poll().connected


def test_unplug_stops_intervention_and_warns_once_naming_the_device(hid_device, mouse, caplog):
    hid_device.send(translation(0, -350, 0))
    wait_for(lambda: mouse.poll().intervening)
    with caplog.at_level(logging.WARNING):
        hid_device.unplug()
        event = wait_for(lambda: (e := mouse.poll()) and not e.connected and e)
        for _ in range(3):
            event = mouse.poll()
    assert not event.intervening and event.action is None and not event.connected
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "SpaceMouseCompact" in warnings[0].getMessage()


def test_close_stops_the_reader_and_closes_the_device(hid_device):
    mouse = SpaceMouse(hid_api=FakeHidApi([hid_device]))
    assert not mouse.poll().connected  # nothing opened in __init__
    mouse.connect()
    assert hid_device.open_count == 1 and mouse.poll().connected
    mouse.close()
    mouse.close()
    assert hid_device.open_count == 0 and not mouse.poll().connected


# ---------------------------------------------------------------------- discovery
def test_no_spacemouse_lists_what_was_found():
    keyboard = FakeHidDevice(vendor_id=0x046D, product_id=0xC31C, path=b"/dev/hidraw7", product_string="USB Keyboard", usage=0x06)
    with pytest.raises(RuntimeError) as err:
        SpaceMouse(hid_api=FakeHidApi([keyboard])).connect()
    message = str(err.value)
    assert "no 3Dconnexion SpaceMouse" in message and "046d:c31c" in message and "USB Keyboard" in message
    assert "udev" in message and "hid.enumerate()" in message
    with pytest.raises(RuntimeError, match="hidapi sees no HID devices"):
        SpaceMouse(hid_api=FakeHidApi([])).connect()


def test_permission_denied_gives_the_udev_hint():
    locked = FakeHidDevice(openable=False)
    with pytest.raises(RuntimeError, match="cannot open SpaceMouse.*udev"):
        SpaceMouse(hid_api=FakeHidApi([locked])).connect()


def test_explicit_path_and_interface_choice():
    other = FakeHidDevice(path=b"/dev/hidraw1", usage=0x01)  # a receiver's non-axis interface
    axis = FakeHidDevice(path=b"/dev/hidraw2")
    with SpaceMouse(hid_api=FakeHidApi([other, axis])) as mouse:
        assert b"/dev/hidraw2" in mouse.name.encode() and axis.open_count == 1
    with pytest.raises(RuntimeError, match="no HID device at path"):
        SpaceMouse(SpaceMouseConfig(path=b"/dev/hidraw9"), hid_api=FakeHidApi([axis])).connect()


def test_config_checks_the_axis_count():
    from robot_rl.human.teleop import AxisMap

    with pytest.raises(ValueError, match="6 device axes"):
        SpaceMouseConfig(axis_map=AxisMap.from_axes([(0, 1.0)], device_dim=3))


@pytest.mark.hardware
def test_real_spacemouse_reports_when_moved():
    """Needs a SpaceMouse: ROBOT_RL_HARDWARE=1; push the cap away from you during the test."""
    with SpaceMouse() as mouse:
        deadline = time.monotonic() + float(os.environ.get("ROBOT_RL_TELEOP_WAIT_S", "10"))
        while time.monotonic() < deadline:
            event = mouse.poll()
            if event.intervening and event.action[0] > 0.5:
                return
            time.sleep(0.02)
    pytest.fail("no forward push (+x) seen from the SpaceMouse")
