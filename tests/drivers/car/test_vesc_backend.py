"""The VESC backend over a pty against an emulated VESC speaking the real packet format: the car
contract (spec without a device, clipping, what was really sent), commands as the firmware decodes
them, telemetry, the keep-alive rate, the command watchdog and stop()."""

import math
import pathlib
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from drivers.car.config import VescConfig
from drivers.car.control import servo_to_steering_arrays
from drivers.car.vesc import VescCar, make_backend
from robot_rl.backends.base import Backend
from robot_rl.backends.car import (
    CarBackend,
    CarCommand,
    CarSceneControl,
    CarState,
    clip_car_command,
)

DT_S = 0.05


def last(emulator, name):
    found = emulator.commands(name)
    return found[-1] if found else None


def test_spec_without_a_device_and_nothing_in_init():
    threads = threading.active_count()
    car = VescCar(VescConfig(port="/dev/does-not-exist", max_speed_m_s=2.5, min_battery_v=6.6, max_battery_v=8.6))
    assert threading.active_count() == threads and not car.connected  # no thread, no port opened
    spec = car.spec
    assert spec.max_speed_m_s == 2.5 and spec.min_battery_v == 6.6 and spec.watchdog_s == 0.2
    assert spec.command_modes == ("speed", "throttle") and dict(spec.cameras) == {}
    assert isinstance(car, Backend) and isinstance(car, CarBackend) and not isinstance(car, CarSceneControl)
    with pytest.raises(RuntimeError, match="not connected"):
        car.read_state()
    car.stop()  # nothing is driving: a no-op, never an error
    with pytest.raises(OSError, match="does-not-exist"):  # pyserial's SerialException
        car.connect()
    assert not car.connected


def test_registered_as_the_vesc_car_backend():
    from robot_rl import registry

    entry = registry.backends("car")[("car", "vesc")]
    assert entry.entry_point == "drivers.car.vesc:make_backend" and entry.family == "car"
    assert "port" in registry.option_names(entry.config)
    with pytest.raises(NotImplementedError, match="state only"):
        make_backend(None, "pixels", port="/dev/ttyACM0")


def test_registered_even_when_a_driver_module_is_imported_before_robot_rl():
    code = ("import drivers.car.vesc; from robot_rl import registry; "
            "assert ('car', 'vesc') in registry.backends(), registry.plugin_errors(); "
            "assert not [e for e in registry.plugin_errors() if 'vesc' in e], registry.plugin_errors()")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60,
                          cwd=pathlib.Path(__file__).resolve().parents[3])
    assert done.returncode == 0, done.stderr[-2000:]


def test_connect_and_read_the_telemetry(make_car, emulator):
    car = make_car()
    state = car.read_state()
    assert isinstance(state, CarState) and state.battery_v == pytest.approx(11.1)
    assert state.wheel_speed_m_s == 0.0 and state.steering_rad == 0.0
    assert np.isnan(state.pos_m).all() and math.isnan(state.yaw_rad) and np.isnan(state.imu_accel_m_s2).all()
    assert car.telemetry.temp_fet_c == pytest.approx(25.0) and car.telemetry.fault == "FAULT_CODE_NONE"
    assert car.brake_reason == "no command"
    assert emulator.wait_for(lambda: last(emulator, "SET_CURRENT_BRAKE") is not None)  # braked until commanded
    assert last(emulator, "SET_CURRENT_BRAKE").value == pytest.approx(car.config.brake_current_a)


def test_speed_command_is_sent_as_erpm_with_the_servo_position(make_car, emulator, drive_until):
    car = make_car()
    sent = car.command(CarCommand(steering_rad=0.2, speed_m_s=1.5))
    assert sent == CarCommand(steering_rad=0.2, speed_m_s=1.5)  # within the limits: unchanged
    erpm = car.config.erpm_per_m_s * 1.5
    assert emulator.wait_for(lambda: last(emulator, "SET_RPM") is not None)
    assert last(emulator, "SET_RPM").value == pytest.approx(erpm, abs=0.5)
    assert erpm == pytest.approx(2 * 12.0 * 60 / (2 * math.pi * 0.05) * 1.5)  # pole pairs x gear x rpm per m/s
    assert emulator.wait_for(lambda: emulator.servo == pytest.approx(0.3, abs=1e-3))  # 0.5 - 1.0 * 0.2
    steering = servo_to_steering_arrays(emulator.servo, car.config.servo_center, car.config.servo_per_rad, np)
    assert float(steering) == pytest.approx(0.2, abs=1e-3)
    assert drive_until(car, lambda: abs(car.read_state().wheel_speed_m_s - 1.5) < 0.02, sent)  # telemetry back
    assert car.read_state().steering_rad == 0.2 and car.brake_reason is None


def test_command_is_clipped_by_the_contract_over_the_sync_period(make_car, emulator):
    car = make_car(max_accel_m_s2=3.0, max_steering_rate_rad_s=3.2, max_speed_m_s=2.0)
    car.sync(DT_S)
    wanted = CarCommand(steering_rad=1.0, speed_m_s=10.0)
    expected = clip_car_command(wanted, car.spec, car.read_state(), None, DT_S)
    first = car.command(wanted)
    assert first == expected and first.speed_m_s == pytest.approx(0.15) and first.steering_rad == pytest.approx(0.16)
    car.sync(DT_S)
    assert car.command(wanted).speed_m_s == pytest.approx(0.30)  # ramps from the previous command
    for _ in range(20):
        sent = car.command(wanted)
    assert sent.speed_m_s == 2.0 and sent.steering_rad == car.spec.max_steering_rad
    assert emulator.wait_for(lambda: last(emulator, "SET_RPM").value == pytest.approx(2.0 * car.config.erpm_per_m_s,
                                                                                     abs=0.5))
    servo_limit = car.config.servo_center + car.config.servo_per_rad * car.spec.max_steering_rad
    assert emulator.wait_for(lambda: emulator.servo == pytest.approx(servo_limit, abs=1e-3))


@pytest.mark.parametrize("control, name, value", [("duty", "SET_DUTY", 0.5 * 0.3), ("current", "SET_CURRENT", 0.5 * 20.0)])
def test_throttle_modes_and_zero_throttle_brakes(make_car, emulator, control, name, value):
    car = make_car(throttle_control=control)
    assert car.command(CarCommand(steering_rad=0.0, throttle=0.5)).throttle == 0.5
    assert emulator.wait_for(lambda: last(emulator, name) is not None)
    assert last(emulator, name).value == pytest.approx(value, abs=1e-3)
    since = time.monotonic()
    car.command(CarCommand(steering_rad=0.0, throttle=0.0))
    assert emulator.wait_for(lambda: emulator.commands("SET_CURRENT_BRAKE", since))


def test_keep_alive_every_io_period(make_car, emulator):
    """ALIVE goes out every 10 ms I/O period (io_hz 100), so the firmware's own timeout (emulated at
    250 ms here) never fires while we drive. The gaps are receive times in the emulator: a loaded
    machine can stall a process for 100+ ms (seen once at load 12 on 2 cores), hence the percentiles."""
    emulator.firmware_timeout_s = 0.25
    car = make_car()
    start = time.monotonic()
    while time.monotonic() - start < 0.6:
        car.command(CarCommand(steering_rad=0.0, speed_m_s=1.0))
        car.sync(DT_S)
    gaps = np.diff([r.time_s for r in emulator.commands("ALIVE", start)])
    assert len(gaps) >= 30 and 0.007 < np.median(gaps) < 0.013, gaps
    assert np.percentile(gaps, 90) < 0.025, gaps
    assert emulator.timeouts == 0


def test_command_watchdog_brakes_to_a_stop_and_a_new_command_drives(make_car, emulator, caplog):
    car = make_car()
    car.command(CarCommand(steering_rad=0.1, speed_m_s=1.0))
    commanded_at = time.monotonic()
    assert emulator.wait_for(lambda: emulator.commands("SET_RPM", commanded_at))
    driving_at = emulator.commands("SET_RPM", commanded_at)[0].time_s  # brakes before it were the "no command" ones
    assert emulator.wait_for(lambda: emulator.commands("SET_CURRENT_BRAKE", driving_at), timeout_s=1.0)
    braked_after = emulator.commands("SET_CURRENT_BRAKE", driving_at)[0].time_s - commanded_at
    assert 0.2 <= braked_after < 0.5, braked_after  # 200 ms watchdog + one 10 ms I/O period (+ a loaded machine)
    assert car.brake_reason == "watchdog" and "watchdog 200 ms" in caplog.text
    assert emulator.wait_for(lambda: abs(emulator.erpm) < 1.0)  # the motor stops
    assert car.read_state().steering_rad == 0.1  # steering held
    since = time.monotonic()
    car.command(CarCommand(steering_rad=0.1, speed_m_s=1.0))
    assert car.brake_reason is None and emulator.wait_for(lambda: emulator.commands("SET_RPM", since))


def test_stop_brakes_at_once_and_the_next_command_drives_again(make_car, emulator, drive_until):
    car = make_car()
    assert drive_until(car, lambda: emulator.erpm > 0.9 * 2.0 * car.config.erpm_per_m_s,
                       CarCommand(steering_rad=-0.1, speed_m_s=2.0))
    stopped_at = time.monotonic()
    car.stop()
    assert car.brake_reason == "stop"
    assert emulator.wait_for(lambda: emulator.commands("SET_CURRENT_BRAKE", stopped_at), timeout_s=0.5)
    first_brake_s = emulator.commands("SET_CURRENT_BRAKE", stopped_at)[0].time_s
    assert first_brake_s - stopped_at < 0.05  # sent by stop() itself
    assert emulator.wait_for(lambda: len(emulator.commands("ALIVE", first_brake_s)) >= 3)  # three I/O periods on
    assert emulator.commands("SET_RPM", first_brake_s) == []  # no stale drive order after the brake
    assert emulator.wait_for(lambda: abs(emulator.erpm) < 1.0)
    assert emulator.wait_for(lambda: abs(car.read_state().wheel_speed_m_s) < 0.01)  # and the telemetry says so
    resumed = car.command(CarCommand(steering_rad=-0.1, speed_m_s=5.0))
    assert resumed.speed_m_s == pytest.approx(50.0 * 0.02)  # the ramp starts again from standstill (last sync: 20 ms)


def test_close_brakes_and_releases_the_port(emulator):
    car = VescCar(VescConfig(port=emulator.port))
    with car:
        car.command(CarCommand(steering_rad=0.0, speed_m_s=0.5))
    # the I/O thread's periods end with GET_VALUES; close() sends one brake after the thread has ended
    assert not car.connected and emulator.wait_for(lambda: emulator.commands()[-1].name == "SET_CURRENT_BRAKE")
    car.close()  # twice is fine
    with car:  # the port was released: it opens again
        assert car.read_state().battery_v == pytest.approx(11.1)


def test_robot_rl_make_builds_an_env_on_the_vesc_car_and_car_lap_says_what_it_lacks(emulator):
    import robot_rl

    env = robot_rl.make("car_lap", backend="vesc", port=emulator.port)
    try:
        assert env.action_space.shape == (2,)
        with pytest.raises(ValueError, match="car_lap needs a course.*course=PATH.*VescCar has no track"):
            env.reset(seed=0)
    finally:
        env.close()
    with VescCar(VescConfig(port=emulator.port)) as car:  # the env closed its car: the port is free
        assert car.connected
