"""The Panda (FER) backend over panda-python, against fakes at the library boundary
(``panda_py_fakes.py``, checked against the installed library here): the arm contract, every
safety limit, reflex reports and bounded recovery, the Franka Hand, the rig file, registration."""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import pytest

from drivers.arm import panda
from drivers.arm.fr3_config import DEFAULT_GAINS, GainSet
from drivers.arm.fr3_safety import Fr3ConnectionLost, Fr3Error, Fr3ReflexError, Fr3SafetyStop
from drivers.arm.panda_py_backend import PandaPyArm, make_backend
from drivers.arm.panda_py_config import PandaConfig, PandaRigError, load_panda_rig
from drivers.arm.panda_py_hand import PandaPyHand
from drivers.arm.panda_py_motion import control_error_kind, pose_from_o_t_ee, reference_toward, tcp_twist
from robot_rl import registry
from robot_rl.backends.arm import ArmTarget
from robot_rl.backends.gripper import Gripper
from robot_rl.testing.arm_backend import check_arm_backend
from robot_rl.testing.library_fakes import check_fake_matches, library_overloads

panda_py = pytest.importorskip("panda_py", reason='panda-python is not installed: pip install -e ".[panda]" -c constraints.txt')
from panda_py import controllers, libfranka  # noqa: E402
from panda_py_fakes import (  # noqa: E402
    FakeCartesianImpedance, FakeGripper, FakeGripperState, FakePanda, FakePandaRig, FakeRobotState, reflex_message,
)

WAIT_S = 3.0  # every wait on the backend's threads has this deadline


@pytest.fixture
def rig():
    return FakePandaRig()


@pytest.fixture
def arm(rig):
    """``arm(**config)``: a connected Panda backend on the fake robot, closed after the test."""
    made = []

    def make(**options) -> PandaPyArm:
        backend = PandaPyArm(PandaConfig(**{"host": "172.16.0.2", **options}), library=rig.library)
        made.append(backend)
        backend.connect()
        return backend

    yield make
    for backend in made:
        backend.close()


def toward(state, offset_m, width_m: float = 0.08) -> ArmTarget:
    return ArmTarget(state.tcp_pos_m + np.asarray(offset_m, dtype=np.float64), state.tcp_quat_wxyz, width_m)


def test_the_fakes_match_the_installed_panda_python():
    assert set(check_fake_matches(FakePanda, panda_py.Panda)) >= {"get_state", "start_controller", "raise_error", "recover"}
    assert check_fake_matches(FakeCartesianImpedance, controllers.CartesianImpedance) == [
        "set_control", "set_impedance", "set_damping_ratio"]
    assert check_fake_matches(FakeGripper, libfranka.Gripper) == ["move", "read_once", "homing", "stop"]
    for fake, real in ((FakePanda, panda_py.Panda), (FakeCartesianImpedance, controllers.CartesianImpedance),
                       (FakeGripper, libfranka.Gripper)):
        assert library_overloads(fake, "__init__")[0] in library_overloads(real, "__init__"), fake.__name__
    for fake, real in ((FakeRobotState, libfranka.RobotState), (FakeGripperState, libfranka.GripperState)):
        assert all(hasattr(real, field.name) for field in dataclasses.fields(fake)), fake.__name__


def test_the_panda_backend_passes_the_arm_checks(rig):
    check_arm_backend(PandaPyArm(PandaConfig(host="172.16.0.2"), library=rig.library))
    assert rig.panda.moves and not rig.panda.is_moving()  # reset ran panda-python's joint motion; close stopped control


def test_references_travel_at_the_speed_limit_and_stay_clipped_around_the_tcp(arm, rig):
    backend = arm(max_tcp_speed_m_s=0.2)
    start = backend.reset()
    goal = toward(start, [0.0, 0.04, -0.02])
    controller = rig.panda.fake_controller()
    first = len(controller.sent)
    started_s = time.monotonic()
    while np.linalg.norm(backend.read_state().tcp_pos_m - goal.tcp_pos_m) > 0.002 and time.monotonic() < started_s + WAIT_S:
        sent = backend.command(goal)
        np.testing.assert_allclose(sent.tcp_pos_m, goal.tcp_pos_m)  # inside every limit: the goal is kept
        backend.sync(0.02)
    took_s = time.monotonic() - started_s
    assert np.linalg.norm(backend.read_state().tcp_pos_m - goal.tcp_pos_m) <= 0.002, "the arm never reached the goal"
    assert took_s >= 0.0447 / 0.2, f"4.5 cm in {took_s:.3f} s: faster than 0.2 m/s"
    references = controller.sent[first - 1:]
    for (t0, p0, _), (t1, p1, _) in zip(references, references[1:]):  # stamped when received: allow 20 ms of jitter
        assert np.linalg.norm(p1 - p0) <= 0.2 * (t1 - t0 + 0.02) + 1e-9, "the reference outran the speed limit"
    gains = DEFAULT_GAINS["compliant"]
    far = reference_toward(np.array([1.0, 0.0, 0.0]), start.tcp_quat_wxyz, np.zeros(3), 10.0, np.zeros(3),
                           start.tcp_quat_wxyz, gains)[0]
    np.testing.assert_allclose(far, [gains.clip_pos_m, 0.0, 0.0])  # clipped around the measured TCP
    slow = reference_toward(np.array([1.0, 0.0, 0.0]), start.tcp_quat_wxyz, np.zeros(3), 0.001, np.zeros(3),
                            start.tcp_quat_wxyz, gains)[0]
    np.testing.assert_allclose(slow, [0.001, 0.0, 0.0])  # the reference's travel is speed-limited


def test_gain_sets_switch_the_running_controller(arm, rig):
    backend = arm(gain_set="precise")
    backend.reset()
    controller = rig.panda.fake_controller()
    assert controller.impedance[0, 0] == DEFAULT_GAINS["precise"].stiffness_pos_n_m
    backend.set_gains("compliant")
    np.testing.assert_array_equal(np.diag(controller.impedance), [400.0] * 3 + [30.0] * 3)
    assert rig.panda.fake_controller() is controller  # switched live, no restart
    with pytest.raises(ValueError, match="unknown gain set 'stiff'"):
        backend.set_gains("stiff")


def test_the_watchdog_holds_the_pose_200_ms_after_the_last_command(arm):
    backend = arm(max_tcp_speed_m_s=0.1)  # the reference needs 0.5 s to reach the goal
    state = backend.reset()
    far = toward(state, [0.0, 0.0, -0.05])
    sent_s = time.monotonic()
    backend.command(far)
    assert not backend.holding
    assert backend.hold_event.wait(WAIT_S), "the watchdog never held the pose"
    held_after_s = time.monotonic() - sent_s
    assert 0.2 <= held_after_s < 0.2 + 0.25, f"held {held_after_s * 1e3:.0f} ms after the last command"
    held = backend.read_state().tcp_pos_m
    backend.sync(0.2)
    backend.sync(0.2)
    assert np.linalg.norm(backend.read_state().tcp_pos_m - held) < 0.01
    assert np.linalg.norm(backend.read_state().tcp_pos_m - far.tcp_pos_m) > 0.01, "the arm went on to the stale goal"


def test_an_external_force_stops_the_arm_and_is_reported_until_reset(arm, rig):
    backend = arm(max_external_force_n=25.0)
    state = backend.reset()
    backend.command(toward(state, [0.0, 0.02, 0.0]))
    rig.panda.fake_push([0.0, 0.0, 40.0])
    assert backend.fault_event.wait(WAIT_S)
    assert isinstance(backend.fault, Fr3SafetyStop) and backend.holding
    with pytest.raises(Fr3SafetyStop, match=r"external wrench 40.0 N / 0.0 Nm exceeds the limit 25.0 N"):
        backend.command(toward(state, [0.0, 0.02, 0.0]))
    rig.panda.fake_push([0.0, 0.0, 0.0])
    backend.reset()
    assert backend.fault is None
    backend.command(toward(backend.read_state(), [0.0, 0.01, 0.0]))


def test_a_measured_speed_over_the_limit_stops_the_arm(arm):
    backend = arm(max_measured_tcp_speed_m_s=0.05)
    state = backend.reset()
    backend.command(toward(state, [0.0, 0.0, -0.04]))
    assert backend.fault_event.wait(WAIT_S)
    assert isinstance(backend.fault, Fr3SafetyStop) and "measured TCP speed" in str(backend.fault)


def test_a_reflex_is_reported_by_name_and_recovered(arm, rig):
    backend = arm()
    state = backend.reset()
    backend.command(toward(state, [0.0, 0.02, 0.0]))
    rig.panda.fake_reflex(("cartesian_reflex", "joint_velocity_violation"))
    assert backend.hold_event.wait(WAIT_S), "no recovery after the reflex"
    (reflex,) = backend.reflexes
    assert reflex.errors == ("cartesian_reflex", "joint_velocity_violation") and reflex.recovered
    assert "aborted by reflex" in reflex.message and rig.panda.recoveries == 1 and backend.fault is None
    assert rig.panda.is_moving()  # impedance control resumed, holding the pose
    goal = toward(backend.read_state(), [0.0, -0.02, 0.0])
    for _ in range(20):
        backend.command(goal)
        backend.sync(0.02)
    assert np.linalg.norm(backend.read_state().tcp_pos_m - goal.tcp_pos_m) < 0.005


def test_reflex_recovery_is_bounded(arm, rig):
    backend = arm(max_reflex_recoveries=1)
    state = backend.reset()
    backend.command(toward(state, [0.0, 0.01, 0.0]))
    rig.panda.fake_reflex(("joint_reflex",))
    assert backend.hold_event.wait(WAIT_S)  # recovered: holds the pose
    backend.command(toward(state, [0.0, 0.01, 0.0]))
    rig.panda.fake_reflex(("cartesian_reflex",))
    assert backend.fault_event.wait(WAIT_S)
    assert isinstance(backend.fault, Fr3ReflexError)
    assert "['cartesian_reflex'] after 1 automatic recoveries" in str(backend.fault)
    assert [r.recovered for r in backend.reflexes] == [True, False] and rig.panda.recoveries == 1
    with pytest.raises(Fr3ReflexError):
        backend.command(toward(state, [0.0, 0.01, 0.0]))
    with pytest.raises(Fr3ReflexError):
        backend.reset()


def test_a_rejected_recovery_is_a_fault_that_reset_clears(arm, rig):
    backend = arm()
    state = backend.reset()
    backend.command(toward(state, [0.0, 0.01, 0.0]))
    rig.panda.fake_refuse_recoveries(1)
    rig.panda.fake_reflex(("power_limit_violation",))
    assert backend.fault_event.wait(WAIT_S)
    assert type(backend.fault) is Fr3Error and "automatic error recovery failed" in str(backend.fault)
    assert "command rejected" in str(backend.fault)
    backend.reset()
    assert backend.fault is None and rig.panda.is_moving()


def test_a_reflex_during_reset_is_recovered_and_the_motion_retried(arm, rig):
    backend = arm()
    rig.panda.fake_reflex_on_next_move(("joint_position_limits_violation",))
    state = backend.reset()
    np.testing.assert_allclose(state.joint_pos_rad, panda.READY_JOINT_POS_RAD, atol=1e-6)
    assert len(rig.panda.moves) == 2 and [r.errors for r in backend.reflexes] == [("joint_position_limits_violation",)]


def test_a_lost_link_is_reported_and_close_is_safe_twice(arm, rig):
    backend = arm()
    state = backend.reset()
    backend.command(toward(state, [0.0, 0.01, 0.0]))
    rig.panda.fake_disconnect()
    assert backend.fault_event.wait(WAIT_S)
    assert isinstance(backend.fault, Fr3ConnectionLost) and "UDP receive: Timeout" in str(backend.fault)
    with pytest.raises(Fr3ConnectionLost):
        backend.command(toward(state, [0.0, 0.01, 0.0]))
    with pytest.raises(Fr3ConnectionLost):
        backend.reset()
    backend.stop()  # nothing to send: the robot stopped itself
    backend.close()
    backend.close()
    assert not backend.connected


def test_connect_failures_and_calls_before_connect_are_clear(rig):
    backend = PandaPyArm(PandaConfig(host="172.16.0.2"), library=rig.library)
    with pytest.raises(RuntimeError, match="not connected"):
        backend.read_state()
    backend.close()  # before connect: nothing to do

    def refused():
        raise ImportError("no panda_py here")

    with pytest.raises(ImportError, match="no panda_py"):
        PandaPyArm(PandaConfig(host="172.16.0.2"), library=refused).connect()
    with pytest.raises(ValueError, match="inside the limits"):  # Panda joint 6 stops at 3.7525 rad (the FR3's at 4.5)
        backend.reset(np.array([0.0, -0.785, 0.0, -2.356, 0.0, 4.0, 0.785]))
    real = PandaPyArm(PandaConfig(host="127.0.0.2", realtime="ignore", connect_timeout_s=5.0))  # the installed library
    with pytest.raises(RuntimeError, match="libfranka: Connection to FCI refused"):  # nothing listens there
        real.connect()
    assert not real.connected


def test_the_franka_hand_moves_without_blocking_and_stops(rig):
    hand = PandaPyHand("172.16.0.2", rig.library().Gripper, speed_m_s=0.1)
    assert isinstance(hand, Gripper) and not hand.connected
    hand.connect()
    try:
        assert hand.command_width(0.5) == 0.08 and hand.wait_idle(WAIT_S)
        started = time.monotonic()
        assert hand.command_width(0.03) == 0.03
        assert time.monotonic() - started < 0.25  # the 0.5 s move runs in the worker
        assert hand.wait_idle(WAIT_S) and hand.read_width() == pytest.approx(0.03)
        rig.gripper.fake_hold_object(0.02)
        hand.command_width(0.0)
        assert hand.wait_idle(WAIT_S) and hand.read_width() == pytest.approx(0.02) and hand.short_moves == 1
        hand.command_width(0.08)
        hand.stop()
        assert hand.wait_idle(WAIT_S) and hand.read_width() < 0.08
    finally:
        hand.close()
        hand.close()
    assert rig.gripper.moves[:2] == [0.08, 0.03]


def test_the_backend_reports_the_hand_width(arm, rig):
    backend = arm(gripper_speed_m_s=0.2)
    state = backend.reset()
    backend.command(toward(state, [0.0, 0.0, 0.0], width_m=0.05))
    assert backend._hand.wait_idle(WAIT_S)
    assert backend.read_state().gripper_width_m == pytest.approx(0.05)
    assert arm(gripper="none").spec.gripper_max_width_m == 0.0


RIG = """
[arm.fr3]                # another robot's table: ignored here
host = "172.16.0.9"

[arm.panda]
host = "172.16.0.2"
workspace_low_m = [0.3, -0.2, 0.05]
workspace_high_m = [0.6, 0.2, 0.4]
gain_set = "precise"
damping_ratio = 0.9

[arm.panda.gains.precise]
stiffness_pos_n_m = 2500.0
stiffness_rot_nm_rad = 120.0
clip_pos_m = 0.008
clip_rot_rad = 0.05
"""


def test_a_rig_file_loads_and_bad_tables_are_named(tmp_path):
    path = tmp_path / "arm.toml"
    path.write_text(RIG)
    config = load_panda_rig(path, watchdog_s=0.1)
    assert (config.host, config.gain_set, config.damping_ratio, config.watchdog_s) == ("172.16.0.2", "precise", 0.9, 0.1)
    assert config.gains["precise"] == GainSet(2500.0, 120.0, 0.008, 0.05) and config.rig == str(path)
    np.testing.assert_array_equal(PandaPyArm(config).spec.joint_limits_rad, panda.JOINT_LIMITS_RAD)
    for line, match in (("bogus = 1", r"unknown field\(s\) \['bogus'\]"),
                        ("reset_joint_pos_rad = [0.0, -0.785, 0.0, -2.356, 0.0, 4.0, 0.785]", "outside the Panda joint limits"),
                        ("filter_coeff = 0.0", r"PandaConfig.filter_coeff must be in \(0.0, 1.0\]"),
                        ("max_external_force_n = -1.0", "max_external_force_n")):
        path.write_text(RIG.replace('damping_ratio = 0.9', line))
        with pytest.raises(PandaRigError, match=match):
            load_panda_rig(path)
    path.write_text("[arm.fr3]\nhost = 'x'\n")
    with pytest.raises(PandaRigError, match=r"no \[arm.panda\] table"):
        load_panda_rig(path)
    with pytest.raises(ValueError, match=r"host must name .*\[arm.panda\]"):
        PandaConfig()


def test_the_backend_is_registered_and_made_from_a_rig(tmp_path):
    path = tmp_path / "arm.toml"
    path.write_text(RIG)
    task, entry, options, _ = registry.make_parts("pick_cube", "panda", "state", {"rig": str(path)})
    assert (entry.family, entry.name) == ("arm", "panda")
    backend = registry.load(entry.entry_point)(task, "state", **options)
    assert isinstance(backend, PandaPyArm) and backend.config.gain_set == "precise" and not backend.connected
    with pytest.raises(NotImplementedError, match="state observations"):
        make_backend(task, "pixels", rig=str(path))


def test_state_conversions_use_the_column_major_pose_and_the_measured_joint_speeds():
    q = np.array(panda.READY_JOINT_POS_RAD)
    pose = panda_py.fk(q)
    pos, quat = pose_from_o_t_ee(tuple(pose.ravel(order="F")))
    np.testing.assert_allclose(pos, [0.3069, 0.0, 0.4873], atol=1e-3)
    np.testing.assert_allclose(np.abs(quat), [0.0, 1.0, 0.0, 0.0], atol=1e-9)  # pointing down
    dq = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])  # joint 7 turns the hand about the vertical
    linvel, angvel = tcp_twist(panda_py.fk, q, dq)
    np.testing.assert_allclose(linvel, 0.0, atol=1e-6)
    np.testing.assert_allclose(angvel, [0.0, 0.0, -1.0], atol=1e-6)
    assert control_error_kind(reflex_message(("cartesian_reflex",))) == "reflex"
    assert control_error_kind("libfranka: UDP receive: Timeout") == "network"


@pytest.mark.hardware
def test_a_real_panda_passes_the_arm_checks():
    """``ROBOT_RL_HARDWARE=1 ROBOT_RL_PANDA_RIG=rig.toml pytest -m hardware``: the arm moves a few
    centimetres around the rig's reset pose; keep the workspace clear."""
    rig = os.environ.get("ROBOT_RL_PANDA_RIG")
    if not rig:
        pytest.skip("set ROBOT_RL_PANDA_RIG to the robot's rig file ([arm.panda] table; a Panda/FER on system image < 5)")
    check_arm_backend(PandaPyArm(load_panda_rig(rig)))
