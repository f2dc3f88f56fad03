"""The Robotiq 2F driver over a pty against an emulated gripper speaking Modbus RTU (robotiq_emulator.py).

The emulator frames and decodes with ``struct`` and its own CRC-16 from the manual's byte lists;
the driver goes through minimalmodbus and our register codec, so a wrong CRC, byte order or
register packing in either fails here. The manual's own example frames pin both ends.
"""

from __future__ import annotations

import logging
import os
import struct
import time

import pytest

pytest.importorskip("minimalmodbus", reason="the Robotiq driver needs minimalmodbus: pip install -e '.[gripper]'")
pytest.importorskip("serial", reason="the Robotiq driver needs pyserial: pip install -e '.[gripper]'")

from robotiq_emulator import RobotiqEmulator, crc16_modbus, with_crc

from drivers.arm.robotiq import (
    Robotiq2F,
    RobotiqActivationTimeout,
    RobotiqConfig,
    RobotiqFault,
    RobotiqLinkError,
)
from drivers.arm.robotiq_protocol import ObjectStatus
from robot_rl.backends.gripper import Gripper

# Generous reply timeout: 8 helpers' tests share 2 cores; the timeout tests set their own.
TEST_CONFIG = {"reply_timeout_s": 0.5, "activation_timeout_s": 3.0}
STROKE_M = 0.085

# The manual's example frames (2F-85/2F-140 instruction manual, "Modbus RTU example").
MANUAL_FRAMES = {
    "activation reset": "09 10 03 E8 00 03 06 00 00 00 00 00 00 73 30",
    "close, full speed and force": "09 10 03 E8 00 03 06 09 00 00 FF FF FF 42 29",
    "open, full speed and force": "09 10 03 E8 00 03 06 09 00 00 00 FF FF 72 19",
    "read status": "09 04 07 D0 00 03 B1 CE",
    "status, opening": "09 04 06 39 00 00 00 BB 10 71 06",
    "status, opened": "09 04 06 F9 00 00 00 0D 00 17 AA",
    "status, grasped": "09 04 06 B9 00 00 FF BD 00 5C 9A",
}


@pytest.fixture
def emulator():
    with RobotiqEmulator() as emu:
        yield emu


@pytest.fixture
def make_gripper(emulator):
    """``make_gripper(connect=True, **config)``: a gripper on the emulator's port, closed after the test."""
    made = []

    def make(connect: bool = True, **overrides) -> Robotiq2F:
        gripper = Robotiq2F(RobotiqConfig(port=emulator.port, **{**TEST_CONFIG, **overrides}))
        made.append(gripper)
        if connect:
            gripper.connect()
        return gripper

    yield make
    for gripper in made:
        gripper.close()


def read_until(gripper: Robotiq2F, predicate, timeout_s: float = 3.0) -> bool:
    """Read the status (each read waits on the gripper's reply) until ``predicate(status)`` or the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate(gripper.read_status()):
            return True
    return False


@pytest.mark.parametrize("name", sorted(MANUAL_FRAMES))
def test_emulator_crc_reproduces_the_manuals_frames(name):
    frame = bytes.fromhex(MANUAL_FRAMES[name])
    assert with_crc(frame[:-2]) == frame
    assert crc16_modbus(frame[:-2] + b"\x00") != struct.unpack("<H", frame[-2:])[0]


def test_is_a_gripper_known_before_connect():
    gripper = Robotiq2F(RobotiqConfig(port="/dev/null", model="2F-140"))
    assert isinstance(gripper, Gripper)
    assert gripper.max_width_m == pytest.approx(0.140) and not gripper.connected
    gripper.close()  # safe without connect


def test_connect_resets_then_activates(make_gripper, emulator):
    emulator.activation_time_s = 0.2
    start = time.monotonic()
    gripper = make_gripper()
    assert time.monotonic() - start >= 0.2  # waited for gSTA == 3
    assert gripper.connected and gripper.status.ready
    assert [(w.activate, w.go_to) for w in emulator.writes] == [(False, False), (True, False)]
    assert emulator.writes[0].frame == bytes.fromhex(MANUAL_FRAMES["activation reset"])


def test_connect_leaves_an_active_gripper_alone_unless_asked(make_gripper, emulator):
    make_gripper().close()
    writes = len(emulator.writes)
    emulator.comm_timeout_s = 0.1
    assert emulator.wait_for(lambda: emulator.fault == 0x09)  # as a gripper reports after a silence
    second = make_gripper()  # active and only fault 0x09: no reset (it would sweep the fingers and drop a part)
    assert all(w.activate for w in emulator.writes[writes:])
    with pytest.raises(RobotiqLinkError, match=f"cannot open {emulator.port}.*lock"):
        make_gripper()  # the port is held exclusively: one master per bus
    second.close()
    make_gripper(reactivate_on_connect=True)
    assert any(not w.activate for w in emulator.writes[writes:])


def test_activation_timeout_names_the_port_and_status(make_gripper, emulator):
    emulator.activation_time_s = 60.0
    start = time.monotonic()
    with pytest.raises(RobotiqActivationTimeout, match=rf"{emulator.port}.*activation.*0.3 s.*gSTA=1 \(in progress\)"):
        make_gripper(activation_timeout_s=0.3)
    assert time.monotonic() - start < 2.0
    assert not make_gripper(connect=False).connected


def test_open_and_close_frames_are_the_manuals(make_gripper, emulator):
    gripper = make_gripper(speed_m_s=0.150, force_n=235.0)
    assert gripper.command_width(0.0) == 0.0
    assert gripper.command_width(STROKE_M) == pytest.approx(STROKE_M)
    assert [w.frame for w in emulator.writes[-2:]] == [bytes.fromhex(MANUAL_FRAMES["close, full speed and force"]),
                                                     bytes.fromhex(MANUAL_FRAMES["open, full speed and force"])]


def test_widths_become_calibrated_position_bytes(make_gripper, emulator):
    emulator.open_end, emulator.closed_end = 3, 230
    gripper = make_gripper(open_position=3, closed_position=230, speed_m_s=0.020, force_n=63.0)
    byte_m = STROKE_M / 227
    # width -> expected rPR, by hand: 3 + (1 - width / 85 mm) * 227; outside the stroke clipped
    for width_m, position in [(STROKE_M, 3), (0.034, 139), (0.0, 230), (-0.01, 230), (0.2, 3)]:
        sent_m = gripper.command_width(width_m)
        assert emulator.writes[-1].position == position, width_m
        assert sent_m == pytest.approx(min(max(width_m, 0.0), STROKE_M), abs=0.5 * byte_m)
    assert {(w.speed, w.force) for w in emulator.writes[2:]} == {(0, 51)}  # 20 mm/s: slowest; 63 N: 43/215 x 255
    with pytest.raises(ValueError, match="finite"):
        gripper.command_width(float("nan"))


def test_width_reads_back_from_the_position_register(make_gripper, emulator):
    gripper = make_gripper()
    assert gripper.read_width() == pytest.approx(STROKE_M)  # activation leaves the fingers open
    sent_m = gripper.command_width(0.040)
    assert read_until(gripper, lambda s: s.object_status is ObjectStatus.AT_REQUEST)
    assert emulator.position == emulator.position_of_width(sent_m)
    assert gripper.read_width() == pytest.approx(sent_m)
    assert not gripper.object_detected


def test_identical_commands_are_rate_limited(emulator):
    now = [0.0]
    gripper = Robotiq2F(RobotiqConfig(port=emulator.port, resend_interval_s=0.5, **TEST_CONFIG), clock=lambda: now[0])
    with gripper:
        writes = len(emulator.writes)
        for _ in range(10):
            gripper.command_width(0.05)
        assert len(emulator.writes) == writes + 1 and gripper.writes_skipped == 9
        gripper.command_width(0.03)  # a new width goes out at once
        now[0] += 0.6
        gripper.command_width(0.03)  # the same one again after resend_interval_s
        assert [w.position for w in emulator.writes[writes:]] == [105, 165, 165]


def test_stop_clears_go_to_and_the_fingers_stay(make_gripper, emulator):
    gripper = make_gripper(speed_m_s=0.020)  # 85 mm at 20 mm/s: 4 s to close
    gripper.command_width(0.0)
    assert emulator.wait_for(lambda: emulator.position > 20)
    gripper.stop()
    assert not emulator.writes[-1].go_to and emulator.writes[-1].position == 255
    stopped_m = gripper.read_width()
    steps = emulator.steps
    assert emulator.wait_for(lambda: emulator.steps > steps + 20)  # the model ran on
    assert gripper.read_width() == stopped_m < STROKE_M
    assert not gripper.status.going and stopped_m > 0.01


def test_object_detected_when_the_fingers_stop_on_it(make_gripper, emulator):
    emulator.object_position = emulator.position_of_width(0.030)
    gripper = make_gripper()
    gripper.command_width(0.0)
    assert read_until(gripper, lambda s: s.object_status is not ObjectStatus.MOVING)
    assert gripper.object_detected and gripper.status.object_status is ObjectStatus.CONTACT_CLOSING
    assert gripper.read_width() == pytest.approx(0.030, abs=STROKE_M / 255)
    assert gripper.status.current_ma > 0
    gripper.command_width(STROKE_M)
    assert read_until(gripper, lambda s: s.object_status is ObjectStatus.AT_REQUEST)
    assert not gripper.object_detected


def test_fault_raises_with_its_meaning_and_reactivate_clears_it(make_gripper, emulator):
    gripper = make_gripper()
    emulator.inject_fault(0x0E)
    with pytest.raises(RobotiqFault, match=rf"{emulator.port}.*major fault 0x0E: overcurrent triggered.*reactivate") as err:
        gripper.read_width()
    assert err.value.code == 0x0E and err.value.severity == "major"
    gripper.reactivate()
    assert gripper.read_status().fault == 0


def test_communication_loss_fault_is_logged_once_not_raised(make_gripper, emulator, caplog):
    emulator.comm_timeout_s = 0.2
    gripper = make_gripper()
    assert emulator.wait_for(lambda: emulator.fault == 0x09)
    with caplog.at_level(logging.WARNING, logger="drivers.arm.robotiq"):
        assert gripper.read_width() == pytest.approx(STROKE_M)
    assert "0x09" in caplog.text and gripper.status.fault == 0x09
    assert gripper.read_status().fault == 0  # reported once


def test_corrupt_reply_crc_is_a_clear_error(make_gripper, emulator):
    gripper = make_gripper()
    emulator.corrupt_replies = True
    with pytest.raises(RobotiqLinkError, match=rf"{emulator.port}.*corrupt reply.*status read"):
        gripper.read_width()
    emulator.corrupt_replies = False
    assert gripper.read_width() == pytest.approx(STROKE_M)  # the link recovers


def test_emulator_drops_requests_with_a_wrong_crc(emulator):
    fd = os.open(emulator.port, os.O_RDWR | os.O_NOCTTY)
    try:
        good = bytes.fromhex(MANUAL_FRAMES["read status"])
        os.write(fd, good[:-1] + bytes([good[-1] ^ 0x01]))
        assert emulator.wait_for(lambda: emulator.rejected_frames == 1)
        os.write(fd, good)
        assert emulator.wait_for(lambda: emulator.reads == 1)
        assert os.read(fd, 64) == bytes.fromhex("09 04 06 00 00 00 00 00 00") + struct.pack(
            "<H", crc16_modbus(bytes.fromhex("09 04 06 00 00 00 00 00 00")))
    finally:
        os.close(fd)


@pytest.mark.parametrize("fault", ["silent", "wrong slave id"])
def test_no_reply_is_a_timeout_error_not_a_hang(make_gripper, emulator, fault):
    if fault == "silent":
        gripper = make_gripper(reply_timeout_s=0.1)
        emulator.silent = True
    else:
        gripper = make_gripper(connect=False, reply_timeout_s=0.1, slave_id=10)
    start = time.monotonic()
    with pytest.raises(RobotiqLinkError, match=rf"{emulator.port}.*no reply.*0.1 s"):
        gripper.connect() if fault != "silent" else gripper.command_width(0.01)
    assert time.monotonic() - start < 1.0
    assert gripper.connected == (fault == "silent")


def test_vanished_port_is_a_clear_error_and_close_is_safe(make_gripper, emulator):
    gripper = make_gripper()
    emulator.vanish()
    with pytest.raises(RobotiqLinkError, match=rf"{emulator.port}.*serial port failed.*unplugged"):
        gripper.read_width()
    with pytest.raises(RobotiqLinkError):
        gripper.command_width(0.02)
    gripper.close()
    gripper.close()
    assert not gripper.connected
    with pytest.raises(RuntimeError, match="before connect"):
        gripper.read_width()


def test_close_stops_the_fingers_and_is_safe_twice(make_gripper, emulator):
    gripper = make_gripper()
    gripper.command_width(0.02)
    gripper.close()
    assert not emulator.writes[-1].go_to and emulator.writes[-1].activate
    gripper.close()
    gripper.stop()  # no-op once closed
    with pytest.raises(RuntimeError, match="before connect"):
        gripper.command_width(0.02)


@pytest.mark.parametrize("field, value, message", [
    ("model", "2F-200", "model must be one of"), ("slave_id", 0, "slave_id"), ("speed_m_s", 0.3, r"speed_m_s.*\[0.02, 0.15\]"),
    ("force_n", 5.0, "force_n"), ("closed_position", 0, "closed_position"), ("reply_timeout_s", 0.0, "reply_timeout_s")])
def test_bad_config_is_a_clear_error(field, value, message):
    with pytest.raises(ValueError, match=message):
        RobotiqConfig(port="/dev/null", **{field: value})


def test_connect_without_port_names_the_rig_field():
    with pytest.raises(ValueError, match=r"\[gripper.robotiq_2f\] port"):
        Robotiq2F(RobotiqConfig()).connect()


@pytest.mark.hardware
@pytest.mark.skipif("ROBOT_RL_ROBOTIQ_PORT" not in os.environ,
                    reason="needs a Robotiq 2F on RS-485: set ROBOT_RL_ROBOTIQ_PORT=/dev/ttyUSB0 (and ROBOT_RL_HARDWARE=1; "
                           "ROBOT_RL_ROBOTIQ_MODEL=2F-140 for the long stroke); nothing between the fingers")
def test_real_gripper_opens_closes_halfway_and_stops():
    config = RobotiqConfig(port=os.environ["ROBOT_RL_ROBOTIQ_PORT"], model=os.environ.get("ROBOT_RL_ROBOTIQ_MODEL", "2F-85"),
                           speed_m_s=None, reactivate_on_connect=True)
    with Robotiq2F(config) as gripper:
        half_m = gripper.command_width(0.5 * gripper.max_width_m)
        assert read_until(gripper, lambda s: s.object_status is not ObjectStatus.MOVING, timeout_s=5.0)
        assert gripper.read_width() == pytest.approx(half_m, abs=0.01)  # uncalibrated ends: within 1 cm
        assert not gripper.object_detected
        gripper.command_width(gripper.max_width_m)
        gripper.stop()
        assert not gripper.read_status().going
