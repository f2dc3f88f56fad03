"""The quadrotor family on ROS 2 messages: world-frame velocity vs Odometry's body-frame twist, commands
(Twist velocity, mavros_msgs/AttitudeTarget thrust + body rates)."""

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from ros2_msg_samples import assert_close, quad_states, round_trip, sim_quad, through_cdr, times_ns

from drivers.ros2.families import Frames, family_messages
from drivers.ros2.messages_quad import IGNORE_ATTITUDE
from drivers.ros2.msg_dicts import header, serialize, typestore
from robot_rl.backends.quadrotor import AttitudeCommand, QuadState, ThrustRates, VelocityCommand

QUAD = family_messages("quadrotor")
FRAMES = Frames(world="world", base="cf1")


def assert_same_quad_state(back: QuadState, state: QuadState, time_ns: int) -> None:
    assert back.time_s == pytest.approx(time_ns * 1e-9, abs=1e-9)
    for name in ("pos_m", "quat_wxyz", "body_rates_rad_s"):
        assert_close(getattr(back, name), getattr(state, name))
    assert_close(back.vel_m_s, state.vel_m_s)  # rotated into the body frame and back
    assert back.armed == state.armed and np.isnan(back.motor_speeds_rad_s).all()
    assert_close(back.battery_v, state.battery_v, float32=True)


def test_sim_quad_state_round_trips_over_cdr():
    spec, state = sim_quad()
    assert np.linalg.norm(state.vel_m_s) > 0.1 and abs(state.quat_wxyz[0]) < 0.99  # moving and rotated
    assert_same_quad_state(round_trip(QUAD, spec, state, 3_000_000_000, FRAMES), state, 3_000_000_000)


@settings(max_examples=25, deadline=None)
@given(state=quad_states(), time_ns=times_ns())
def test_random_quad_states_round_trip(state, time_ns):
    spec, _ = sim_quad()
    assert_same_quad_state(round_trip(QUAD, spec, state, time_ns, FRAMES), state, time_ns)


def test_odometry_twist_is_the_world_velocity_in_the_body_frame():
    spec, _ = sim_quad()
    yawed_left = np.array([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)])  # nose points north (world y)
    state = QuadState(time_s=0.0, pos_m=np.array([1.0, 2.0, 3.0]), quat_wxyz=yawed_left,
                      vel_m_s=np.array([1.0, 0.0, 0.5]), body_rates_rad_s=np.array([0.0, 0.0, 0.2]), armed=True)
    odom = QUAD.state_to_messages(state, spec, 0, FRAMES)["odom"]
    assert (odom["header"]["frame_id"], odom["child_frame_id"]) == ("world", "cf1")
    linear = odom["twist"]["twist"]["linear"]
    # flying east with the nose north: east is the body's right, i.e. body -y (FLU)
    assert_close([linear["x"], linear["y"], linear["z"]], [0.0, -1.0, 0.5])
    assert odom["pose"]["pose"]["orientation"]["w"] == pytest.approx(math.cos(math.pi / 4))


def test_imu_carries_orientation_and_rates_and_fills_in_unknown_odometry_rates():
    spec, state = sim_quad()
    messages = QUAD.state_to_messages(state, spec, 1, FRAMES)
    imu = messages["imu"]
    assert imu["linear_acceleration_covariance"][0] == -1.0 and imu["orientation_covariance"][0] == 0.0
    angular = messages["odom"]["twist"]["twist"]["angular"]
    messages["odom"]["twist"]["twist"]["angular"] = {"x": math.nan, "y": math.nan, "z": math.nan}
    back = QUAD.state_from_messages(messages, spec)
    assert_close(back.body_rates_rad_s, [angular["x"], angular["y"], angular["z"]])


def test_without_armed_role_the_quad_reads_disarmed():
    spec, state = sim_quad()
    messages = QUAD.state_to_messages(state, spec, 1, FRAMES)
    assert QUAD.state_from_messages({"odom": messages["odom"]}, spec).armed is False


def test_bad_state_messages_name_the_problem():
    spec, state = sim_quad()
    messages = QUAD.state_to_messages(state, spec, 1, FRAMES)
    with pytest.raises(ValueError, match=r"missing required roles \['odom'\]"):
        QUAD.state_from_messages({"imu": messages["imu"]}, spec)
    odom = messages["odom"]
    lost = {**odom, "pose": {**odom["pose"], "pose": {**odom["pose"]["pose"],
                                                       "position": {"x": math.nan, "y": 0.0, "z": 1.0}}}}
    with pytest.raises(ValueError, match=r"odom .*position must be finite"):
        QUAD.state_from_messages({"odom": lost}, spec)
    with pytest.raises(ValueError, match=r"armed .*must be a bool"):
        QUAD.state_from_messages({"odom": odom, "armed": {"data": 1}}, spec)


def test_velocity_command_both_ways_in_the_world_frame():
    spec, _ = sim_quad()
    command = VelocityCommand(vel_m_s=np.array([0.5, -0.2, 1.0]), yaw_rate_rad_s=-0.4)
    message = through_cdr({"cmd_vel": QUAD.command_to_message(command, spec, "cmd_vel", 0, FRAMES)},
                          QUAD.command_topics)["cmd_vel"]
    assert message["angular"] == {"x": 0.0, "y": 0.0, "z": -0.4}
    back = QUAD.command_from_messages({"cmd_vel": message}, spec)
    assert_close(back.vel_m_s, command.vel_m_s)
    assert back.yaw_rate_rad_s == -0.4


@pytest.mark.parametrize("distro", ["humble", "jazzy"])
def test_thrust_rates_both_ways_as_mavros_attitude_target(distro):
    spec, _ = sim_quad()
    command = ThrustRates(collective_thrust_frac=0.62, body_rates_rad_s=np.array([0.5, -1.25, 2.0]))  # body FLU
    sent = QUAD.command_to_message(command, spec, "attitude_target", 3_000_000_007, FRAMES)
    message = through_cdr({"attitude_target": sent}, QUAD.command_topics, distro)["attitude_target"]
    assert message["type_mask"] == IGNORE_ATTITUDE == 128 and message["header"]["frame_id"] == "cf1"
    assert message["orientation"] == {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}  # ignored: the identity
    assert message["body_rate"] == {"x": 0.5, "y": -1.25, "z": 2.0}  # FLU as given: MAVROS converts to FRD
    back = QUAD.command_from_messages({"attitude_target": message, "cmd_vel": None}, spec)
    assert isinstance(back, ThrustRates) and back.collective_thrust_frac == pytest.approx(0.62, rel=1e-7)  # float32
    assert_close(back.body_rates_rad_s, command.body_rates_rad_s)


def test_attitude_target_layout_matches_the_mavros_field_list_byte_for_byte():
    spec, _ = sim_quad()
    command = ThrustRates(collective_thrust_frac=0.5, body_rates_rad_s=np.array([0.25, -0.5, 1.0]))
    message = QUAD.command_to_message(command, spec, "attitude_target", 1_733_500_000_123_456_789, FRAMES)
    # header (stamp, frame_id "cf1"), uint8 type_mask, padding to 8, Quaternion x y z w, Vector3, float32 thrust
    expected = (b"\x00\x01\x00\x00" + struct.pack("<iII", 1_733_500_000, 123_456_789, 4) + b"cf1\x00"
                + bytes([128]) + bytes(7) + struct.pack("<4d", 0.0, 0.0, 0.0, 1.0) + struct.pack("<3d", 0.25, -0.5, 1.0)
                + struct.pack("<f", 0.5))
    for distro in ("humble", "jazzy"):
        assert serialize(typestore(distro), "mavros_msgs/msg/AttitudeTarget", message) == expected


def attitude_target(**fields) -> dict:
    base = {"header": header(0, "cf1"), "type_mask": IGNORE_ATTITUDE,
            "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}, "body_rate": {"x": 0.0, "y": 0.0, "z": 0.0},
            "thrust": 0.5}
    return {**base, **fields}


def test_attitude_targets_that_are_not_thrust_rates_are_refused():
    spec, _ = sim_quad()
    for mask in (0, IGNORE_ATTITUDE | 1, IGNORE_ATTITUDE | 4, IGNORE_ATTITUDE | 64, 7):
        with pytest.raises(ValueError, match=f"type_mask {mask} is not thrust \\+ body rates"):
            QUAD.command_from_message("attitude_target", attitude_target(type_mask=mask), spec)
    with pytest.raises(ValueError, match="attitude_target .*body_rate, thrust must be finite"):
        QUAD.command_from_message("attitude_target", attitude_target(thrust=math.nan), spec)
    with pytest.raises(ValueError, match=r"attitude_target .*body_rate: needs numeric fields"):
        QUAD.command_from_message("attitude_target", attitude_target(body_rate={"x": 0.0, "y": 0.0}), spec)
    with pytest.raises(ValueError, match="type_mask must be an integer"):
        QUAD.command_from_message("attitude_target", attitude_target(type_mask=128.0), spec)
    with pytest.raises(ValueError, match="needs type_mask, body_rate and thrust"):
        QUAD.command_from_message("attitude_target", {"thrust": 0.5}, spec)
    with pytest.raises(ValueError, match=r"one command message is needed .* got roles \['cmd_vel', 'attitude_target'\]"):
        QUAD.command_from_messages({"cmd_vel": {}, "attitude_target": attitude_target()}, spec)
    over = QUAD.command_from_message("attitude_target", attitude_target(thrust=1.5), spec)
    assert over.collective_thrust_frac == 1.5  # a range is the backend's clip, not a form error


def test_levels_without_a_message_and_bad_commands_are_refused():
    spec, _ = sim_quad()
    attitude = AttitudeCommand(collective_thrust_frac=0.5, roll_rad=0.0, pitch_rad=0.0, yaw_rate_rad_s=0.0)
    for role in ("cmd_vel", "attitude_target"):
        with pytest.raises(ValueError, match=f"'attitude' command does not travel on the {role} role"):
            QUAD.command_to_message(attitude, spec, role, 0, FRAMES)
    rates = ThrustRates(collective_thrust_frac=0.5, body_rates_rad_s=np.zeros(3))
    with pytest.raises(ValueError, match="'thrust_rates' command does not travel on the cmd_vel role"):
        QUAD.command_to_message(rates, spec, "cmd_vel", 0, FRAMES)
    with pytest.raises(ValueError, match="cmd_vel .*must be finite"):
        QUAD.command_from_message("cmd_vel", {"linear": {"x": 0.0, "y": math.inf, "z": 0.0},
                                              "angular": {"x": 0.0, "y": 0.0, "z": 0.0}}, spec)
    with pytest.raises(ValueError, match="needs linear and angular"):
        QUAD.command_from_message("cmd_vel", {"linear": {"x": 0.0, "y": 0.0, "z": 0.0}}, spec)
