"""The VESC car's per-rig config (validation, the TOML rig file), its speed/steer controller as
pure functions, and the throttled log of the serial link."""

import logging
import math

import numpy as np
import pytest

from drivers.car import vesc_codec as codec
from drivers.car.config import VescConfig, VescRigError, load_vesc_rig
from drivers.car.control import (
    drive_order,
    servo_to_steering_arrays,
    speed_to_erpm_arrays,
    steering_to_servo_arrays,
)
from drivers.car.link import ThrottledLog
from drivers.car.vesc import VescCar, make_backend
from robot_rl.backends.car import CarCommand

RIG = """
[arm]
ip = "172.16.0.2"          # other drivers' tables are ignored

[car.vesc]
port = "/dev/serial/by-id/usb-VESC-if00"
wheel_radius_m = 0.0508
gear_ratio = 11.86
motor_pole_pairs = 2
servo_center = 0.53
servo_per_rad = -1.2
servo_max = 0.9
max_steering_rad = 0.3
max_speed_m_s = 2.0
"""


def test_erpm_per_metre_per_second_from_the_drivetrain():
    config = VescConfig(wheel_radius_m=0.0508, gear_ratio=11.86, motor_pole_pairs=2)
    # one wheel turn = 2 pi r metres = gear_ratio motor turns = gear_ratio * pole_pairs electrical turns
    assert config.erpm_per_m_s == pytest.approx(2 * 11.86 * 60 / (2 * math.pi * 0.0508))
    assert float(speed_to_erpm_arrays(np.array([1.0, -2.0]), config.erpm_per_m_s, np)[1]) == pytest.approx(
        -2 * config.erpm_per_m_s)


@pytest.mark.parametrize("fields, message", [
    ({"io_hz": 5.0}, r"io_hz must be in \[10, 1000\]"),
    ({"watchdog_s": 0.005}, "must exceed one I/O period"),
    ({"throttle_control": "pwm"}, "throttle_control must be one of"),
    ({"servo_min": 0.6, "servo_max": 0.4}, "servo_min < servo_max"),
    ({"servo_per_rad": -2.0}, "outside \\[servo_min, servo_max\\].*lower max_steering_rad"),
    ({"servo_per_rad": 0.0}, "must not be 0"),
    ({"max_duty": 1.0}, r"max_duty must be in \(0, 0.95\]"),
    ({"motor_pole_pairs": 2.5}, "motor_pole_pairs must be an integer > 0"),
    ({"baud": True}, "baud must be an integer"),
    ({"wheel_radius_m": math.nan}, "wheel_radius_m must be a finite number > 0"),
    ({"brake_current_a": -1.0}, "brake_current_a must be a finite number > 0"),
    ({"max_battery_v": 10.0}, "max_battery_v .* must exceed min_battery_v"),
    ({"max_speed_m_s": 0.0}, "max_speed_m_s"),
    ({"max_speed_m_s": 1e6}, "beyond COMM_SET_RPM's int32"),
    ({"port": ""}, "port must be a device path"),
])
def test_config_errors_name_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        VescConfig(**fields)


def test_rig_file_is_read_validated_and_overridden(tmp_path):
    path = tmp_path / "car.toml"
    path.write_text(RIG)
    config = load_vesc_rig(path, max_speed_m_s=1.5)
    assert config.port == "/dev/serial/by-id/usb-VESC-if00" and config.gear_ratio == 11.86
    assert config.max_speed_m_s == 1.5 and config.rig == str(path)  # the override wins
    car = make_backend(None, "state", rig=str(path), io_hz=50.0)
    assert isinstance(car, VescCar) and not car.connected and car.config.io_hz == 50.0
    assert car.spec.max_steering_rad == 0.3


@pytest.mark.parametrize("text, message", [
    ("[car]\nx = 1\n", "no \\[car.vesc\\] table"),
    ("[car.vesc]\nport = '/dev/x'\nspeed = 3\n", "unknown field\\(s\\) \\['speed'\\]"),
    ("[car.vesc\n", "not valid TOML"),
    ("[car.vesc]\ngear_ratio = -3.0\n", "\\[car.vesc\\]: VescConfig.gear_ratio must be"),
    ("[car.vesc]\nrig = 'other.toml'\n", "unknown field\\(s\\) \\['rig'\\]"),
])
def test_bad_rig_files_name_the_file_and_the_field(tmp_path, text, message):
    path = tmp_path / "rig.toml"
    path.write_text(text)
    with pytest.raises(VescRigError, match=message) as err:
        load_vesc_rig(path)
    assert str(path) in str(err.value)
    with pytest.raises(VescRigError, match="cannot read the rig file"):
        load_vesc_rig(tmp_path / "missing.toml")


# ----------------------------------------------------------------------------- the controller
CONFIG = VescConfig(max_speed_m_s=2.0, max_reverse_speed_m_s=0.5, throttle_deadband=0.05)


@pytest.mark.parametrize("target, reason, speed, expected", [
    (None, None, 0.0, (codec.COMM_SET_CURRENT_BRAKE, 10.0, "no command")),
    (CarCommand(steering_rad=0.0, speed_m_s=1.0), "watchdog", 1.0, (codec.COMM_SET_CURRENT_BRAKE, 10.0, "watchdog")),
    (CarCommand(steering_rad=0.0, speed_m_s=1.0), None, 0.0, (codec.COMM_SET_RPM, CONFIG.erpm_per_m_s, "speed")),
    (CarCommand(steering_rad=0.0, speed_m_s=-0.5), None, 0.0, (codec.COMM_SET_RPM, -0.5 * CONFIG.erpm_per_m_s, "speed")),
    (CarCommand(steering_rad=0.0, speed_m_s=0.0), None, 1.0, (codec.COMM_SET_CURRENT_BRAKE, 10.0, "zero")),
    (CarCommand(steering_rad=0.0, throttle=0.5), None, 1.0, (codec.COMM_SET_DUTY, 0.15, "throttle")),
    (CarCommand(steering_rad=0.0, throttle=0.04), None, 1.0, (codec.COMM_SET_CURRENT_BRAKE, 10.0, "zero")),
    (CarCommand(steering_rad=0.0, throttle=0.5), None, 2.0, (codec.COMM_SET_CURRENT_BRAKE, 10.0, "overspeed")),
    (CarCommand(steering_rad=0.0, throttle=-0.5), None, 2.0, (codec.COMM_SET_DUTY, -0.15, "throttle")),  # braking
    (CarCommand(steering_rad=0.0, throttle=-0.5), None, -0.5, (codec.COMM_SET_CURRENT_BRAKE, 10.0, "overspeed")),
    (CarCommand(steering_rad=0.0, throttle=0.5), None, math.nan, (codec.COMM_SET_DUTY, 0.15, "throttle")),
])
def test_drive_order(target, reason, speed, expected):
    order = drive_order(target, reason, speed, CONFIG)
    assert (order.command_id, order.reason) == (expected[0], expected[2])
    assert order.value == pytest.approx(expected[1]) and order.braking == (expected[0] == codec.COMM_SET_CURRENT_BRAKE)
    assert codec.parse_command(order.payload())[1] == pytest.approx(expected[1], abs=0.5)  # ERPM: whole numbers


def test_coast_releases_the_motor_and_current_control_scales_by_max_current():
    coast = drive_order(CarCommand(steering_rad=0.0, speed_m_s=1.0), "over-voltage", 1.0, CONFIG, coast=True)
    assert (coast.command_id, coast.value, coast.reason) == (codec.COMM_SET_CURRENT, 0.0, "over-voltage")
    current = VescConfig(throttle_control="current", max_current_a=15.0)
    order = drive_order(CarCommand(steering_rad=0.0, throttle=-0.4), None, 0.0, current)
    assert (order.command_id, order.value) == (codec.COMM_SET_CURRENT, pytest.approx(-6.0))


def test_steering_to_servo_and_back_within_the_stops():
    steering = np.array([-0.34, 0.0, 0.2, 5.0])
    servo = steering_to_servo_arrays(steering, 0.5, -1.0, 0.15, 0.85, np)
    np.testing.assert_allclose(servo, [0.84, 0.5, 0.3, 0.15])  # positive (left) steering lowers this servo
    np.testing.assert_allclose(servo_to_steering_arrays(servo[:3], 0.5, -1.0, np), steering[:3])


def test_throttled_log_holds_back_repeats_and_counts_them(caplog):
    now = [0.0]
    throttled = ThrottledLog(logging.getLogger("test.vesc"), interval_s=1.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        assert throttled.log(logging.WARNING, "crc", "bad CRC")
        now[0] = 0.5
        assert not throttled.log(logging.WARNING, "crc", "bad CRC") and not throttled.log(logging.WARNING, "crc", "x")
        assert throttled.log(logging.WARNING, "other", "bad length")  # another key is not held back
        now[0] = 1.2
        assert throttled.log(logging.WARNING, "crc", "bad CRC")
    assert caplog.messages == ["bad CRC", "bad length", "bad CRC (and 2 more like it in the last 1.2 s)"]


def test_the_documented_rig_file_example_is_valid(tmp_path):
    import drivers.car.config as module

    doc = module.__doc__
    block = doc[doc.index("::") + 2:doc.index("Every field")]
    path = tmp_path / "example.toml"
    path.write_text("\n".join(line[4:] for line in block.splitlines()))
    config = load_vesc_rig(path)
    assert config.gear_ratio == 11.86 and config.servo_max == 0.95 and config.max_battery_v == 13.0


def test_the_readme_rig_file_example_is_valid(tmp_path):
    import pathlib

    readme = (pathlib.Path(__file__).resolve().parents[3] / "README.md").read_text()
    start = readme.index("```toml\n[car.vesc]") + len("```toml\n")
    path = tmp_path / "readme.toml"
    path.write_text(readme[start:readme.index("```", start)])
    assert load_vesc_rig(path).servo_per_rad == -1.2135
