"""Fixtures of the VESC backend's tests: an emulated VESC on a pty, and a car connected to it."""

import time

import pytest

pytest.importorskip("pyvesc", reason="the VESC emulator frames with pyvesc (test extra; needs pythoncrc)")
pytest.importorskip("serial", reason="the VESC backend needs pyserial (the car extra)")

from vesc_emulator import VescEmulator

from drivers.car.config import VescConfig
from drivers.car.vesc import VescCar
from robot_rl.backends.car import CarCommand

# Generous link timeout: 8 helpers' tests share 2 cores; the tests of the timeout itself set their own.
TEST_CONFIG = {"link_timeout_s": 1.5, "max_accel_m_s2": 50.0, "max_steering_rate_rad_s": 50.0,
                   "max_throttle_rate_per_s": 50.0}


@pytest.fixture
def emulator():
    with VescEmulator() as emu:
        yield emu


@pytest.fixture
def make_car(emulator):
    """``make_car(**config)``: a connected VescCar on the emulator's port, closed after the test."""
    cars = []

    def make(**overrides):
        car = VescCar(VescConfig(port=emulator.port, **{**TEST_CONFIG, **overrides}))
        car.connect()
        cars.append(car)
        return car

    yield make
    for car in cars:
        car.close()


def _drive_until(car, predicate, command=None, timeout_s=2.0):
    """Command ``command`` (default: straight at 1 m/s) at 50 Hz, paced by ``sync``, until
    ``predicate()`` or ``timeout_s``; whether it held."""
    command = command or CarCommand(steering_rad=0.0, speed_m_s=1.0)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        car.command(command)
        if predicate():
            return True
        car.sync(0.02)
    return False


@pytest.fixture
def drive_until():
    return _drive_until
