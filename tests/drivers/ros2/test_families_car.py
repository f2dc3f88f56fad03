"""The car family on ROS 2 messages: state and command round trips, frames, the Twist bicycle mapping."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from ros2_msg_samples import assert_close, car_states, round_trip, sim_car, through_cdr, times_ns

from drivers.ros2.families import Frames, family_messages
from drivers.ros2.messages_car import MIN_SPEED_FOR_YAW_RATE_M_S
from robot_rl.backends.car import CarCommand, CarState

CAR = family_messages("car")
FRAMES = Frames(world="map", base="base_link")


def assert_same_car_state(back: CarState, state: CarState, time_ns: int) -> None:
    assert back.time_s == pytest.approx(time_ns * 1e-9, abs=1e-9)
    for name in ("pos_m", "vel_body_m_s", "yaw_rate_rad_s", "imu_accel_m_s2", "imu_gyro_rad_s"):
        assert_close(getattr(back, name), getattr(state, name))
    assert math.isclose(math.remainder(back.yaw_rad - state.yaw_rad, 2 * math.pi), 0.0, abs_tol=1e-9)
    for name in ("wheel_speed_m_s", "steering_rad", "battery_v"):  # float32 on the wire
        assert_close(getattr(back, name), getattr(state, name), float32=True)


def test_sim_car_state_round_trips_over_cdr():
    spec, state = sim_car()
    assert state.vel_body_m_s[0] > 0.1 and state.steering_rad != 0  # really driving a curve
    assert_same_car_state(round_trip(CAR, spec, state, 5_000_000_123, FRAMES), state, 5_000_000_123)


@settings(max_examples=25, deadline=None)
@given(state=car_states(), time_ns=times_ns())
def test_random_car_states_round_trip(state, time_ns):
    spec, _ = sim_car()
    assert_same_car_state(round_trip(CAR, spec, state, time_ns, FRAMES), state, time_ns)


def test_odometry_pose_in_world_and_twist_in_body_frame():
    spec, _ = sim_car()
    state = CarState(time_s=0.0, pos_m=np.array([1.0, 2.0]), yaw_rad=math.pi / 2, vel_body_m_s=np.array([3.0, 0.1]),
                     yaw_rate_rad_s=0.5, wheel_speed_m_s=3.0, steering_rad=0.1, imu_accel_m_s2=np.zeros(3),
                     imu_gyro_rad_s=np.zeros(3))
    odom = CAR.state_to_messages(state, spec, 0, FRAMES)["odom"]
    assert (odom["header"]["frame_id"], odom["child_frame_id"]) == ("map", "base_link")
    assert odom["pose"]["pose"]["position"] == {"x": 1.0, "y": 2.0, "z": 0.0}
    quat = odom["pose"]["pose"]["orientation"]
    assert quat["z"] == pytest.approx(math.sqrt(0.5)) and quat["w"] == pytest.approx(math.sqrt(0.5))
    # heading north, driving forward: the body-frame twist says x forward, not world y
    assert odom["twist"]["twist"]["linear"] == {"x": 3.0, "y": 0.1, "z": 0.0}
    assert odom["twist"]["twist"]["angular"]["z"] == 0.5


def test_unknown_pose_and_battery_read_back_as_nan():
    spec, state = sim_car()
    lost = CarState(**{**{f: getattr(state, f) for f in ("time_s", "vel_body_m_s", "yaw_rate_rad_s",
                                                         "wheel_speed_m_s", "steering_rad", "imu_accel_m_s2",
                                                         "imu_gyro_rad_s")},
                       "pos_m": np.full(2, np.nan), "yaw_rad": math.nan})
    messages = through_cdr(CAR.state_to_messages(lost, spec, 1, FRAMES), CAR.state_topics)
    assert messages["battery"]["present"] is False
    back = CAR.state_from_messages({"odom": messages["odom"], "drive_state": messages["drive_state"]}, spec)
    assert np.isnan(back.pos_m).all() and math.isnan(back.yaw_rad) and math.isnan(back.battery_v)
    assert np.isnan(back.imu_gyro_rad_s).all()  # no imu role: unknown, not zero


def test_bad_state_messages_name_the_problem():
    spec, state = sim_car()
    messages = CAR.state_to_messages(state, spec, 1, FRAMES)
    with pytest.raises(ValueError, match=r"missing required roles \['drive_state'\]"):
        CAR.state_from_messages({"odom": messages["odom"]}, spec)
    with pytest.raises(ValueError, match=r"unknown roles \['lidar'\]"):
        CAR.state_from_messages({**messages, "lidar": {}}, spec)
    bad = {**messages, "drive_state": {**messages["drive_state"], "drive": {**messages["drive_state"]["drive"],
                                                                             "steering_angle": math.nan}}}
    with pytest.raises(ValueError, match=r"drive_state .*steering_angle must be finite"):
        CAR.state_from_messages(bad, spec)
    odom = messages["odom"]
    squashed = {**odom, "pose": {**odom["pose"], "pose": {**odom["pose"]["pose"], "orientation":
                                                           {"x": 0.0, "y": 0.0, "z": 0.5, "w": 0.5}}}}
    with pytest.raises(ValueError, match="odom .*orientation: needs a finite unit quaternion"):
        CAR.state_from_messages({**messages, "odom": squashed}, spec)


def test_newest_stamp_times_the_state():
    spec, state = sim_car()
    messages = CAR.state_to_messages(state, spec, 2_000_000_000, FRAMES)
    messages["imu"] = CAR.state_to_messages(state, spec, 2_500_000_000, FRAMES)["imu"]
    assert CAR.state_from_messages(messages, spec).time_s == 2.5


def test_ackermann_command_both_ways():
    spec, _ = sim_car()
    command = CarCommand(steering_rad=-0.3, speed_m_s=2.5)
    message = through_cdr({"ackermann": CAR.command_to_message(command, spec, "ackermann", 7, FRAMES)},
                          CAR.command_topics)["ackermann"]
    assert message["header"]["frame_id"] == "base_link" and message["drive"]["steering_angle_velocity"] == 0.0
    back = CAR.command_from_message("ackermann", message, spec)
    assert back.mode == "speed"
    assert_close([back.steering_rad, back.speed_m_s], [-0.3, 2.5], float32=True)


def test_twist_command_uses_the_bicycle_model():
    spec, _ = sim_car()
    wheelbase = spec.wheelbase_m
    twist = CAR.command_to_message(CarCommand(steering_rad=0.3, speed_m_s=2.0), spec, "cmd_vel", 0, FRAMES)
    assert twist["linear"]["x"] == 2.0 and twist["angular"]["z"] == pytest.approx(2.0 * math.tan(0.3) / wheelbase)
    # reversing with the wheels turned left turns the car clockwise: the sign survives the round trip
    for steering, speed in ((0.3, 2.0), (0.3, -1.0), (-0.2, 0.5), (0.25, 0.0), (-0.25, 0.01)):
        message = CAR.command_to_message(CarCommand(steering_rad=steering, speed_m_s=speed), spec, "cmd_vel", 0,
                                         FRAMES)
        back = CAR.command_from_message("cmd_vel", message, spec)
        assert (back.steering_rad, back.speed_m_s) == (pytest.approx(steering), speed)
    assert CAR.command_to_message(CarCommand(steering_rad=0.3, speed_m_s=-1.0), spec, "cmd_vel", 0,
                                  FRAMES)["angular"]["z"] < 0


def test_twist_at_standstill_steers_as_at_creep_speed():
    spec, _ = sim_car()

    def steering(speed, yaw_rate):
        message = {"linear": {"x": speed, "y": 0.0, "z": 0.0}, "angular": {"x": 0.0, "y": 0.0, "z": yaw_rate}}
        return CAR.command_from_message("cmd_vel", message, spec).steering_rad

    expected = math.atan(spec.wheelbase_m * 0.5 / MIN_SPEED_FOR_YAW_RATE_M_S)
    assert steering(0.0, 0.5) == pytest.approx(expected) and steering(1e-9, 0.5) == pytest.approx(expected)
    assert steering(0.0, 0.0) == 0.0 and steering(0.0, 1e6) < math.pi / 2  # bounded: clipping is the backend's
    assert steering(-1e-9, 0.5) == pytest.approx(-expected)  # creeping backwards
    assert steering(2.0, 0.5) == pytest.approx(math.atan(spec.wheelbase_m * 0.5 / 2.0))


def test_bad_commands_are_refused():
    spec, _ = sim_car()
    with pytest.raises(ValueError, match="throttle-mode CarCommand"):
        CAR.command_to_message(CarCommand(steering_rad=0.0, throttle=0.5), spec, "ackermann", 0, FRAMES)
    with pytest.raises(ValueError, match="unknown command role 'drive'"):
        CAR.command_to_message(CarCommand(steering_rad=0.0, speed_m_s=1.0), spec, "drive", 0, FRAMES)
    nan_twist = {"linear": {"x": math.nan, "y": 0.0, "z": 0.0}, "angular": {"x": 0.0, "y": 0.0, "z": 0.0}}
    with pytest.raises(ValueError, match="cmd_vel .*must be finite"):
        CAR.command_from_message("cmd_vel", nan_twist, spec)
    with pytest.raises(ValueError, match="ackermann .*needs drive.steering_angle"):
        CAR.command_from_message("ackermann", {"drive": {"speed": 1.0}}, spec)
    with pytest.raises(ValueError, match="one command message is needed"):
        CAR.command_from_messages({"ackermann": None, "cmd_vel": None}, spec)
