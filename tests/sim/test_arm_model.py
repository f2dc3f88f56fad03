"""The MuJoCo arm model and backend: Panda kinematics and limits, lifecycle, cameras, command
clipping and determinism.

Kinematics are checked against an independent modified-DH (Craig) implementation of the Franka
Panda's published parameters, not against anything in the model file.
"""

from __future__ import annotations

import os

import mujoco
import numpy as np
import pytest

from drivers.arm import panda
from drivers.arm.impedance import ImpedanceConfig
from drivers.arm.panda import GRIPPER_MAX_WIDTH_M
from drivers.arm.panda import READY_JOINT_POS_RAD as HOME_JOINT_POS_RAD
from robot_rl.backends.arm import ArmState, ArmTarget, ObjectSpec
from sim.arm.backend import ARM_JOINTS, MujocoArm, MujocoArmConfig

# Franka Panda datasheet / published modified-DH parameters (Craig convention).
DH_A_M = (0.0, 0.0, 0.0, 0.0825, -0.0825, 0.0, 0.088)
DH_D_M = (0.333, 0.0, 0.316, 0.0, 0.384, 0.0, 0.0)
DH_ALPHA_RAD = (0.0, -np.pi / 2, np.pi / 2, np.pi / 2, -np.pi / 2, np.pi / 2, np.pi / 2)
FLANGE_D_M = 0.107
HAND_YAW_RAD = -np.pi / 4
TCP_OFFSET_M = 0.1034
PANDA_JOINT_LIMITS_RAD = np.array(
    [
        [-2.8973, 2.8973],
        [-1.7628, 1.7628],
        [-2.8973, 2.8973],
        [-3.0718, -0.0698],
        [-2.8973, 2.8973],
        [-0.0175, 3.7525],
        [-2.8973, 2.8973],
    ]
)
PANDA_TORQUE_LIMITS_NM = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)

needs_offscreen_gl = pytest.mark.skipif(
    os.environ.get("MUJOCO_GL") not in ("egl", "osmesa"),
    reason="offscreen rendering needs MUJOCO_GL=egl (or osmesa) set before mujoco is imported",
)


def craig_dh(a: float, d: float, alpha: float, theta: float) -> np.ndarray:
    """Modified-DH link transform Rot_x(alpha) Trans_x(a) Rot_z(theta) Trans_z(d)."""
    ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
    return np.array(
        [
            [ct, -st, 0.0, a],
            [st * ca, ct * ca, -sa, -d * sa],
            [st * sa, ct * sa, ca, d * ca],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def panda_tcp_pose(q: np.ndarray) -> np.ndarray:
    """4x4 TCP pose in the base frame from the published DH chain, flange, hand yaw and TCP offset."""
    pose = np.eye(4)
    for a, d, alpha, theta in zip(DH_A_M, DH_D_M, DH_ALPHA_RAD, q):
        pose = pose @ craig_dh(a, d, alpha, theta)
    pose = pose @ craig_dh(0.0, FLANGE_D_M, 0.0, HAND_YAW_RAD)
    return pose @ craig_dh(0.0, TCP_OFFSET_M, 0.0, 0.0)


def model_tcp_pose(arm: MujocoArm, q: np.ndarray) -> np.ndarray:
    m, d = arm.model, arm.data
    d.qpos[:7] = q
    mujoco.mj_kinematics(m, d)
    pose = np.eye(4)
    pose[:3, :3] = d.site_xmat[m.site("tcp").id].reshape(3, 3)
    pose[:3, 3] = d.site_xpos[m.site("tcp").id]
    return pose


def rotation_angle_rad(rot_a: np.ndarray, rot_b: np.ndarray) -> float:
    """Angle of the rotation between two rotation matrices (atan2 form: exact near zero)."""
    rel = rot_a.T @ rot_b
    sin_angle = np.linalg.norm([rel[2, 1] - rel[1, 2], rel[0, 2] - rel[2, 0], rel[1, 0] - rel[0, 1]]) / 2.0
    return float(np.arctan2(sin_angle, (np.trace(rel) - 1.0) / 2.0))


# --------------------------------------------------------------------------- kinematics
def test_tcp_pose_matches_the_panda_dh_parameters() -> None:
    rng = np.random.default_rng(7)
    with MujocoArm(MujocoArmConfig(cameras=())) as arm:
        configurations = [np.array(HOME_JOINT_POS_RAD)]
        configurations += [rng.uniform(PANDA_JOINT_LIMITS_RAD[:, 0], PANDA_JOINT_LIMITS_RAD[:, 1]) for _ in range(20)]
        for q in configurations:
            expected, actual = panda_tcp_pose(q), model_tcp_pose(arm, q)
            np.testing.assert_allclose(actual[:3, 3], expected[:3, 3], atol=1e-6, err_msg=f"q = {q}")
            assert rotation_angle_rad(actual[:3, :3], expected[:3, :3]) < 1e-6, f"q = {q}"


def test_home_pose_puts_the_tcp_in_front_pointing_down() -> None:
    with MujocoArm(MujocoArmConfig(cameras=())) as arm:
        state = arm.reset(np.array(HOME_JOINT_POS_RAD))
        tcp = model_tcp_pose(arm, np.array(HOME_JOINT_POS_RAD))

    np.testing.assert_allclose(state.tcp_pos_m, [0.307, 0.0, 0.487], atol=1e-3)
    np.testing.assert_allclose(tcp[:3, 2], [0.0, 0.0, -1.0], atol=1e-9)  # TCP z axis down
    assert abs(abs(state.tcp_quat_wxyz[1]) - 1.0) < 1e-9  # 180 deg about base x


# --------------------------------------------------------------------------- limits and mass
def test_joint_limits_match_the_datasheet_and_the_spec() -> None:
    arm = MujocoArm(MujocoArmConfig(cameras=()))
    np.testing.assert_array_equal(panda.JOINT_LIMITS_RAD, PANDA_JOINT_LIMITS_RAD)
    np.testing.assert_array_equal(arm.spec.joint_limits_rad, PANDA_JOINT_LIMITS_RAD)
    np.testing.assert_array_equal(arm.spec.home_joint_pos_rad, HOME_JOINT_POS_RAD)
    with arm:
        m = arm.model
        ids = [m.joint(name).id for name in ARM_JOINTS]
        assert all(m.jnt_limited[ids])
        np.testing.assert_allclose(m.jnt_range[ids], PANDA_JOINT_LIMITS_RAD, rtol=0, atol=1e-12)


def test_torque_limits_match_the_datasheet_and_the_controller() -> None:
    with MujocoArm(MujocoArmConfig(cameras=())) as arm:
        m = arm.model
        ids = [m.actuator(name).id for name in ARM_JOINTS]
        assert all(m.actuator_ctrllimited[ids])
        limits = np.asarray(PANDA_TORQUE_LIMITS_NM)
        np.testing.assert_array_equal(m.actuator_ctrlrange[ids], np.stack([-limits, limits], axis=1))
        assert all(m.actuator_trnid[ids, 0] == [m.joint(name).id for name in ARM_JOINTS])
    assert ImpedanceConfig().torque_limits_nm == PANDA_TORQUE_LIMITS_NM


def test_total_arm_mass_is_plausible() -> None:
    with MujocoArm(MujocoArmConfig(cameras=())) as arm:
        mass_kg = float(arm.model.body_subtreemass[arm.model.body("link0").id])
    assert 15.0 <= mass_kg <= 25.0, f"arm mass {mass_kg:.2f} kg"


# --------------------------------------------------------------------------- lifecycle
def test_spec_is_known_without_connecting() -> None:
    arm = MujocoArm()
    spec = arm.spec
    assert not arm.connected and arm.model is None and arm.data is None
    assert spec.dof == 7
    assert set(spec.cameras) == {"front", "wrist"}
    assert spec.cameras["front"].shape == (128, 128, 3)
    assert spec.gripper_max_width_m == GRIPPER_MAX_WIDTH_M == 0.08


def test_use_before_connect_raises_a_clear_runtime_error() -> None:
    arm = MujocoArm()
    target = ArmTarget(np.array([0.4, 0.0, 0.3]), np.array([0.0, 1.0, 0.0, 0.0]), 0.08)
    for call in (arm.read_state, lambda: arm.command(target), lambda: arm.sync(0.1), lambda: arm.render("front")):
        with pytest.raises(RuntimeError, match="not connected.*connect"):
            call()


def test_close_is_idempotent_and_the_context_manager_connects_and_closes() -> None:
    arm = MujocoArm(MujocoArmConfig(cameras=()))
    arm.close()  # never connected
    with arm as entered:
        assert entered is arm and arm.connected
        assert isinstance(arm.read_state(), ArmState)
    assert not arm.connected and arm.model is None
    arm.close()
    arm.close()
    with pytest.raises(ZeroDivisionError), arm:
        1 / 0
    assert not arm.connected, "the arm must close when the block raises"


# --------------------------------------------------------------------------- cameras
@needs_offscreen_gl
def test_render_returns_uint8_images_that_show_something() -> None:
    with MujocoArm() as arm:
        arm.reset(np.array(HOME_JOINT_POS_RAD))
        images = {camera: arm.render(camera) for camera in ("front", "wrist")}
    for camera, image in images.items():
        assert image.dtype == np.uint8 and image.shape == arm.spec.cameras[camera].shape == (128, 128, 3)
        assert image.std() > 5.0, f"{camera} image is (nearly) constant"
    assert not np.array_equal(images["front"], images["wrist"])


@needs_offscreen_gl
def test_render_of_an_unknown_camera_names_the_known_ones() -> None:
    with MujocoArm() as arm:
        with pytest.raises(KeyError, match="front.*wrist"):
            arm.render("top")


# --------------------------------------------------------------------------- command clipping
def test_command_limits_the_step_and_returns_the_executed_target() -> None:
    with MujocoArm(MujocoArmConfig(cameras=())) as arm:
        state = arm.reset(np.array(HOME_JOINT_POS_RAD))
        far = state.tcp_pos_m + np.array([1.0, 0.0, 0.0])
        executed = arm.command(ArmTarget(far, state.tcp_quat_wxyz, 0.08))
        np.testing.assert_allclose(executed.tcp_pos_m, state.tcp_pos_m + [arm.spec.max_step_m, 0.0, 0.0], atol=1e-12)

        arm.sync(1.0)  # the arm goes to the executed target, not the requested one
        np.testing.assert_allclose(arm.read_state().tcp_pos_m, executed.tcp_pos_m, atol=0.003)


def test_command_clips_the_target_to_the_workspace_box() -> None:
    config = MujocoArmConfig(cameras=(), workspace_high_m=(0.8, 0.4, 0.5))
    with MujocoArm(config) as arm:
        state = arm.reset(np.array(HOME_JOINT_POS_RAD))  # TCP at z = 0.487
        spec = arm.spec
        executed = arm.command(ArmTarget(state.tcp_pos_m + [0.0, 0.0, 0.03], state.tcp_quat_wxyz, 0.08))
        np.testing.assert_allclose(executed.tcp_pos_m, [*state.tcp_pos_m[:2], 0.5], atol=1e-12)
        for offset in ([0.0, 0.0, 1.0], [-1.0, 0.7, 0.9], [0.0, 0.0, -2.0]):
            requested = state.tcp_pos_m + np.array(offset)
            executed = arm.command(ArmTarget(requested, state.tcp_quat_wxyz, 0.08)).tcp_pos_m
            assert np.all(executed >= spec.workspace_low_m) and np.all(executed <= spec.workspace_high_m)
            assert np.linalg.norm(executed - state.tcp_pos_m) <= spec.max_step_m + 1e-12


@pytest.mark.parametrize("requested, expected", [(0.2, 0.08), (-0.1, 0.0), (0.05, 0.05)])
def test_command_clips_the_gripper_width(requested: float, expected: float) -> None:
    with MujocoArm(MujocoArmConfig(cameras=())) as arm:
        state = arm.reset(np.array(HOME_JOINT_POS_RAD))
        executed = arm.command(ArmTarget(state.tcp_pos_m, state.tcp_quat_wxyz, requested))
    assert executed.gripper_width_m == expected


# --------------------------------------------------------------------------- determinism
def drive(arm: MujocoArm, start_q: np.ndarray, offsets: np.ndarray) -> list[ArmState]:
    """Reset to ``start_q``, then send one target per 0.1 s, offsets relative to the start TCP."""
    start = arm.reset(start_q)
    states = []
    for offset in offsets:
        arm.command(ArmTarget(start.tcp_pos_m + offset, start.tcp_quat_wxyz, 0.04))
        arm.sync(0.1)
        states.append(arm.read_state())
    return states


def assert_identical(states_a: list[ArmState], states_b: list[ArmState]) -> None:
    for a, b in zip(states_a, states_b, strict=True):
        assert a.time_s == b.time_s and a.gripper_width_m == b.gripper_width_m
        for field in ("tcp_pos_m", "tcp_quat_wxyz", "tcp_linvel_m_s", "tcp_angvel_rad_s", "joint_pos_rad",
                      "joint_vel_rad_s", "ext_wrench_n_nm"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
        assert a.objects.keys() == b.objects.keys()
        for name in a.objects:
            np.testing.assert_array_equal(a.objects[name], b.objects[name], err_msg=name)


def test_two_fresh_arms_given_the_same_commands_are_bit_identical() -> None:
    rng = np.random.default_rng(3)
    start_q = np.array(HOME_JOINT_POS_RAD) + rng.uniform(-0.1, 0.1, 7)
    offsets = np.cumsum(rng.uniform(-0.03, 0.03, (15, 3)), axis=0)
    objects = (ObjectSpec("cube", (0.02, 0.02, 0.02)),)
    runs = []
    for _ in range(2):
        with MujocoArm(MujocoArmConfig(cameras=()), objects=objects) as arm:
            runs.append(drive(arm, start_q, offsets))
    assert_identical(*runs)


def test_resetting_the_same_arm_replays_bit_identically() -> None:
    rng = np.random.default_rng(4)
    offsets = np.cumsum(rng.uniform(-0.03, 0.03, (10, 3)), axis=0)
    with MujocoArm(MujocoArmConfig(cameras=())) as arm:
        first = drive(arm, np.array(HOME_JOINT_POS_RAD), offsets)
        drive(arm, np.array(HOME_JOINT_POS_RAD) + 0.2, offsets[::-1])  # something else in between
        second = drive(arm, np.array(HOME_JOINT_POS_RAD), offsets)
    assert_identical(first, second)


def test_stop_holds_the_current_pose() -> None:
    """stop() = the safe state now: the arm stops where it is, whatever it was commanded before."""
    with MujocoArm(MujocoArmConfig(cameras=())) as arm:
        state = arm.reset(np.array(HOME_JOINT_POS_RAD))
        far = ArmTarget(state.tcp_pos_m + np.array([0.05, 0.05, -0.05]), state.tcp_quat_wxyz, 0.08)
        arm.command(far)
        arm.sync(0.05)  # moving toward the target
        arm.stop()
        stopped = arm.read_state().tcp_pos_m
        arm.sync(1.0)
        after = arm.read_state()
        assert np.linalg.norm(after.tcp_pos_m - stopped) < 0.01, "the arm kept moving after stop()"
        assert np.linalg.norm(after.tcp_linvel_m_s) < 0.01
        assert np.linalg.norm(after.tcp_pos_m - far.tcp_pos_m) > 0.03  # it did not go on to the old target
