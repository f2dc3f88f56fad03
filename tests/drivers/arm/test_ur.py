"""The UR backend over fakes of ur_rtde's two interfaces (tests/drivers/arm/ur_fakes.py), whose
signatures are checked against the installed ur_rtde: the arm contract checks, every safety limit,
faults named, the rig file, the kinematics."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest
from ur_fakes import FakeClock, FakeControl, FakeGripper, FakeReceive, FakeUr

from drivers.arm import ur_constants as ur
from drivers.arm.ur import UrArm
from drivers.arm.ur_config import UrConfig, UrRigError, load_ur_rig
from drivers.arm.ur_safety import (
    UrConnectionLost,
    UrError,
    UrRobotStopped,
    UrSafetyStop,
    robot_stop_message,
)
from robot_rl import registry
from robot_rl.backends.arm import ArmTarget
from robot_rl.testing.arm_backend import check_arm_backend
from robot_rl.testing.library_fakes import check_fake_matches

WAIT_S = 5.0  # bound on every wait for the stream thread (it acts within a few ms; a loaded CI machine stalls it ~1 s)
# On the wall clock, the robot-side script watchdog trips only after this long a stall (a loaded 2-core
# machine stalls a process for up to ~1 s, measured): the 10 Hz default is tested on a FakeClock below.
LOADED_SCRIPT_WATCHDOG_HZ = 0.25


def _config(**fields) -> UrConfig:
    return UrConfig(**{"host": "192.0.2.10", "script_watchdog_hz": LOADED_SCRIPT_WATCHDOG_HZ, **fields})


@pytest.fixture
def robot():
    return FakeUr()


@pytest.fixture
def make_arm(robot):
    """``make_arm(gripper=None, **config)``: a connected, reset UR backend on the fake robot, closed after the test."""
    made = []

    def make(gripper=None, **config) -> UrArm:
        arm = UrArm(_config(**config), gripper=gripper, library=robot.fake_library)
        made.append(arm)
        arm.connect()
        arm.reset()
        return arm

    yield make
    for arm in made:
        arm.close()


def _offset_target(arm: UrArm, offset_m) -> ArmTarget:
    state = arm.read_state()
    return ArmTarget(state.tcp_pos_m + np.asarray(offset_m), state.tcp_quat_wxyz, 0.0)


def test_fakes_take_the_calls_ur_rtde_takes():
    rtde_control = pytest.importorskip("rtde_control", reason='ur_rtde is not installed: pip install -e ".[ur]"')
    rtde_receive = pytest.importorskip("rtde_receive")
    assert "servoL" in check_fake_matches(FakeControl, rtde_control.RTDEControlInterface)
    assert "getActualTCPForce" in check_fake_matches(FakeReceive, rtde_receive.RTDEReceiveInterface)


@pytest.mark.parametrize("name", sorted(ur.MODELS))
def test_dh_kinematics_at_zero_is_the_published_pose(name):
    # All joints at zero: the arm lies stretched along -x; the flange at (a2 + a3, -(d4 + d6), d1 - d5),
    # its z axis along -y (UR's DH convention).
    model = ur.MODELS[name]
    d, a = model.d_m, model.a_m
    flange = ur.flange_transform(model, np.zeros(6))
    np.testing.assert_allclose(flange[:3, 3], [a[1] + a[2], -(d[3] + d[5]), d[0] - d[4]], atol=1e-12)
    np.testing.assert_allclose(flange[:3, :3], [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)
    tool_pos, _ = ur.tcp_pose(model, np.zeros(6), np.array([0.0, 0.0, 0.1, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(tool_pos, flange[:3, 3] + [0.0, -0.1, 0.0], atol=1e-12)


def test_rotation_vector_poses_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        pose = np.concatenate([rng.normal(size=3), rng.normal(size=3)])
        pose[3:] *= min(1.0, 3.0 / np.linalg.norm(pose[3:]))  # angles below pi: the rotation vector is unique
        pos, quat = ur.pose_from_rotvec(pose)
        np.testing.assert_allclose(ur.rotvec_pose(pos, quat), pose, atol=1e-9)
        flange = ur.flange_transform(ur.MODELS["ur5e"], rng.uniform(-3, 3, 6))
        np.testing.assert_allclose(np.abs(ur.mat_to_quat(flange[:3, :3]) @ ur.mat_to_quat(flange[:3, :3])), 1.0)


def test_a_ur_over_the_fakes_passes_the_arm_checks(robot):
    gripper = FakeGripper()
    check_arm_backend(UrArm(_config(), gripper=gripper, library=robot.fake_library))
    assert robot.calls[-1] == "stopScript" and not gripper.connected
    assert robot.servo_log, "the backend never streamed servoL"


def test_without_a_gripper_the_width_is_zero(make_arm):
    arm = make_arm()
    assert arm.spec.gripper_max_width_m == 0.0 and arm.spec.dof == 6
    state = arm.read_state()
    sent = arm.command(ArmTarget(state.tcp_pos_m, state.tcp_quat_wxyz, 0.05))
    assert sent.gripper_width_m == 0.0 and arm.read_state().gripper_width_m == 0.0


def test_targets_are_clipped_to_the_workspace_and_the_step(make_arm, robot):
    arm = make_arm(workspace_high_m=(-0.25, 0.35, 0.36))  # the home TCP is at z = 0.338
    sent = arm.command(_offset_target(arm, [0.0, 0.3, 0.3]))
    start = arm.read_state().tcp_pos_m
    assert sent.tcp_pos_m[2] == pytest.approx(0.36)
    assert np.linalg.norm(sent.tcp_pos_m - start) <= arm.spec.max_step_m + 1e-9
    for _ in range(15):  # keep pushing up and sideways: the TCP stays in the box
        arm.command(_offset_target(arm, [0.0, 0.05, 0.05]))
        arm.sync(0.02)
    assert robot.pos[2] <= 0.36 + 1e-3
    assert max(pose[2] for _, pose in robot.servo_log) <= 0.36 + 1e-9


def _servo_segments(robot: FakeUr, start_m: np.ndarray, start_s: float):
    """The streamed setpoints as ``(times_s, positions_m)`` runs, each from the pose the arm stood at
    (``start_m``, or where a ``servoStop`` left it) to the next ``servoStop``."""
    events = sorted([(t, 0, pose[:3]) for t, pose in robot.servo_log] + [(t, 1, pos) for t, pos in robot.stop_log],
                    key=lambda event: (event[0], event[1]))
    segments, times, points = [], [start_s], [start_m]
    for t, is_stop, pos in events:
        if is_stop:
            segments.append((np.array(times), np.array(points)))
            times, points = [t], [pos]
        else:
            times.append(t)
            points.append(pos)
    return segments + [(np.array(times), np.array(points))]


def test_the_servo_setpoint_moves_at_most_at_the_tcp_speed_limit(make_arm, robot):
    speed_m_s = 0.1
    arm = make_arm(max_tcp_speed_m_s=speed_m_s)
    period_s = 1.0 / arm.config.rtde_hz
    start, start_s = arm.read_state().tcp_pos_m, robot.clock()
    goal = _offset_target(arm, [0.0, 0.04, 0.0])
    deadline = time.monotonic() + 20.0  # a bound only: on a loaded machine the stream's periods come late
    while not (robot.servo_log and np.allclose(robot.servo_log[-1][1][:3], goal.tcp_pos_m, atol=1e-12)):
        assert time.monotonic() < deadline, "the setpoint did not reach the goal"
        arm.command(goal)  # a stall past watchdog_s holds the arm: the setpoint then restarts where it stands
        arm.sync(0.05)
    for times_s, points_m in _servo_segments(robot, start, start_s):
        # each servoL moves the reference at most one period's worth of the limit (a late stream never catches up) ...
        assert np.all(np.linalg.norm(np.diff(points_m, axis=0), axis=1) <= speed_m_s * period_s + 1e-9)
        # ... and never faster than the limit in wall time, however the OS ran the stream: from setpoint i to j
        # at most speed x (t_j - t_(i-1)) (the stream read its clock for setpoint i after setpoint i-1 went out)
        moved_m = np.linalg.norm(points_m[None] - points_m[:, None], axis=-1)  # [i, j]
        since_previous_s = times_s[None] - np.concatenate([times_s[:1], times_s[:-1]])[:, None]
        later = np.triu(np.ones_like(moved_m, dtype=bool), k=1)
        assert np.all(moved_m[later] <= speed_m_s * since_previous_s[later] + 1e-9)
    assert robot.servo_log[-1][0] - start_s >= 0.04 / speed_m_s, "the goal was reached faster than the speed limit allows"


def test_an_external_force_stops_the_arm_and_every_command_raises_until_reset(make_arm, robot):
    arm = make_arm(max_external_force_n=30.0)
    goal = _offset_target(arm, [0.0, 0.03, 0.0])
    arm.command(goal)
    robot.fake_push([0.0, 0.0, -45.0, 0.0, 0.0, 0.0])
    assert arm.fault_event.wait(WAIT_S)
    assert "servoStop" in robot.calls and arm.holding
    for call in (lambda: arm.command(goal), lambda: arm.sync(0.01), lambda: arm.command(goal)):
        with pytest.raises(UrSafetyStop, match=r"external wrench 45.0 N .* exceeds the limit 30.0 N"):
            call()
    robot.fake_push(np.zeros(6))
    arm.reset()
    assert arm.fault is None
    arm.command(goal)


def test_a_measured_speed_over_the_limit_stops_the_arm(make_arm, robot):
    arm = make_arm(max_measured_tcp_speed_m_s=0.5)
    arm.command(_offset_target(arm, [0.0, 0.01, 0.0]))
    robot.fake_report_speed([0.8, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert arm.fault_event.wait(WAIT_S)
    with pytest.raises(UrSafetyStop, match="measured TCP speed 0.80 m/s exceeds the limit 0.50 m/s"):
        arm.command(_offset_target(arm, [0.0, 0.01, 0.0]))


def _advance_kicked(robot: FakeUr, clock: FakeClock, seconds: float, step_s: float = 0.04) -> None:
    """Move robot time by ``seconds`` in steps the stream sees: after each step wait until a command of
    the stream (a kick or a servoL) reached the robot, so its 100 ms script watchdog never trips on a step."""
    for _ in range(round(seconds / step_s)):
        clock.advance(step_s)
        assert robot.fake_wait_for(lambda: robot.kicked_s == clock(), WAIT_S), "the stream stopped feeding the script watchdog"


def test_the_watchdog_holds_the_pose_200_ms_after_the_last_command():
    # Robot and backend share a FakeClock: only the test moves time, so the stream's wall-clock
    # periods (however late the OS runs them) cannot change when the watchdog fires.
    clock = FakeClock()
    robot = FakeUr(clock=clock)
    with UrArm(UrConfig(host="192.0.2.10", script_watchdog_hz=10.0), library=robot.fake_library, clock=clock) as arm:
        arm.reset()
        arm.command(_offset_target(arm, [0.0, 0.02, 0.0]))
        commanded_s = clock()
        _advance_kicked(robot, clock, 0.19, step_s=0.019)
        assert robot.fake_wait_for(lambda: sum(t == clock() for t, _ in robot.servo_log) >= 3, WAIT_S)
        assert not arm.holding and not robot.stop_log, "held before watchdog_s had passed"
        clock.advance(0.02)  # 210 ms after the command
        assert robot.fake_wait_for(lambda: robot.stop_log, WAIT_S), "no servoStop after watchdog_s"
        assert robot.stop_log[0][0] - commanded_s == pytest.approx(0.21) and arm.holding
        # the stream stops servoing at its first period past watchdog_s (one servoL may be in flight as time moves)
        assert sum(t >= clock() for t, _ in robot.servo_log) <= 1
        streamed, held = len(robot.servo_log), robot.pos.copy()
        _advance_kicked(robot, clock, 0.48)  # holding, the stream still feeds ur_rtde's script watchdog (armed at connect)
        assert robot.program_running and robot.watchdog_period_s == pytest.approx(0.1)
        assert len(robot.servo_log) == streamed and np.linalg.norm(robot.pos - held) < 1e-9
        arm.command(_offset_target(arm, [0.0, 0.01, 0.0]))  # the next command moves again
        assert robot.fake_wait_for(lambda: len(robot.servo_log) > streamed, WAIT_S) and not arm.holding


def test_a_stalled_stream_ends_the_robot_script_and_the_fault_says_so():
    clock = FakeClock()
    robot = FakeUr(clock=clock)
    with UrArm(UrConfig(host="192.0.2.10", script_watchdog_hz=10.0, watchdog_s=1.0), library=robot.fake_library,
               clock=clock) as arm:
        arm.reset()  # (the arm stands still: robot time may jump without moving it, so the reset below arrives at once)
        clock.advance(0.15)  # no command reached the robot for 150 ms: its script watchdog (100 ms) ends the script
        assert arm.fault_event.wait(WAIT_S) and not robot.program_running
        with pytest.raises(UrError, match=r"control script on the UR has stopped \(its watchdog .* 100 ms"):
            arm.command(_offset_target(arm, [0.0, 0.01, 0.0]))
        assert arm.holding
        arm.reset()  # uploads the script again and re-arms its watchdog
        assert robot.calls.count("reuploadScript") == 1 and robot.program_running and robot.watchdog_period_s == 0.1
        streamed = len(robot.servo_log)
        arm.command(_offset_target(arm, [0.0, 0.01, 0.0]))
        assert robot.fake_wait_for(lambda: len(robot.servo_log) > streamed, WAIT_S) and arm.fault is None


def test_stop_holds_now_and_the_next_command_moves_again(make_arm, robot):
    gripper = FakeGripper()
    arm = make_arm(gripper=gripper)
    arm.command(_offset_target(arm, [0.0, 0.05, 0.0]))
    arm.stop()
    assert robot.calls[-1] == "servoStop" and arm.holding and gripper.stops == 1
    streamed, kicks = len(robot.servo_log), robot.kicks
    assert robot.fake_wait_for(lambda: robot.kicks >= kicks + 3, WAIT_S)  # the stream ran on ...
    assert len(robot.servo_log) == streamed  # ... without servoing
    arm.command(_offset_target(arm, [0.0, 0.01, 0.0]))
    assert robot.fake_wait_for(lambda: len(robot.servo_log) > streamed, WAIT_S)


@pytest.mark.parametrize("stop, named", [("fake_protective_stop", "protective stop"), ("fake_emergency_stop", "emergency stop")])
def test_a_robot_stop_is_reported_by_name_and_reset_resumes_once_cleared(make_arm, robot, stop, named):
    arm = make_arm()
    arm.command(_offset_target(arm, [0.0, 0.02, 0.0]))
    getattr(robot, stop)()
    assert arm.fault_event.wait(WAIT_S)
    with pytest.raises(UrRobotStopped, match=named):
        arm.command(_offset_target(arm, [0.0, 0.01, 0.0]))
    with pytest.raises(UrRobotStopped, match=named):
        arm.reset()  # still stopped on the robot: software cannot clear it
    robot.fake_clear_stop()
    state = arm.reset()
    assert "reuploadScript" in robot.calls and robot.program_running
    np.testing.assert_allclose(state.joint_pos_rad, arm.spec.home_joint_pos_rad, atol=0.02)
    arm.command(_offset_target(arm, [0.0, 0.01, 0.0]))


def test_every_robot_stop_is_named_and_normal_modes_are_not_stops():
    assert robot_stop_message(1, False, False) is None and robot_stop_message(2, False, False) is None
    assert "SAFEGUARD_STOP" in robot_stop_message(5, False, False)
    assert "ROBOT_EMERGENCY_STOP" in robot_stop_message(7, False, False)
    assert "emergency stop" in robot_stop_message(1, False, True)  # the flag alone is enough
    assert "protective stop" in robot_stop_message(1, True, False)
    assert "unknown safety mode 42" in robot_stop_message(42, False, False)


def test_a_lost_link_is_reported_and_close_still_works(make_arm, robot):
    arm = make_arm()
    robot.fake_cut_link()
    assert arm.fault_event.wait(WAIT_S)
    with pytest.raises(UrConnectionLost, match="link to the UR at 192.0.2.10 is down"):
        arm.sync(0.01)
    with pytest.raises(UrConnectionLost):
        arm.reset()
    arm.close()
    arm.close()
    assert not arm.connected


def test_close_is_safe_twice_and_before_connect(robot):
    arm = UrArm(_config(), library=robot.fake_library)
    arm.close()
    with arm:
        arm.reset()
        arm.command(_offset_target(arm, [0.0, 0.01, 0.0]))
    arm.close()
    assert not arm.connected and robot.calls[-2:] == ["servoStop", "stopScript"]
    with pytest.raises(RuntimeError, match="not connected"):
        arm.read_state()


def test_connect_has_a_deadline_and_fails_cleanly(robot):
    robot.connect_hangs = True
    arm = UrArm(UrConfig(host="192.0.2.10", connect_timeout_s=0.2), library=robot.fake_library)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="RTDE receive from the UR at 192.0.2.10 did not answer within 0.2 s"):
        arm.connect()
    assert time.monotonic() - started < WAIT_S and not arm.connected  # the robot itself never answers
    robot.connect_hangs = False
    robot.connect_released.set()
    robot.connect_error = RuntimeError("Could not connect to: 192.0.2.10 at 30004")
    with pytest.raises(RuntimeError, match="Could not connect"):
        arm.connect()
    assert not arm.connected


def test_connect_rejects_a_rig_that_names_another_model():
    robot = FakeUr(model="ur10e", joint_pos_rad=(0.0, -1.2, 1.5, -1.9, -1.571, 0.0))
    arm = UrArm(UrConfig(host="192.0.2.10", model="ur5e"), library=robot.fake_library)
    with pytest.raises(UrError, match="model='ur5e'.*closest model is 'ur10e'"):
        arm.connect()
    assert not arm.connected


def test_the_rig_file_is_read_and_validated(tmp_path):
    rig = tmp_path / "arm.toml"
    rig.write_text('[arm.ur]\nhost = "10.0.0.5"\nmodel = "ur10e"\nworkspace_low_m = [-1.0, -0.5, 0.1]\n'
                   'workspace_high_m = [-0.3, 0.5, 0.8]\n[cameras.wrist]\nserial = "1"\n')
    config = load_ur_rig(rig, max_external_force_n=20.0)
    assert (config.host, config.model, config.rtde_hz, config.max_external_force_n) == ("10.0.0.5", "ur10e", 500.0, 20.0)
    assert config.workspace_low_m == (-1.0, -0.5, 0.1) and config.rig == str(rig)
    for body, message in [('host = "a"\nlookahead = 0.1', r"unknown field\(s\) \['lookahead'\]"),
                          ('host = "a"\nmodel = "ur7"', "model must be one of"),
                          ('host = "a"\nservo_gain = 5000.0', r"servo_gain must be in \[100.0, 2000.0\]"),
                          ('host = "a"\nworkspace_low_m = [0, 0, 1]\nworkspace_high_m = [1, 1, 0.5]', "must be below"),
                          ('host = "a"\nreset_joint_pos_rad = [0, 0, 0]', "reset_joint_pos_rad must be 6 finite numbers"),
                          ('model = "ur5e"', "host must name the robot")]:
        rig.write_text("[arm.ur]\n" + body + "\n")
        with pytest.raises(UrRigError, match=rf"{rig}: \[arm.ur\]: .*{message}"):
            load_ur_rig(rig)
    rig.write_text("[arm.fr3]\nhost = 'x'\n")
    with pytest.raises(UrRigError, match=r"no \[arm.ur\] table"):
        load_ur_rig(rig)
    rig.write_text("[arm.ur\n")
    with pytest.raises(UrRigError, match="not valid TOML"):
        load_ur_rig(rig)


def test_the_backend_is_registered_for_the_arm_family(tmp_path):
    entry = registry.backends("arm")[("arm", "ur")]
    rig = tmp_path / "arm.toml"
    rig.write_text('[arm.ur]\nhost = "10.0.0.5"\n')
    arm = registry.load(entry.entry_point)(None, "state", rig=str(rig), watchdog_s=0.1)
    assert isinstance(arm, UrArm) and not arm.connected and arm.config.watchdog_s == 0.1
    assert "rig" in registry.option_names(entry.config)
    with pytest.raises(NotImplementedError, match="state observations"):
        registry.load(entry.entry_point)(None, "pixels", rig=str(rig))


def test_bad_targets_and_joint_poses_are_clear_errors(make_arm):
    arm = make_arm()
    state = arm.read_state()
    with pytest.raises(ValueError, match="finite"):
        arm.command(ArmTarget(np.array([math.inf, 0.0, 0.3]), state.tcp_quat_wxyz, 0.0))
    with pytest.raises(ValueError, match="joint_pos_rad must be 6 finite joint positions"):
        arm.reset(np.zeros(7))
    with pytest.raises(TypeError, match="Gripper"):
        UrArm(UrConfig(host="x"), gripper=object())


@pytest.mark.hardware
def test_a_real_ur_passes_the_arm_checks():
    """``ROBOT_RL_HARDWARE=1 ROBOT_RL_UR_RIG=rig.toml pytest -m hardware tests/drivers/arm/test_ur.py``: the arm
    moves a few centimetres around the rig's reset pose (keep the workspace clear; e-Series in remote control)."""
    rig = os.environ.get("ROBOT_RL_UR_RIG")
    if not rig:
        pytest.skip("no UR here: set ROBOT_RL_UR_RIG to the robot's rig file ([arm.ur] table)")
    pytest.importorskip("rtde_control", reason='ur_rtde is not installed: pip install -e ".[ur]"')
    check_arm_backend(UrArm(load_ur_rig(rig)))
