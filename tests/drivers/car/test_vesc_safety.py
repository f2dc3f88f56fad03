"""The VESC backend's safe states over the pty: corrupt and hostile replies, a silent VESC, a vanished
serial port, low and high battery voltage, VESC fault codes. Each ends in a brake (or a released
motor for over-voltage), a clear log line or error, and no hang."""

import struct
import time

import numpy as np
import pytest
from pyvesc.packet.codec import frame
from vesc_emulator import ERPM_PER_DUTY

from drivers.car.config import VescConfig
from drivers.car.vesc import VescCar, VescLinkError
from robot_rl.backends.car import CarCommand

GO = CarCommand(steering_rad=0.0, speed_m_s=1.0)


def flip_crc(payload: bytes) -> bytes:
    good = bytearray(frame(payload))
    good[-2] ^= 0xFF
    return bytes(good)


def test_corrupted_frames_are_rejected_with_a_clear_log_and_telemetry_goes_on(make_car, emulator, caplog,
                                                                              drive_until):
    car = make_car()
    replies = iter(range(10**6))
    emulator.reply_hook = lambda payload: flip_crc(payload) if next(replies) % 2 else frame(payload)
    assert drive_until(car, lambda: car.link_stats()["rejected"].get("bad CRC", 0) >= 3)
    assert "rejected a corrupt frame (bad CRC: crc" in caplog.text and "good so far" in caplog.text
    assert car.failure is None and car.read_state().battery_v == pytest.approx(11.1)  # the good half still arrives


@pytest.mark.parametrize("hostile, log", [
    pytest.param(lambda p: frame(p[:21]), "GET_VALUES reply of 21 bytes; the firmware 3.x-6.x layout needs at least 54",
                 id="wrong-length"),
    pytest.param(lambda p: b"\x02\xff" + p[:10], "no telemetry reply within", id="huge-length-byte"),
    pytest.param(lambda p: b"\x03\xff\xff" + p, "bad length: declared 65535 bytes", id="huge-long-length"),
    pytest.param(flip_crc, "bad CRC", id="bad-crc"),
    pytest.param(lambda p: frame(struct.pack(">B", 4)), "GET_VALUES reply of 1 bytes", id="empty-reply"),
    pytest.param(lambda p: None, "no telemetry reply within", id="silent"),
])
def test_hostile_replies_end_in_a_clear_error_and_the_brake_without_a_hang(make_car, emulator, caplog, drive_until,
                                                                           hostile, log):
    car = make_car(link_timeout_s=0.3)
    assert drive_until(car, lambda: emulator.mode == "rpm")
    emulator.reply_hook = hostile
    start = time.monotonic()
    with pytest.raises(VescLinkError, match="no telemetry for"):
        drive_until(car, lambda: False, timeout_s=3.0)
    assert time.monotonic() - start < 2.0  # 0.3 s link timeout, then the next call raises (slack: loaded CI)
    assert log in caplog.text
    assert emulator.wait_for(lambda: emulator.mode == "brake")  # still sending: brakes
    car.stop()  # never raises
    with pytest.raises(VescLinkError, match="no telemetry"):
        car.read_state()


def test_a_frame_cut_short_by_the_next_good_one_is_dropped_as_truncated(make_car, emulator, caplog, drive_until):
    car = make_car()
    emulator.reply_hook = lambda payload: b"\x02\xff" + payload[:10] + frame(payload)  # length byte 255, then a reply
    assert drive_until(car, lambda: car.link_stats()["rejected"].get("truncated frame", 0) >= 3)
    assert "rejected a corrupt frame (truncated frame: 12 byte(s) cut short: 02ff04" in caplog.text
    assert car.failure is None and car.read_state().battery_v == pytest.approx(11.1)


def test_connect_to_a_silent_device_fails_clearly_and_releases_the_port(emulator):
    emulator.reply_hook = lambda payload: None
    car = VescCar(VescConfig(port=emulator.port, connect_timeout_s=0.2))
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="no GET_VALUES reply within 0.2 s"):
        car.connect()
    assert time.monotonic() - start < 2.0 and not car.connected
    emulator.reply_hook = None
    with car:
        assert car.connected


def test_a_vanished_serial_port_is_reported_and_leaves_the_car_safe(make_car, emulator, caplog, drive_until):
    car = make_car()
    assert drive_until(car, lambda: emulator.mode == "rpm")
    emulator.vanish()  # the USB cable is pulled
    with pytest.raises(VescLinkError, match="serial port failed"):
        drive_until(car, lambda: False)
    assert "the car is braked, commands are refused until close() and connect()" in caplog.text
    assert car.brake_reason == "link failure"
    car.stop()  # never raises
    car.close()
    assert not car.connected


def test_low_battery_cuts_the_drive_with_hysteresis(make_car, emulator, caplog, drive_until):
    car = make_car(min_battery_v=9.9, cutout_hysteresis_v=0.3)
    assert drive_until(car, lambda: emulator.mode == "rpm")
    emulator.battery_v = 9.5
    assert drive_until(car, lambda: car.brake_reason == "low battery")
    assert car.command(GO).speed_m_s == 0.0  # what is really sent: no drive
    assert emulator.wait_for(lambda: emulator.mode == "brake")
    assert "battery 9.50 V is below the limit 9.90 V: drive cut" in caplog.text
    emulator.battery_v = 10.1  # above the limit, within the hysteresis: still cut
    assert drive_until(car, lambda: car.read_state().battery_v == pytest.approx(10.1))
    assert car.brake_reason == "low battery" and car.command(GO).speed_m_s == 0.0
    emulator.battery_v = 10.3
    assert drive_until(car, lambda: car.brake_reason is None)
    assert car.command(GO).speed_m_s > 0.0 and emulator.wait_for(lambda: emulator.mode == "rpm")


def test_over_voltage_releases_the_motor_instead_of_braking(make_car, emulator, caplog, drive_until):
    car = make_car(max_battery_v=13.0)
    assert drive_until(car, lambda: emulator.mode == "rpm")
    emulator.battery_v = 14.2
    assert drive_until(car, lambda: car.brake_reason == "over-voltage")
    assert emulator.wait_for(lambda: emulator.mode == "released")  # SET_CURRENT 0: no regenerative braking
    assert emulator.commands("SET_CURRENT")[-1].value == 0.0 and car.command(GO).speed_m_s == 0.0
    assert "battery 14.20 V is above the limit 13.00 V: drive cut" in caplog.text
    emulator.battery_v = 12.4
    assert drive_until(car, lambda: car.brake_reason is None)


@pytest.mark.parametrize("fault, reason, mode", [(2, "fault FAULT_CODE_UNDER_VOLTAGE", "brake"),
                                                 (1, "fault FAULT_CODE_OVER_VOLTAGE", "released"),
                                                 (4, "fault FAULT_CODE_ABS_OVER_CURRENT", "brake")])
def test_a_vesc_fault_code_stops_the_drive_until_it_clears(make_car, emulator, caplog, drive_until, fault, reason,
                                                          mode):
    car = make_car()
    assert drive_until(car, lambda: emulator.mode == "rpm")
    emulator.fault_code = fault
    assert drive_until(car, lambda: car.brake_reason == reason)
    assert emulator.wait_for(lambda: emulator.mode == mode)
    assert f"{reason} (was FAULT_CODE_NONE)" in caplog.text and car.telemetry.fault_code == fault
    emulator.fault_code = 0
    assert drive_until(car, lambda: car.brake_reason is None) and emulator.wait_for(lambda: emulator.mode == "rpm")


def test_throttle_overspeed_is_checked_every_io_period(make_car, emulator, drive_until):
    """Duty 0.9 would spin the emulated motor to 36000 ERPM (~4.7 m/s); at 1 m/s measured the I/O
    thread brakes instead, so the speed stays near the limit."""
    car = make_car(throttle_control="duty", max_speed_m_s=1.0, max_duty=0.9)
    full, speeds, reasons = CarCommand(steering_rad=0.0, throttle=1.0), [], set()

    def record():
        speeds.append(car.read_state().wheel_speed_m_s)
        reasons.add(car.last_order.reason)
        return len(speeds) >= 50

    assert drive_until(car, record, command=full)
    assert {"throttle", "overspeed"} <= reasons
    free_speed = 0.9 * ERPM_PER_DUTY / car.config.erpm_per_m_s  # ~4.7 m/s, where duty 0.9 alone would go
    held = np.mean(speeds[25:])
    assert 0.6 < held < 1.4 and max(speeds) < 0.5 * free_speed, speeds  # overshoot: I/O latency (2 loaded cores)
    assert {r.name for r in emulator.commands()} >= {"SET_DUTY", "SET_CURRENT_BRAKE"}
