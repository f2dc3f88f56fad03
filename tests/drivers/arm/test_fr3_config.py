"""The FR3 rig file, the backend's safety functions and motion helpers, and its registration:
everything that needs no robot."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from drivers.arm import fr3_constants as fr3
from drivers.arm.fr3 import Fr3Arm, make_backend
from drivers.arm.fr3_config import DEFAULT_GAINS, Fr3Config, Fr3RigError, GainSet, load_fr3_rig
from drivers.arm.fr3_faults import FaultLatch
from drivers.arm.fr3_motions import ResetStalled, call_with_deadline, is_network_error, min_jerk, reset_duration_s
from drivers.arm.fr3_safety import Fr3ReflexError, Fr3SafetyStop, Reflex, TcpFrame, reflex_names
from drivers.arm.safety import limit_target, speed_violation, wrench_violation
from robot_rl import registry
from robot_rl.backends.arm import ArmState, ArmTarget

RIG = """
[cameras.front]          # another driver's table: ignored here
kind = "opencv"

[arm.fr3]
host = "172.16.0.2"
reported_ee_frame = "tcp"
reset_joint_pos_rad = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
workspace_low_m = [0.3, -0.2, 0.05]
workspace_high_m = [0.6, 0.2, 0.4]
gain_set = "precise"

[arm.fr3.gains.precise]
stiffness_pos_n_m = 2500.0
stiffness_rot_nm_rad = 120.0
clip_pos_m = 0.008
clip_rot_rad = 0.05
"""


def write_rig(tmp_path, text: str):
    path = tmp_path / "arm.toml"
    path.write_text(text)
    return path


def test_a_rig_file_loads_with_its_gains_and_overrides(tmp_path):
    config = load_fr3_rig(write_rig(tmp_path, RIG), max_external_force_n=20.0)
    assert config.host == "172.16.0.2" and config.gain_set == "precise" and config.max_external_force_n == 20.0
    assert config.gains["precise"] == GainSet(2500.0, 120.0, 0.008, 0.05)
    assert config.gains["compliant"] == DEFAULT_GAINS["compliant"]
    assert config.rig == str(tmp_path / "arm.toml")
    backend = Fr3Arm(config)  # nothing opened: the spec is known without a robot
    assert not backend.connected and backend.spec.dof == 7
    np.testing.assert_array_equal(backend.spec.workspace_low_m, [0.3, -0.2, 0.05])
    np.testing.assert_array_equal(backend.spec.joint_limits_rad, fr3.JOINT_LIMITS_RAD)
    with pytest.raises(RuntimeError, match="not connected"):
        backend.read_state()
    with pytest.raises(ValueError, match="inside the limits"):  # bad input is named before anything moves
        backend.reset(np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 3.5]))
    with pytest.raises(ValueError, match="7 finite"):
        backend.reset(np.zeros(6))


def rig_with(line: str) -> str:
    """RIG with ``line`` replacing its field of the same name (or appended, for a table)."""
    if line.startswith("["):
        return RIG + line + "\n"
    key = line.split("=")[0].strip()
    kept = [row for row in RIG.splitlines() if row.split("=")[0].strip() != key]
    at = kept.index("[arm.fr3]") + 1
    return "\n".join(kept[:at] + [line] + kept[at:]) + "\n"


@pytest.mark.parametrize("line, message", [
    ("bogus = 1", "unknown field"),
    ('host = ""', "host"),
    ('reported_ee_frame = "wrist"', "reported_ee_frame"),
    ("reset_joint_pos_rad = [0.0, -0.785, 0.0, -2.356, 0.0, 0.0, 0.785]", r"joints \[6\]"),
    ("workspace_high_m = [0.2, 0.2, 0.4]", "workspace_low_m"),
    ("max_step_m = -0.1", "max_step_m"),
    ("max_torque_rate_nm_s = 0.0", "max_torque_rate_nm_s"),
    ('gain_set = "stiff"', "gain_set"),
    ("[arm.fr3.gains.wild]\nstiffness_pos_n_m = 9000.0\nstiffness_rot_nm_rad = 50.0\nclip_pos_m = 0.01\nclip_rot_rad = 0.1",
     r"gains.wild.*stiffness_pos_n_m"),
])
def test_bad_rig_fields_are_errors_naming_the_file_and_field(tmp_path, line, message):
    with pytest.raises(Fr3RigError, match=message) as err:
        load_fr3_rig(write_rig(tmp_path, rig_with(line)))
    assert "arm.toml" in str(err.value)


def test_a_rig_without_the_table_or_with_bad_toml_is_an_error(tmp_path):
    with pytest.raises(Fr3RigError, match=r"no \[arm.fr3\] table"):
        load_fr3_rig(write_rig(tmp_path, "[arm.ur]\nhost = 'x'\n"))
    with pytest.raises(Fr3RigError, match="not valid TOML"):
        load_fr3_rig(write_rig(tmp_path, "[arm.fr3\n"))
    with pytest.raises(Fr3RigError, match="cannot read the rig file"):
        load_fr3_rig(tmp_path / "missing.toml")


def test_an_unsupported_gripper_is_not_implemented():
    with pytest.raises(NotImplementedError, match="robotiq"):
        Fr3Config(host="172.16.0.2", gripper="robotiq_2f")


def test_the_backend_is_registered_and_made_from_a_rig_without_connecting(tmp_path):
    rig = str(write_rig(tmp_path, RIG))
    task, entry, options, _ = registry.make_parts("pick_cube", "fr3", "state", {"rig": rig, "watchdog_s": 0.1})
    assert (entry.family, entry.name) == ("arm", "fr3")
    backend = registry.load(entry.entry_point)(task, "state", **options)
    assert isinstance(backend, Fr3Arm) and backend.config.watchdog_s == 0.1 and not backend.connected
    with pytest.raises(NotImplementedError, match="pixel"):
        make_backend(task, "pixels", rig=rig)


def state_at(pos_m) -> ArmState:
    zeros = np.zeros(3)
    return ArmState(time_s=0.0, tcp_pos_m=np.asarray(pos_m, dtype=np.float64), tcp_quat_wxyz=np.array([0.0, 1.0, 0.0, 0.0]),
                    tcp_linvel_m_s=zeros, tcp_angvel_rad_s=zeros, joint_pos_rad=np.zeros(7), joint_vel_rad_s=np.zeros(7),
                    gripper_width_m=0.0, ext_wrench_n_nm=np.zeros(6))


def test_targets_are_limited_by_box_step_and_speed():
    spec = Fr3Arm(Fr3Config(host="x")).spec
    state = state_at([0.5, 0.0, 0.3])
    far = ArmTarget(tcp_pos_m=np.array([0.5, 0.0, 2.0]), tcp_quat_wxyz=np.array([0.0, 1.0, 0.0, 0.0]), gripper_width_m=1.0)
    sent = limit_target(far, spec, state, max_speed_m_s=0.5, elapsed_s=1.0)  # the step limit binds
    np.testing.assert_allclose(sent.tcp_pos_m, [0.5, 0.0, 0.3 + spec.max_step_m])
    sent = limit_target(far, spec, state, max_speed_m_s=0.5, elapsed_s=0.02)  # the speed limit binds: 1 cm
    np.testing.assert_allclose(sent.tcp_pos_m, [0.5, 0.0, 0.31])
    assert sent.gripper_width_m == fr3.HAND_MAX_WIDTH_M
    high = limit_target(far, spec, state_at([0.5, 0.0, 0.59]), max_speed_m_s=0.5, elapsed_s=1.0)
    assert high.tcp_pos_m[2] == spec.workspace_high_m[2]  # the box binds
    with pytest.raises(ValueError, match="finite"):
        limit_target(ArmTarget(np.array([np.nan, 0, 0]), np.array([1.0, 0, 0, 0]), 0.0), spec, state, 0.5, 0.1)


def test_wrench_and_speed_limits_report_what_and_how_much():
    assert wrench_violation(np.array([3.0, 4.0, 0, 0, 0, 0]), 10.0, 5.0) is None
    assert "12.0 N" in wrench_violation(np.array([0, 12.0, 0, 0, 0, 0]), 10.0, 5.0)
    assert "6.0 Nm" in wrench_violation(np.array([0, 0, 0, 6.0, 0, 0]), 10.0, 5.0)
    assert speed_violation(np.array([0.1, 0, 0]), 0.5) is None
    assert "0.60 m/s" in speed_violation(np.array([0.6, 0, 0]), 0.5)


def test_reflex_names_come_from_libfrankas_message():
    message = ('libfranka: Move command aborted: motion aborted by reflex! ["joint_velocity_violation", '
               '"cartesian_reflex"]\ncontrol_command_success_rate: 1')
    assert reflex_names(message) == ("joint_velocity_violation", "cartesian_reflex")
    assert reflex_names("libfranka: Move command preempted!") == ()


def test_reflexes_from_frankys_own_exceptions_are_named_recovered_and_bounded():
    """franka-sim emulates no contact reflex (``cartesian_reflex``, ``joint_reflex``) nor
    ``power_limit_violation``: the backend's fault latch is checked over franky's real exception types."""
    franky = pytest.importorskip("franky", reason='franky-control is not installed: pip install -e ".[arm]"')
    latch = FaultLatch(max_recoveries=1, clock=lambda: 12.5)
    contact = franky.ControlException('libfranka: Move command aborted: motion aborted by reflex! '
                                      '["cartesian_reflex", "joint_reflex"]\ncontrol_command_success_rate: 1')
    assert latch.record_reflex(contact) == ("cartesian_reflex", "joint_reflex")
    assert latch.reflexes == [Reflex(("cartesian_reflex", "joint_reflex"), str(contact).splitlines()[0], 12.5, True)]
    assert latch.fault is None and latch.recoverable and latch.recoveries == 1
    power = franky.ControlException('libfranka: Move command aborted: motion aborted by reflex! ["power_limit_violation"]')
    with pytest.raises(Fr3ReflexError, match=r"\['power_limit_violation'\] after 1 automatic recoveries"):
        latch.record_reflex(power)
    assert isinstance(latch.fault, Fr3ReflexError) and latch.event.is_set() and not latch.recoverable
    assert not latch.reflexes[-1].recovered
    latch.set(Fr3SafetyStop("a later force stop"))  # never hides the spent recoveries
    assert isinstance(latch.fault, Fr3ReflexError)
    assert FaultLatch(3, lambda: 0.0).record_reflex(ResetStalled("joint 4 lags")) == ("reset_stalled",)
    assert FaultLatch(3, lambda: 0.0).record_reflex(franky.ControlException("libfranka: Move command preempted!")) == (
        "unknown",)
    assert is_network_error(franky, franky.NetworkException("libfranka: UDP receive: Timeout"))
    assert not is_network_error(franky, contact)


@pytest.mark.parametrize("reported", ["tcp", "flange", "link7"])
def test_tcp_frames_round_trip(reported):
    frame = TcpFrame.from_reported(reported)
    quat = np.array([0.3, 0.9, -0.2, 0.25]) / np.linalg.norm([0.3, 0.9, -0.2, 0.25])
    pos, tcp_quat = frame.tcp_from_ee(np.array([0.4, 0.1, 0.5]), quat)
    back_pos, back_quat = frame.ee_from_tcp(pos, tcp_quat)
    np.testing.assert_allclose(back_pos, [0.4, 0.1, 0.5], atol=1e-12)
    assert abs(abs(np.dot(back_quat, quat)) - 1.0) < 1e-12
    down = np.array([0.0, 1.0, 0.0, 0.0])  # z axis pointing down: the TCP is below the reported frame
    offset = {"tcp": 0.0, "flange": 0.1034, "link7": 0.2104}[reported]
    np.testing.assert_allclose(frame.tcp_from_ee(np.zeros(3), down)[0], [0.0, 0.0, -offset], atol=1e-12)


def test_the_reset_path_is_minimum_jerk_within_the_speed_fraction():
    q0, q1 = np.zeros(7), np.array([0.5, -0.3, 0.2, -1.0, 0.4, 1.0, -2.0])
    duration = reset_duration_s(q0, q1, 0.2)
    phases = np.linspace(0.0, 1.0, 201)
    velocities = np.array([min_jerk(q0, q1, s, duration)[1] for s in phases])
    assert np.all(np.abs(velocities) <= 0.2 * fr3.JOINT_VELOCITY_LIMITS_RAD_S + 1e-9)
    np.testing.assert_allclose(min_jerk(q0, q1, 1.0, duration)[0], q1)
    np.testing.assert_allclose(velocities[[0, -1]], 0.0, atol=1e-12)


def test_a_native_call_that_never_returns_times_out_with_a_reason():
    with pytest.raises(TimeoutError, match="another client"):
        call_with_deadline(threading.Event().wait, 0.05, "connecting to the FR3 at 127.0.0.1")
    assert call_with_deadline(lambda: 7, 1.0, "x") == 7
    with pytest.raises(KeyError):
        call_with_deadline(lambda: {}["missing"], 1.0, "x")
