"""The MuJoCo car: lifecycle and spec before connect, the model's mass and centre of gravity,
command clipping, physics sanity (speed tracking, steering sign, turning radius vs the bicycle
model), stop() braking, throttle mode, scene control and cameras."""

import math

import numpy as np
import pytest

from robot_rl.backends.base import Backend
from robot_rl.backends.car import (
    CarBackend,
    CarCommand,
    CarSceneControl,
    CarState,
    clip_car_command,
)
from sim.car.backend import MujocoCar, MujocoCarConfig, make_backend
from sim.car.params import CarPhysics
from sim.car.track import TrackScene

DT_S = 0.05
OPEN = {"track_mean_radius_m": 15.0}  # the car starts at the origin, ~10 m from any wall


@pytest.fixture(scope="module")
def car():
    with MujocoCar(MujocoCarConfig(**OPEN)) as car:
        yield car


def drive(car, steps, steering_rad=0.0, speed_m_s=None, throttle=None):
    for _ in range(steps):
        car.command(CarCommand(steering_rad=steering_rad, speed_m_s=speed_m_s, throttle=throttle))
        car.sync(DT_S)
    return car.read_state()


def test_spec_and_track_before_connect_nothing_in_init():
    car = MujocoCar(MujocoCarConfig(image_height=32, image_width=48))
    assert not car.connected and car.model is None
    spec = car.spec
    p = CarPhysics()
    assert spec.wheelbase_m == pytest.approx(0.3302) and spec.max_steering_rad == p.max_steering_rad
    assert spec.command_modes == ("speed", "throttle") and spec.render_cameras == ("front", "chase", "top")
    assert spec.cameras["front"].shape == (32, 48, 3)
    assert car.track.num_points > 100 and car.model is None  # the track is known, nothing compiled
    assert isinstance(car, Backend) and isinstance(car, CarBackend)
    assert isinstance(car, CarSceneControl) and isinstance(car, TrackScene)
    with pytest.raises(RuntimeError, match="not connected"):
        car.read_state()
    assert dict(make_backend(None, "state").spec.cameras) == {}


def test_model_has_the_published_mass_and_centre_of_gravity(car):
    m, p = car.model, CarPhysics()
    body = m.body("car").id
    assert m.body_subtreemass[body] == pytest.approx(p.mass_kg)
    car.set_pose(np.zeros(2), 0.0)
    com = car.data.subtree_com[body]
    assert com[0] == pytest.approx(p.cog_to_rear_m, abs=1e-4)  # rear axle at the origin, facing +x
    assert com[2] == pytest.approx(p.cog_height_m, abs=2e-3)


def test_at_rest_on_the_start_line_with_gravity_on_the_imu():
    with MujocoCar() as car:
        pos, yaw = car.track.pose_at(0)
        car.sync(0.2)
        state = car.read_state()
        np.testing.assert_allclose(state.pos_m, pos, atol=2e-3)
        assert state.yaw_rad == pytest.approx(yaw, abs=1e-3)
        np.testing.assert_allclose(state.imu_accel_m_s2, [0, 0, 9.81], atol=0.05)
        assert np.abs(state.vel_body_m_s).max() < 1e-3 and math.isnan(state.battery_v)


def test_command_is_clipped_by_the_contract_and_returns_what_was_applied(car):
    car.set_pose(np.zeros(2), 0.0)
    car.sync(DT_S)
    wanted = CarCommand(steering_rad=2.0, speed_m_s=100.0)
    expected = clip_car_command(wanted, car.spec, car.read_state(), None, DT_S)
    sent = car.command(wanted)
    assert sent == expected
    # from the measured state (at rest, steering 0) by the rate limits over one period
    assert sent.steering_rad == pytest.approx(3.2 * DT_S) and sent.speed_m_s == pytest.approx(9.51 * DT_S, abs=1e-4)
    car.sync(DT_S)
    second = car.command(wanted)  # ramps on from the previous command
    assert second.steering_rad == pytest.approx(2 * 3.2 * DT_S)
    assert second.speed_m_s == pytest.approx(sent.speed_m_s + 9.51 * DT_S)
    throttle = car.command(CarCommand(steering_rad=-5.0, throttle=3.0))
    assert throttle.mode == "throttle" and throttle.throttle == pytest.approx(10.0 * DT_S)


def test_accelerates_straight_to_the_commanded_speed(car):
    car.set_pose(np.zeros(2), 0.0)
    state = drive(car, 40, speed_m_s=2.0)
    assert state.forward_speed_m_s == pytest.approx(2.0, abs=0.02)
    assert state.wheel_speed_m_s == pytest.approx(2.0, abs=0.01)
    assert abs(state.pos_m[1]) < 0.01 and abs(state.yaw_rad) < 0.005 and abs(state.vel_body_m_s[1]) < 0.01
    assert state.pos_m[0] == pytest.approx(3.6, abs=0.15)  # ~0.4 s to get up to speed, then 2 m/s


@pytest.mark.parametrize("steering_rad", [0.2, -0.2])
def test_steering_sign_positive_turns_left(car, steering_rad):
    car.set_pose(np.zeros(2), 0.0)
    state = drive(car, 20, steering_rad=steering_rad, speed_m_s=1.0)
    assert np.sign(state.yaw_rate_rad_s) == np.sign(steering_rad) and abs(state.yaw_rate_rad_s) > 0.3
    assert np.sign(state.pos_m[1]) == np.sign(steering_rad)
    assert state.steering_rad == pytest.approx(steering_rad)


@pytest.mark.parametrize("steering_rad", [0.15, 0.35])
def test_turning_radius_matches_the_bicycle_model(car, steering_rad):
    """At 1.5 m/s (lateral acceleration < 3 m/s^2) the rear axle turns on the kinematic radius
    wheelbase / tan(steering), within 3 %."""
    car.set_pose(np.zeros(2), 0.0)
    state = drive(car, 60, steering_rad=steering_rad, speed_m_s=1.5)
    radius = state.forward_speed_m_s / state.yaw_rate_rad_s
    assert radius == pytest.approx(car.spec.wheelbase_m / math.tan(steering_rad), rel=0.03)


def test_stop_brakes_to_a_standstill_and_the_next_command_drives_again(car):
    car.set_pose(np.zeros(2), 0.0)
    before = drive(car, 40, speed_m_s=3.0)
    assert before.forward_speed_m_s > 2.9
    car.stop()
    car.sync(1.0)
    stopped = car.read_state()
    assert abs(stopped.forward_speed_m_s) < 0.05 and stopped.pos_m[0] - before.pos_m[0] < 1.0
    car.sync(1.0)
    assert np.linalg.norm(car.read_state().pos_m - stopped.pos_m) < 0.02  # stays put
    assert drive(car, 10, speed_m_s=1.0).forward_speed_m_s > 0.8


def test_throttle_mode_drives_and_zero_throttle_brakes(car):
    car.set_pose(np.zeros(2), 0.0)
    fast = drive(car, 20, throttle=0.4).forward_speed_m_s
    assert 2.0 < fast < 4.0  # tends to 0.4 x free speed (4 m/s)
    slow = drive(car, 20, throttle=0.0).forward_speed_m_s
    assert 0.0 <= slow < 0.5 * fast


def test_steering_delay_holds_the_old_target():
    with MujocoCar(MujocoCarConfig(steering_delay_s=0.04, **OPEN)) as car:
        car.set_pose(np.zeros(2), 0.0)
        car.command(CarCommand(steering_rad=0.1, speed_m_s=0.0))
        car.sync(0.03)
        assert car.read_state().steering_rad == 0.0
        car.sync(0.02)
        assert car.read_state().steering_rad == pytest.approx(0.032)  # one 10 ms servo step at 3.2 rad/s


def test_set_pose_render_and_visual_randomization(car):
    car.set_pose(np.array([1.0, -2.0]), 0.5)
    state = car.read_state()
    np.testing.assert_allclose(state.pos_m, [1.0, -2.0]) and state.yaw_rad == pytest.approx(0.5)
    with pytest.raises(ValueError, match="finite pos_m"):
        car.set_pose(np.array([np.nan, 0.0]), 0.0)
    image = car.render("front", 24, 32)
    assert image.shape == (24, 32, 3) and image.dtype == np.uint8 and image.std() > 5
    assert car.render("top").shape == (64, 64, 3)
    with pytest.raises(KeyError, match="front"):
        car.render("rear")
    car.randomize_visuals(np.random.default_rng(1))
    assert not np.array_equal(car.render("front", 24, 32), image)
    assert isinstance(car.read_state(), CarState) and np.array_equal(car.read_state().pos_m, state.pos_m)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="mass_kg"):
        MujocoCarConfig(mass_kg=-1.0)
    with pytest.raises(ValueError, match="unknown cameras"):
        MujocoCarConfig(cameras=("rear",))
    with pytest.raises(ValueError, match="low_level_hz"):
        MujocoCarConfig(physics_hz=200.0, low_level_hz=400.0)
