"""The FR3 backend through franky (libfranka 0.21) against franka-sim, which speaks libfranka's
network protocol and emulates the joint-limit / velocity reflexes (motion limits enforced).

Motions are short (a few cm, well under a second each); the session's one server is shared. What
franka-sim cannot emulate (contact, the external wrench estimate: ``O_F_ext_hat_K`` is always
zero) is covered by the pure tests of the same limit functions in test_fr3_config.py.
"""

from __future__ import annotations

import time

import mujoco
import numpy as np
import pytest

from drivers.arm.fr3_safety import Fr3ConnectionLost, Fr3ReflexError, Fr3SafetyStop, TcpFrame
from drivers.arm.fr3_sim_venv import FR3_MJCF
from robot_rl.backends.arm import ArmTarget
from robot_rl.geometry import quat_from_axis_angle, quat_mul

PERIOD_S = 0.1
NEAR_WRIST_LIMIT_RAD = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 2.9])
#: What franka-sim answers when joint 7 is driven into its limit: the joint velocity envelope (it
#: shrinks toward the limit) and, when the joint meets the model's stop, the torque sensor range.
LIMIT_REFLEXES = {"joint_velocity_violation", "tau_J_range_violation"}


def shifted(state, offset_m=(0.0, 0.0, 0.0), yaw_rad=0.0, width_m=0.0) -> ArmTarget:
    quat = quat_mul(state.tcp_quat_wxyz, quat_from_axis_angle(np.array([0.0, 0.0, yaw_rad])))
    return ArmTarget(state.tcp_pos_m + np.asarray(offset_m), quat, width_m)


def wait_for(condition, timeout_s: float, period_s: float = 0.01) -> float:
    """Poll ``condition`` until true; return the seconds it took (fail after ``timeout_s``)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout_s, f"condition not met within {timeout_s} s"
        time.sleep(period_s)
    return time.monotonic() - start


def test_state_is_the_hand_tcp_with_the_flange_offset_compensated(fr3):
    """franka-sim reports link 7 as O_T_EE; the backend's TCP must be our FK's flange + hand TCP."""
    with fr3() as arm:
        state = arm.reset()
        model = mujoco.MjModel.from_xml_path(str(FR3_MJCF))
        data = mujoco.MjData(model)
        data.qpos[:] = state.joint_pos_rad
        mujoco.mj_kinematics(model, data)
        flange_quat = np.zeros(4)
        mujoco.mju_mat2Quat(flange_quat, data.xmat[model.body("fr3_link8").id])
        pos, quat = TcpFrame.from_reported("flange").tcp_from_ee(data.xpos[model.body("fr3_link8").id], flange_quat)
        np.testing.assert_allclose(state.tcp_pos_m, pos, atol=2e-3)
        assert abs(abs(np.dot(state.tcp_quat_wxyz, quat)) - 1.0) < 1e-4
        np.testing.assert_allclose(state.ext_wrench_n_nm, 0.0)  # franka-sim does not estimate it
        assert 0.0 <= state.gripper_width_m <= 0.08


def test_gain_sets_switch_while_tracking_and_the_hand_moves(fr3):
    with fr3() as arm:
        arm.reset()
        goal = shifted(arm.read_state(), [0.02, 0.0, 0.0], width_m=0.03)
        for gain_set in ("precise", "compliant"):
            arm.set_gains(gain_set)
            for _ in range(10):
                arm.command(goal)
                arm.sync(PERIOD_S)
            assert np.linalg.norm(arm.read_state().tcp_pos_m - goal.tcp_pos_m) < 0.006, gain_set
        wait_for(lambda: abs(arm.read_state().gripper_width_m - 0.03) < 0.002, timeout_s=3.0, period_s=0.05)
        with pytest.raises(ValueError, match="unknown gain set"):
            arm.set_gains("stiff")


def test_the_watchdog_holds_the_pose_200_ms_after_the_last_command(fr3):
    with fr3(max_tcp_speed_m_s=1.0) as arm:
        arm.reset()
        target = shifted(arm.read_state(), [0.0, 0.0, -0.05])
        arm.command(target)
        commanded_at = time.monotonic()
        assert not arm.holding
        wait_for(lambda: arm.holding, timeout_s=1.0)
        held_after_s = time.monotonic() - commanded_at
        assert 0.15 <= held_after_s <= 0.5, held_after_s
        held_pos = arm.read_state().tcp_pos_m
        arm.sync(0.5)
        final = arm.read_state()
        assert np.linalg.norm(final.tcp_pos_m - held_pos) < 0.015
        assert np.linalg.norm(final.tcp_pos_m - target.tcp_pos_m) > 0.01, "the arm went on to the stale target"
        arm.command(shifted(final, [0.0, 0.0, 0.01]))  # a fresh command moves again
        assert not arm.holding


def test_targets_stay_in_the_box_and_under_the_speed_limit(fr3):
    speed_m_s = 0.2
    with fr3(max_tcp_speed_m_s=speed_m_s) as arm:
        arm.reset()
        high = arm.spec.workspace_high_m
        previous_call_s = time.monotonic()
        arm.command(shifted(arm.read_state()))
        deadline = time.monotonic() + 6.0
        while True:
            state = arm.read_state()
            call_s = time.monotonic()
            sent = arm.command(shifted(state, [0.0, 0.0, 1.0]))
            after = arm.read_state()
            assert sent.tcp_pos_m[2] <= high[2] + 1e-12
            # The backend steps from its own reading (taken between `state` and `after`) by at most
            # speed x the time since its previous command (less than since our previous call began).
            travel_m = np.linalg.norm(after.tcp_pos_m - state.tcp_pos_m)
            elapsed_s, previous_call_s = time.monotonic() - previous_call_s, call_s
            assert np.linalg.norm(sent.tcp_pos_m - state.tcp_pos_m) <= speed_m_s * elapsed_s + travel_m + 1e-3
            if sent.tcp_pos_m[2] == high[2] or time.monotonic() > deadline:
                break
            arm.sync(PERIOD_S)
        assert sent.tcp_pos_m[2] == pytest.approx(high[2]), "the target never reached the top of the box"
        for _ in range(20):  # keep asking for more: the arm settles at the top of the box
            if abs(arm.read_state().tcp_pos_m[2] - high[2]) < 0.005:
                break
            arm.command(shifted(arm.read_state(), [0.0, 0.0, 1.0]))
            arm.sync(PERIOD_S)
        assert abs(arm.read_state().tcp_pos_m[2] - high[2]) < 0.005


def test_a_measured_speed_over_the_limit_stops_and_reports(fr3):
    with fr3(max_measured_tcp_speed_m_s=0.02) as arm:
        arm.reset()
        arm.command(shifted(arm.read_state(), [0.0, 0.05, 0.0]))
        assert arm.fault_event.wait(2.0), "no safety stop"
        assert isinstance(arm.fault, Fr3SafetyStop) and arm.holding
        with pytest.raises(Fr3SafetyStop, match="measured TCP speed"):
            arm.command(shifted(arm.read_state()))
        arm.reset()  # clears the stop
        assert arm.fault is None
        arm.command(shifted(arm.read_state()))


def drive_into_the_wrist_limit(arm, timeout_s: float = 8.0) -> None:
    """Turn the TCP about its z axis (joint 7) toward the joint limit until a reflex fires."""
    deadline = time.monotonic() + timeout_s
    while not arm.reflexes:
        assert time.monotonic() < deadline, "no reflex fired"
        arm.command(shifted(arm.read_state(), yaw_rad=0.3))
        arm.sync(PERIOD_S)


def test_a_joint_limit_reflex_is_reported_and_recovered(fr3):
    with fr3(gain_set="precise") as arm:
        arm.reset(NEAR_WRIST_LIMIT_RAD)
        drive_into_the_wrist_limit(arm)
        reflex = arm.reflexes[0]
        assert set(reflex.errors) & LIMIT_REFLEXES and reflex.recovered, reflex
        wait_for(lambda: arm.fault is None and arm.holding, timeout_s=2.0)
        state = arm.read_state()
        arm.command(shifted(state, yaw_rad=-0.2))  # control is back: turn away from the limit
        arm.sync(0.5)
        assert arm.read_state().joint_pos_rad[6] < state.joint_pos_rad[6]
        arm.reset()


def test_reflex_recoveries_are_bounded(fr3):
    with fr3(gain_set="precise", max_reflex_recoveries=0) as arm:
        arm.reset(NEAR_WRIST_LIMIT_RAD)
        with pytest.raises(Fr3ReflexError, match=r"reflex \['\w+'.*after 0 automatic recoveries.*max_reflex_recoveries=0"):
            drive_into_the_wrist_limit(arm)
        assert arm.reflexes and not arm.reflexes[-1].recovered
    with fr3() as arm:  # a new connection recovers the robot
        arm.reset()


def test_a_killed_server_is_reported_within_about_a_second_and_the_backend_stays_safe(fr3, franka_sim):
    with fr3() as arm:
        arm.reset()
        arm.command(shifted(arm.read_state(), [0.0, 0.03, 0.0]))
        franka_sim.kill()
        noticed_s = wait_for(lambda: isinstance(arm.fault, Fr3ConnectionLost), timeout_s=3.0)
        assert noticed_s < 1.6, (noticed_s, arm.fault, arm.reflexes)
        with pytest.raises(Fr3ConnectionLost, match="stopped answering"):
            arm.command(ArmTarget(np.array([0.5, 0.0, 0.3]), np.array([0.0, 1.0, 0.0, 0.0]), 0.0))
        arm.stop()  # the safe state needs nothing sent: stop() must not raise or hang
        assert arm.holding
        closing = time.monotonic()
    assert time.monotonic() - closing < 3.0
    franka_sim.start()
