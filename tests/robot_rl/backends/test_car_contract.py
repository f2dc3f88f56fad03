"""The car family contract: spec/state/command validation, clip_car_command's limits, the Protocols."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_rl.backends.base import Backend, CameraSpec, ConnectOnEnter
from robot_rl.backends.car import (
    FAMILY,
    CarBackend,
    CarCommand,
    CarSceneControl,
    CarSpec,
    CarState,
    clip_car_command,
)

DT_S = 0.05


def car_spec(**overrides) -> CarSpec:
    fields = dict(wheelbase_m=0.33, track_width_m=0.28, max_steering_rad=0.4, max_steering_rate_rad_s=4.0,
                  max_speed_m_s=5.0, max_reverse_speed_m_s=1.0, max_accel_m_s2=4.0,
                  command_modes=("speed", "throttle"), max_throttle=0.8, max_throttle_rate_per_s=10.0,
                  min_battery_v=6.4)
    fields.update(overrides)
    return CarSpec(**fields)


def car_state(speed_m_s: float = 0.0, steering_rad: float = 0.0, battery_v: float = 7.4,
              wheel_speed_m_s: float = math.nan) -> CarState:
    return CarState(time_s=1.0, pos_m=[0.5, -0.2], yaw_rad=0.1, vel_body_m_s=[speed_m_s, 0.0], yaw_rate_rad_s=0.0,
                    wheel_speed_m_s=wheel_speed_m_s, steering_rad=steering_rad, imu_accel_m_s2=[0.0, 0.0, 9.81],
                    imu_gyro_rad_s=[0.0, 0.0, 0.0], battery_v=battery_v)


SPEC = car_spec()


# --- spec -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(wheelbase_m=-0.3), r"CarSpec\.wheelbase_m must be in \(0\.0, inf\], got -0\.3"),
        (dict(max_speed_m_s=math.nan), r"CarSpec\.max_speed_m_s must be in .* got nan"),
        (dict(max_steering_rad=1.6), r"CarSpec\.max_steering_rad must be in \(0\.0, 1\.57.*\), got 1\.6"),
        (dict(max_reverse_speed_m_s=-1.0), r"CarSpec\.max_reverse_speed_m_s must be in \[0\.0, inf\]"),
        (dict(max_throttle=1.5), r"CarSpec\.max_throttle must be in \(0\.0, 1\.0\], got 1\.5"),
        (dict(watchdog_s=0.0), r"CarSpec\.watchdog_s must be in \(0\.0, inf\], got 0\.0"),
        (dict(min_battery_v=0.0), r"CarSpec\.min_battery_v must be in \(0\.0, inf\]"),
        (dict(command_modes=()), r"CarSpec\.command_modes must be distinct names from \('speed', 'throttle'\)"),
        (dict(command_modes=("speed", "speed")), r"CarSpec\.command_modes must be distinct"),
        (dict(command_modes=("duty",)), r"CarSpec\.command_modes .* got \('duty',\)"),
        (dict(cameras={"front": CameraSpec("rear", 48, 64)}), r"CarSpec\.cameras\['front'\] must be a CameraSpec"),
        (dict(cameras={"front": CameraSpec("front", 48, 64)}, render_cameras=("chase",)),
         r"CarSpec\.render_cameras must include every observed camera; missing \['front'\]"),
        (dict(render_cameras=("chase", "chase")), r"CarSpec\.render_cameras has duplicates"),
    ],
)
def test_spec_rejects_bad_fields_naming_field_range_and_value(overrides, message):
    with pytest.raises(ValueError, match=message):
        car_spec(**overrides)


def test_spec_is_frozen_and_its_cameras_read_only():
    cameras = {"front": CameraSpec("front", 48, 64)}
    spec = car_spec(cameras=cameras, render_cameras=["front", "chase"])
    cameras["rear"] = CameraSpec("rear", 48, 64)
    assert list(spec.cameras) == ["front"]
    assert spec.render_cameras == ("front", "chase")
    with pytest.raises(TypeError):
        spec.cameras["rear"] = CameraSpec("rear", 48, 64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.max_speed_m_s = 100.0
    assert SPEC.watchdog_s == 0.2 and car_spec(min_battery_v=None).min_battery_v is None


# --- state and command ------------------------------------------------------------------------------


def test_state_copies_arrays_as_read_only_float64():
    pos = np.array([1, 2])
    state = CarState(time_s=0.0, pos_m=pos, yaw_rad=0.0, vel_body_m_s=[0, 0], yaw_rate_rad_s=0.0,
                     wheel_speed_m_s=0.0, steering_rad=0.0, imu_accel_m_s2=[0, 0, 9.81], imu_gyro_rad_s=[0, 0, 0])
    pos[0] = 99
    assert state.pos_m.dtype == np.float64 and state.pos_m.tolist() == [1.0, 2.0]
    assert math.isnan(state.battery_v)
    with pytest.raises(ValueError):
        state.imu_gyro_rad_s[0] = 1.0


def test_state_rejects_wrong_shapes_and_unknown_steering():
    with pytest.raises(ValueError, match=r"CarState\.vel_body_m_s must have shape \(2,\), got \(3,\)"):
        dataclasses.replace(car_state(), vel_body_m_s=[1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"CarState\.steering_rad must be finite .* got nan"):
        car_state(steering_rad=math.nan)


def test_forward_speed_falls_back_to_wheel_speed():
    assert car_state(speed_m_s=1.5, wheel_speed_m_s=2.0).forward_speed_m_s == 1.5
    assert car_state(speed_m_s=math.nan, wheel_speed_m_s=2.0).forward_speed_m_s == 2.0
    assert math.isnan(car_state(speed_m_s=math.nan).forward_speed_m_s)


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(steering_rad=0.0), r"exactly one of speed_m_s or throttle, got speed_m_s=None, throttle=None"),
        (dict(steering_rad=0.0, speed_m_s=1.0, throttle=0.2), r"exactly one of speed_m_s or throttle"),
        (dict(steering_rad=math.nan, speed_m_s=1.0), r"CarCommand\.steering_rad must be finite, got nan"),
        (dict(steering_rad=0.0, speed_m_s=math.inf), r"CarCommand\.speed_m_s must be finite, got inf"),
        (dict(steering_rad=0.0, throttle=math.nan), r"CarCommand\.throttle must be finite, got nan"),
    ],
)
def test_command_rejects_malformed_fields(fields, message):
    with pytest.raises(ValueError, match=message):
        CarCommand(**fields)


def test_command_mode_and_float_fields():
    assert CarCommand(steering_rad=0, speed_m_s=1).mode == "speed"
    command = CarCommand(steering_rad=0, throttle=1)
    assert command.mode == "throttle" and isinstance(command.throttle, float)


# --- clip_car_command -------------------------------------------------------------------------------


def test_command_within_limits_passes_unchanged():
    previous = CarCommand(steering_rad=0.1, speed_m_s=2.0)
    for command in (CarCommand(steering_rad=0.25, speed_m_s=2.1), CarCommand(steering_rad=-0.05, speed_m_s=1.9)):
        assert clip_car_command(command, SPEC, car_state(2.0, 0.1), previous, DT_S) == command
    throttle = CarCommand(steering_rad=0.0, throttle=0.3)
    assert clip_car_command(throttle, SPEC, car_state(), CarCommand(steering_rad=0.0, throttle=0.0), DT_S) == throttle


def test_unaccepted_mode_and_bad_period_are_errors():
    speed_only = car_spec(command_modes=("speed",))
    with pytest.raises(ValueError, match=r"accepts \('speed',\) commands, got a 'throttle' command"):
        clip_car_command(CarCommand(steering_rad=0.0, throttle=0.1), speed_only, car_state(), None, DT_S)
    with pytest.raises(ValueError, match=r"dt_s must be > 0, got 0"):
        clip_car_command(CarCommand(steering_rad=0.0, speed_m_s=0.0), SPEC, car_state(), None, 0)


def test_steering_range_and_rate_relative_to_previous_or_measured():
    command = CarCommand(steering_rad=1.0, speed_m_s=0.0)
    at_max = CarCommand(steering_rad=0.4, speed_m_s=0.0)
    assert clip_car_command(command, SPEC, car_state(steering_rad=0.39), None, DT_S).steering_rad == 0.4
    # 4 rad/s over 0.05 s = 0.2 rad per command, from the previous command, else the measured angle
    assert clip_car_command(command, SPEC, car_state(steering_rad=0.3), CarCommand(steering_rad=0.0, speed_m_s=0),
                            DT_S).steering_rad == pytest.approx(0.2)
    assert clip_car_command(command, SPEC, car_state(steering_rad=-0.1), None, DT_S).steering_rad == pytest.approx(0.1)
    assert clip_car_command(CarCommand(steering_rad=-1.0, speed_m_s=0.0), SPEC, car_state(), at_max,
                            DT_S).steering_rad == pytest.approx(0.2)


def test_speed_range_and_acceleration_ramp():
    fast = CarCommand(steering_rad=0.0, speed_m_s=9.0)
    # 4 m/s^2 over 0.05 s = 0.2 m/s per command
    assert clip_car_command(fast, SPEC, car_state(1.0), None, DT_S).speed_m_s == pytest.approx(1.2)
    assert clip_car_command(fast, SPEC, car_state(0.0), CarCommand(steering_rad=0, speed_m_s=3.0),
                            DT_S).speed_m_s == pytest.approx(3.2)
    assert clip_car_command(fast, SPEC, car_state(4.9), None, DT_S).speed_m_s == 5.0
    assert clip_car_command(fast, SPEC, car_state(math.nan), None, DT_S).speed_m_s == pytest.approx(0.2)
    back = CarCommand(steering_rad=0.0, speed_m_s=-9.0)
    assert clip_car_command(back, SPEC, car_state(-0.9), None, DT_S).speed_m_s == -1.0
    # measured above the range (downhill): the range wins over the ramp
    assert clip_car_command(fast, SPEC, car_state(7.0), None, DT_S).speed_m_s == 5.0


def test_throttle_range_rate_and_speed_limit():
    full = CarCommand(steering_rad=0.0, throttle=1.0)
    assert clip_car_command(full, SPEC, car_state(), None, DT_S).throttle == pytest.approx(0.5)  # 10/s * 0.05 s
    assert clip_car_command(full, SPEC, car_state(), CarCommand(steering_rad=0.0, throttle=0.7),
                            DT_S).throttle == 0.8
    assert clip_car_command(full, SPEC, car_state(5.0), CarCommand(steering_rad=0.0, throttle=0.7),
                            DT_S).throttle == 0.0
    reverse = CarCommand(steering_rad=0.0, throttle=-0.3)
    assert clip_car_command(reverse, SPEC, car_state(5.0), None, DT_S).throttle == -0.3  # braking is allowed
    assert clip_car_command(reverse, SPEC, car_state(-1.0), None, DT_S).throttle == 0.0
    assert clip_car_command(reverse, car_spec(max_reverse_speed_m_s=0.0), car_state(0.0), None, DT_S).throttle == 0.0


def test_low_battery_zeroes_drive_but_keeps_steering():
    weak = car_state(1.0, battery_v=6.0)
    speed = clip_car_command(CarCommand(steering_rad=0.1, speed_m_s=1.0), SPEC, weak, None, DT_S)
    assert speed == CarCommand(steering_rad=0.1, speed_m_s=0.0)
    throttle = clip_car_command(CarCommand(steering_rad=0.1, throttle=0.2), SPEC, weak, None, DT_S)
    assert throttle == CarCommand(steering_rad=0.1, throttle=0.0)
    unknown = car_state(1.0, battery_v=math.nan)
    assert clip_car_command(CarCommand(steering_rad=0.0, throttle=0.2), SPEC, unknown, None, DT_S).throttle == 0.2


finite = st.floats(-20.0, 20.0, allow_nan=False)
commands = st.builds(lambda steer, drive, use_speed: CarCommand(steering_rad=steer, speed_m_s=drive) if use_speed
                     else CarCommand(steering_rad=steer, throttle=max(-1.0, min(1.0, drive))),
                     finite, finite, st.booleans())


@settings(max_examples=300, deadline=None)
@given(command=commands, previous=st.one_of(st.none(), commands), speed=finite,
       steering=st.floats(-1.0, 1.0), battery=st.floats(5.0, 9.0), dt_s=st.floats(1e-3, 0.5))
def test_clipped_command_is_always_within_the_spec(command, previous, speed, steering, battery, dt_s):
    state = car_state(speed, steering, battery)
    clipped = clip_car_command(command, SPEC, state, previous, dt_s)
    eps = 1e-9
    assert clipped.mode == command.mode
    assert abs(clipped.steering_rad) <= SPEC.max_steering_rad
    reference = previous.steering_rad if previous is not None else steering
    if abs(reference) <= SPEC.max_steering_rad:
        assert abs(clipped.steering_rad - reference) <= SPEC.max_steering_rate_rad_s * dt_s + eps
    if clipped.mode == "speed":
        assert -SPEC.max_reverse_speed_m_s <= clipped.speed_m_s <= SPEC.max_speed_m_s
        ref = previous.speed_m_s if previous is not None and previous.speed_m_s is not None else speed
        if -SPEC.max_reverse_speed_m_s <= ref <= SPEC.max_speed_m_s and battery >= SPEC.min_battery_v:
            assert abs(clipped.speed_m_s - ref) <= SPEC.max_accel_m_s2 * dt_s + eps
    else:
        assert abs(clipped.throttle) <= SPEC.max_throttle
        assert not (speed >= SPEC.max_speed_m_s and clipped.throttle > 0)
    if battery < SPEC.min_battery_v:
        assert (clipped.speed_m_s if clipped.mode == "speed" else clipped.throttle) == 0.0
    # clipping is idempotent: the clipped command is within every limit
    assert clip_car_command(clipped, SPEC, state, previous, dt_s) == clipped


# --- protocols --------------------------------------------------------------------------------------


class FakeCar(ConnectOnEnter):
    """The smallest object keeping the car contract (no physics: it stands still)."""

    family = FAMILY

    def __init__(self) -> None:
        self.connected = False
        self.sent: list[CarCommand] = []

    @property
    def spec(self) -> CarSpec:
        return SPEC

    def connect(self) -> None:
        self.connected = True

    def close(self) -> None:
        self.connected = False

    def read_state(self) -> CarState:
        return car_state()

    def command(self, command: CarCommand) -> CarCommand:
        previous = self.sent[-1] if self.sent else None
        self.sent.append(clip_car_command(command, self.spec, self.read_state(), previous, DT_S))
        return self.sent[-1]

    def sync(self, period_s: float) -> None:
        pass

    def stop(self) -> None:
        self.sent.append(CarCommand(steering_rad=self.read_state().steering_rad, speed_m_s=0.0))

    def render(self, camera: str, height: int | None = None, width: int | None = None) -> np.ndarray:
        return np.zeros((height or 1, width or 1, 3), np.uint8)


class FakeSimCar(FakeCar):
    def set_pose(self, pos_m: np.ndarray, yaw_rad: float) -> None:
        pass


class NoCommandCar:
    family = FAMILY
    spec = SPEC

    def read_state(self) -> CarState:
        return car_state()


def test_fake_backends_keep_the_protocols():
    car = FakeCar()
    assert isinstance(car, Backend) and isinstance(car, CarBackend)
    assert not isinstance(car, CarSceneControl)
    assert isinstance(FakeSimCar(), CarSceneControl)
    assert not isinstance(NoCommandCar(), CarBackend)
    with car:
        assert car.connected
        sent = car.command(CarCommand(steering_rad=1.0, speed_m_s=0.0))
    assert not car.connected and sent.steering_rad == pytest.approx(0.2)
