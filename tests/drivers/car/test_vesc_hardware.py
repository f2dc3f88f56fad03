"""On a real VESC car (wheels off the ground!): ``ROBOT_RL_HARDWARE=1 ROBOT_RL_VESC_PORT=/dev/ttyACM0``
(optionally ``ROBOT_RL_VESC_RIG=car.toml`` for the rig's calibration). Skipped otherwise, with the reason."""

import os
import time

import pytest

from drivers.car.config import VescConfig, load_vesc_rig
from drivers.car.vesc import VescCar
from robot_rl.backends.car import CarCommand

PORT = os.environ.get("ROBOT_RL_VESC_PORT")
RIG = os.environ.get("ROBOT_RL_VESC_RIG")

pytestmark = [
    pytest.mark.hardware,
    pytest.mark.skipif(PORT is None, reason="needs a VESC car: set ROBOT_RL_VESC_PORT=/dev/ttyACM0 (and "
                                            "ROBOT_RL_HARDWARE=1); wheels off the ground"),
]


@pytest.fixture
def car():
    config = load_vesc_rig(RIG, port=PORT) if RIG else VescConfig(port=PORT)
    with VescCar(config) as car:
        yield car


def test_telemetry_spin_up_slowly_and_watchdog_brake(car):
    state = car.read_state()
    assert car.telemetry.fault == "FAULT_CODE_NONE", car.telemetry
    assert car.spec.min_battery_v is None or state.battery_v > car.spec.min_battery_v
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        car.command(CarCommand(steering_rad=0.1, speed_m_s=0.5))
        car.sync(0.05)
    assert car.read_state().wheel_speed_m_s == pytest.approx(0.5, abs=0.15)  # the VESC's speed PID
    car.sync(0.4)  # no command: the watchdog brakes
    assert car.brake_reason == "watchdog"
    car.sync(0.6)
    assert abs(car.read_state().wheel_speed_m_s) < 0.1
