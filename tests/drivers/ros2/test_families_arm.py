"""The arm family on ROS 2 messages: JointState names and fingers, TCP pose/twist/wrench, split commands."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from ros2_msg_samples import arm_states, assert_close, round_trip, sim_arm, through_cdr, times_ns

from drivers.ros2.families import ArmMessages, Frames, family_messages
from robot_rl.backends.arm import ArmState, ArmTarget

ARM = family_messages("arm")
FRAMES = Frames(base="fr3_link0")
CARRIED = ("tcp_pos_m", "tcp_quat_wxyz", "tcp_linvel_m_s", "tcp_angvel_rad_s", "joint_pos_rad", "joint_vel_rad_s",
           "gripper_width_m", "ext_wrench_n_nm")


def assert_same_arm_state(back: ArmState, state: ArmState, time_ns: int) -> None:
    assert back.time_s == pytest.approx(time_ns * 1e-9, abs=1e-9) and back.objects == {}
    for name in CARRIED:
        assert_close(getattr(back, name), getattr(state, name))


def test_sim_arm_state_round_trips_over_cdr():
    spec, state = sim_arm()
    assert np.abs(state.joint_vel_rad_s).max() > 0.05 and state.gripper_width_m > 0.01  # moving, gripper open
    messages = through_cdr(ARM.state_to_messages(state, spec, 9_000_000_001, FRAMES), ARM.state_topics)
    joints = messages["joint_states"]
    assert joints["name"] == [f"joint{i}" for i in range(1, 8)] + ["finger_joint1", "finger_joint2"]
    assert joints["header"]["frame_id"] == "fr3_link0" and joints["effort"].size == 0
    assert_same_arm_state(ARM.state_from_messages(messages, spec), state, 9_000_000_001)


@settings(max_examples=20, deadline=None)
@given(state=arm_states(7), time_ns=times_ns())
def test_random_arm_states_round_trip(state, time_ns):
    spec, _ = sim_arm()
    assert_same_arm_state(round_trip(ARM, spec, state, time_ns, FRAMES), state, time_ns)


def test_joint_states_in_any_order_with_a_robot_prefix():
    spec, state = sim_arm()
    fr3 = ArmMessages(joint_prefix="fr3_")
    messages = fr3.state_to_messages(state, spec, 1, FRAMES)
    joints = messages["joint_states"]
    assert joints["name"][0] == "fr3_joint1" and joints["name"][-1] == "fr3_finger_joint2"
    order = np.random.default_rng(1).permutation(len(joints["name"]))
    messages["joint_states"] = {**joints, "name": [joints["name"][i] for i in order],
                                "position": joints["position"][order], "velocity": joints["velocity"][order]}
    back = fr3.state_from_messages(messages, spec)
    assert_close(back.joint_pos_rad, state.joint_pos_rad)
    assert_close(back.gripper_width_m, state.gripper_width_m)
    assert_close(fr3.joint_positions(messages["joint_states"], spec), state.joint_pos_rad)  # a reset's JointState
    with pytest.raises(ValueError, match=r"missing joints \['fr3_joint7'\]"):
        fr3.joint_positions({**joints, "name": joints["name"][:6], "position": joints["position"][:6],
                             "velocity": np.zeros(0)}, spec)
    with pytest.raises(ValueError, match=r"unknown joint names \[.*'fr3_joint1'.*missing joints \['joint1'"):
        ARM.state_from_messages(messages, spec)


def test_optional_roles_and_fingers_absent_read_as_nan():
    spec, state = sim_arm()
    messages = ARM.state_to_messages(state, spec, 1, FRAMES)
    joints = messages["joint_states"]
    arm_only = {**joints, "name": joints["name"][:7], "position": joints["position"][:7], "velocity": np.zeros(0)}
    back = ARM.state_from_messages({"joint_states": arm_only, "tcp_pose": messages["tcp_pose"]}, spec)
    assert math.isnan(back.gripper_width_m) and np.isnan(back.joint_vel_rad_s).all()
    assert np.isnan(back.tcp_linvel_m_s).all() and np.isnan(back.ext_wrench_n_nm).all()
    assert_close(back.tcp_pos_m, state.tcp_pos_m)


def test_bad_joint_states_name_the_problem():
    spec, state = sim_arm()
    messages = ARM.state_to_messages(state, spec, 1, FRAMES)
    joints = messages["joint_states"]
    cases = [
        ({**joints, "name": joints["name"][:-1] + ["elbow"]}, r"unknown joint names \['elbow'\]"),
        ({**joints, "name": joints["name"][1:], "position": joints["position"][1:], "velocity": np.zeros(0)},
         r"missing joints \['joint1'\]"),
        ({**joints, "position": joints["position"][:-1]}, "as many positions"),
        ({**joints, "position": np.where(np.arange(9) == 2, np.nan, joints["position"])}, "position must be finite"),
    ]
    for bad, match in cases:
        with pytest.raises(ValueError, match=match):
            ARM.state_from_messages({**messages, "joint_states": bad}, spec)
    with pytest.raises(ValueError, match=r"missing required roles \['tcp_pose'\]"):
        ARM.state_from_messages({"joint_states": joints}, spec)


def test_commands_travel_as_a_pose_and_a_gripper_width():
    spec, state = sim_arm()
    target = ArmTarget(tcp_pos_m=state.tcp_pos_m + [0.01, 0.0, -0.02], tcp_quat_wxyz=state.tcp_quat_wxyz,
                       gripper_width_m=0.03)
    messages = through_cdr({role: ARM.command_to_message(target, spec, role, 5, FRAMES)
                            for role in ("tcp_target", "gripper_cmd")}, ARM.command_topics)
    assert messages["tcp_target"]["header"]["frame_id"] == "fr3_link0" and messages["gripper_cmd"] == {"data": 0.03}
    back = ARM.command_from_messages(messages, spec)
    for name in ("tcp_pos_m", "tcp_quat_wxyz", "gripper_width_m"):
        assert_close(getattr(back, name), getattr(target, name))
    # one message changes its part; the previous target keeps the other
    previous = ArmTarget(tcp_pos_m=state.tcp_pos_m, tcp_quat_wxyz=state.tcp_quat_wxyz, gripper_width_m=0.08)
    moved = ARM.command_from_message("tcp_target", messages["tcp_target"], spec, previous)
    assert_close(moved.tcp_pos_m, target.tcp_pos_m)
    assert moved.gripper_width_m == 0.08
    gripped = ARM.command_from_message("gripper_cmd", messages["gripper_cmd"], spec, previous)
    assert_close(gripped.tcp_pos_m, state.tcp_pos_m)
    assert gripped.gripper_width_m == 0.03


def test_bad_arm_commands_are_refused():
    spec, state = sim_arm()
    pose = ARM.command_to_message(ArmTarget(state.tcp_pos_m, state.tcp_quat_wxyz, 0.0), spec, "tcp_target", 0, FRAMES)
    with pytest.raises(ValueError, match="half an ArmTarget; pass the previous target"):
        ARM.command_from_message("tcp_target", pose, spec)
    with pytest.raises(ValueError, match=r"missing required roles \['gripper_cmd'\]"):
        ARM.command_from_messages({"tcp_target": pose}, spec)
    with pytest.raises(ValueError, match=r"gripper_cmd .*data must be finite"):
        ARM.command_from_messages({"tcp_target": pose, "gripper_cmd": {"data": math.nan}}, spec)
    squashed = {**pose, "pose": {**pose["pose"], "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 0.0}}}
    with pytest.raises(ValueError, match="tcp_target .*orientation: needs a finite unit quaternion"):
        ARM.command_from_messages({"tcp_target": squashed, "gripper_cmd": {"data": 0.0}}, spec)
