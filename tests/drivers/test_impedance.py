"""The reference-limited Cartesian impedance controller, in the sim arm and on its own.

In the MuJoCo arm (gravity on, compensated through the controller's ``bias`` input): free-space
steps converge without much overshoot, the force against a rigid obstacle is set by
``stiffness * clip`` and not by how deep the target lies, and the corners of the documented gain
range are stable (the sim arm runs the compiled controller when numba imports). Without MuJoCo,
on a hand-built Jacobian, for the numpy reference and the numba-compiled controller alike: the clip
bounds the spring, the spring and damper point the right way, the torque-rate and torque limits
hold, ``compute`` does not allocate, and bad configs or targets raise ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import itertools
import tracemalloc

import mujoco
import numpy as np
import pytest

from drivers.arm.impedance import (
    STIFFNESS_POS_RANGE_N_M,
    STIFFNESS_ROT_RANGE_NM_RAD,
    CartesianImpedanceController,
    ImpedanceConfig,
    make_impedance_controller,
)
from drivers.arm.panda import READY_JOINT_POS_RAD as HOME_JOINT_POS_RAD
from robot_rl.backends.arm import ArmTarget, ObjectSpec
from robot_rl.geometry import quat_conj, quat_from_axis_angle, quat_mul, quat_to_axis_angle
from sim.arm.backend import MujocoArm, MujocoArmConfig

PHYSICS_DT_S = 0.002
#: Top of the fixed block used as a rigid obstacle; the block spans x 0.2..0.8, y -0.3..0.3,
#: so at the home pose the fingertips hang 0.17 m above it.
BLOCK_TOP_M = 0.30
#: The posture term leaks through the damped nullspace projector: in free space the arm settles
#: where the spring balances about 0.8 N / 0.2 Nm of it, whatever the stiffness (measured).
RESIDUAL_FORCE_N = 1.5
RESIDUAL_TORQUE_NM = 0.5


# --------------------------------------------------------------------------- sim helpers
def make_arm(impedance: ImpedanceConfig = ImpedanceConfig(), objects: tuple[ObjectSpec, ...] = ()) -> MujocoArm:
    """A sim arm whose command() lets a whole step target through (the test sends one big step)."""
    config = MujocoArmConfig(impedance=impedance, cameras=(), max_step_m=0.5, max_step_rad=0.5)
    return MujocoArm(config, objects=objects)


def settle_at_home(arm: MujocoArm) -> tuple[np.ndarray, np.ndarray]:
    """Reset to the ready pose, let the torque ramp-up settle, return the TCP pose (pos, quat)."""
    arm.reset(np.array(HOME_JOINT_POS_RAD))
    arm.sync(0.3)
    state = arm.read_state()
    return state.tcp_pos_m, state.tcp_quat_wxyz


def rotation_error_rad(quat_a: np.ndarray, quat_b: np.ndarray) -> float:
    return float(np.linalg.norm(quat_to_axis_angle(quat_mul(quat_a, quat_conj(quat_b)))))


def run_physics_steps(arm: MujocoArm, duration_s: float) -> dict[str, np.ndarray]:
    """Advance one physics step at a time; record TCP pose, joint velocity and commanded torque."""
    log: dict[str, list] = {"tcp_pos_m": [], "tcp_quat_wxyz": [], "joint_vel_rad_s": [], "torque_nm": []}
    for _ in range(int(round(duration_s / PHYSICS_DT_S))):
        arm.sync(PHYSICS_DT_S)
        state = arm.read_state()
        log["tcp_pos_m"].append(state.tcp_pos_m)
        log["tcp_quat_wxyz"].append(state.tcp_quat_wxyz)
        log["joint_vel_rad_s"].append(state.joint_vel_rad_s)
        log["torque_nm"].append(arm.data.ctrl[:7].copy())
    return {key: np.array(values) for key, values in log.items()}


# --------------------------------------------------------------------------- free space
def test_free_space_step_converges_with_bounded_overshoot() -> None:
    with make_arm() as arm:
        start, quat = settle_at_home(arm)
        goal = start + np.array([0.10, 0.05, -0.10])  # 0.15 m, mixed directions
        executed = arm.command(ArmTarget(goal, quat, 0.08))
        np.testing.assert_allclose(executed.tcp_pos_m, goal)
        log = run_physics_steps(arm, 3.0)

    direction = (goal - start) / np.linalg.norm(goal - start)
    overshoot_m = float(np.max((log["tcp_pos_m"] - goal) @ direction))
    final_error_m = float(np.linalg.norm(log["tcp_pos_m"][-1] - goal))
    worst_tilt_rad = max(rotation_error_rad(q, quat) for q in log["tcp_quat_wxyz"])
    assert final_error_m < 0.005, f"final position error {final_error_m * 1e3:.2f} mm"
    assert overshoot_m < 0.015, f"overshoot past the target {overshoot_m * 1e3:.2f} mm"
    assert worst_tilt_rad < 0.05, f"orientation drifted by {worst_tilt_rad:.4f} rad during the move"


def test_free_space_rotation_about_base_z_converges() -> None:
    with make_arm() as arm:
        start, quat = settle_at_home(arm)
        goal_quat = quat_mul(quat_from_axis_angle([0.0, 0.0, 0.3]), quat)
        arm.command(ArmTarget(start, goal_quat, 0.08))
        arm.sync(3.0)
        state = arm.read_state()

    rot_error_rad = rotation_error_rad(state.tcp_quat_wxyz, goal_quat)
    assert rot_error_rad < 0.03, f"rotation error {rot_error_rad:.4f} rad after 3 s"
    assert np.linalg.norm(state.tcp_pos_m - start) < 0.005


# --------------------------------------------------------------------------- rigid contact
def steady_contact(stiffness_pos_n_m: float, depth_m: float, clip_z_m: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Push down on a fixed block toward a target ``depth_m`` below its top; after settling return
    (mean ext_wrench force [N] over the last 0.2 s, force on the block from MuJoCo's cfrc_ext [N])."""
    impedance = ImpedanceConfig(stiffness_pos_n_m=stiffness_pos_n_m, clip_pos_m=(0.02, 0.02, clip_z_m))
    block = ObjectSpec("block", half_size_m=(0.3, 0.3, BLOCK_TOP_M / 2), fixed=True)
    with make_arm(impedance, objects=(block,)) as arm:
        start, quat = settle_at_home(arm)
        arm.command(ArmTarget(np.array([start[0], start[1], BLOCK_TOP_M - depth_m]), quat, 0.08))
        arm.sync(1.8)
        forces = []
        for _ in range(20):
            arm.sync(0.01)
            forces.append(arm.read_state().ext_wrench_n_nm[:3])
        m, d = arm.model, arm.data
        touching = {
            m.body(m.geom_bodyid[g]).name
            for con in d.contact[: d.ncon]
            for g in (con.geom1, con.geom2)
            if m.geom_bodyid[g] != m.body("block").id
        }
        assert touching <= {"hand", "finger_left", "finger_right"}, f"the block touches {touching}"
        mujoco.mj_rnePostConstraint(m, d)  # fills cfrc_ext: [torque, force] on each body
        force_on_block = d.cfrc_ext[m.body("block").id][3:].copy()
    forces = np.array(forces)
    assert np.ptp(forces, axis=0).max() < 0.5, f"contact force not steady: {forces}"
    # Same instant as MuJoCo's own reading for the cross-check; the mean for the bounds.
    np.testing.assert_allclose(forces[-1], -force_on_block, atol=0.02, err_msg="ext_wrench disagrees with MuJoCo")
    return forces.mean(axis=0), force_on_block


@pytest.mark.parametrize("stiffness_pos_n_m, clip_z_m", [(500.0, 0.02), (1500.0, 0.02), (1500.0, 0.04)])
def test_steady_contact_force_is_set_by_stiffness_times_clip(stiffness_pos_n_m: float, clip_z_m: float) -> None:
    force, force_on_block = steady_contact(stiffness_pos_n_m, depth_m=0.10, clip_z_m=clip_z_m)

    bound = stiffness_pos_n_m * float(np.linalg.norm((0.02, 0.02, clip_z_m)))
    assert np.linalg.norm(force) <= 1.15 * bound + 2.0, f"|F| {np.linalg.norm(force):.2f} N > bound {bound:.2f} N"
    spring_z = stiffness_pos_n_m * clip_z_m  # the saturated spring pushing down
    assert force[2] > 0.0, "the block must push the hand up"
    assert abs(force[2] - spring_z) <= 0.05 * spring_z + 1.0, f"Fz {force[2]:.2f} N vs K*clip_z {spring_z:.2f} N"


def test_contact_force_scales_with_stiffness_not_target_depth() -> None:
    soft, _ = steady_contact(500.0, depth_m=0.10)
    stiff, _ = steady_contact(1500.0, depth_m=0.10)
    shallow, _ = steady_contact(1500.0, depth_m=0.05)
    deep, _ = steady_contact(1500.0, depth_m=0.20)

    assert stiff[2] / soft[2] == pytest.approx(1500.0 / 500.0, rel=0.15)
    assert deep[2] == pytest.approx(shallow[2], rel=0.05), "a deeper target must not push harder"
    assert shallow[2] > 0.8 * 1500.0 * 0.02


# --------------------------------------------------------------------------- gain range
@pytest.mark.parametrize(
    "stiffness_pos_n_m, stiffness_rot_nm_rad", list(itertools.product(STIFFNESS_POS_RANGE_N_M, STIFFNESS_ROT_RANGE_NM_RAD))
)
def test_documented_gain_range_corners_are_stable(stiffness_pos_n_m: float, stiffness_rot_nm_rad: float) -> None:
    impedance = ImpedanceConfig(stiffness_pos_n_m=stiffness_pos_n_m, stiffness_rot_nm_rad=stiffness_rot_nm_rad)
    with make_arm(impedance) as arm:
        start, quat = settle_at_home(arm)
        goal = start + 0.10 * np.array([0.6, -0.48, 0.64])  # 10 cm
        arm.command(ArmTarget(goal, quat, 0.08))
        log = run_physics_steps(arm, 5.0)

    torque = log["torque_nm"]
    assert np.all(np.isfinite(torque))
    assert np.all(np.abs(torque) <= np.asarray(impedance.torque_limits_nm) + 1e-9)
    pos_error_m = float(np.linalg.norm(log["tcp_pos_m"][-1] - goal))
    rot_error_rad = rotation_error_rad(log["tcp_quat_wxyz"][-1], quat)
    assert pos_error_m < 0.01, f"position error {pos_error_m * 1e3:.2f} mm after 5 s"
    assert stiffness_pos_n_m * pos_error_m < RESIDUAL_FORCE_N
    assert stiffness_rot_nm_rad * rot_error_rad < RESIDUAL_TORQUE_NM
    tail_speed = float(np.abs(log["joint_vel_rad_s"][-125:]).max())  # last 0.25 s
    assert tail_speed < 0.005, f"still moving at {tail_speed:.4f} rad/s"


# --------------------------------------------------------------------------- unit checks
IDENTITY_QUAT = np.array([1.0, 0.0, 0.0, 0.0])
#: 6x7 Jacobian: joints 1-6 move the TCP one task axis each, joint 7 is the nullspace.
JAC = np.hstack([np.eye(6), np.zeros((6, 1))])
UNLIMITED = dict(target_filter_s=0.0, gain_filter_s=0.0, max_torque_rate_nm_s=1e9, torque_limits_nm=(1e6,) * 7)


def rot_x(angle_rad: float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_z(angle_rad: float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@pytest.fixture(params=["numpy", "numba"])
def kernel(request: pytest.FixtureRequest) -> str:
    """Each unit check runs on the numpy reference and on the compiled controller."""
    if request.param == "numba":
        pytest.importorskip("numba", reason="numba is not installed: the compiled controller is not built")
    return request.param


def held_controller(config: ImpedanceConfig, kernel: str = "numpy") -> CartesianImpedanceController:
    """A controller holding TCP pose (origin, identity) with posture q = 0."""
    ctrl = make_impedance_controller(dataclasses.replace(config, kernel=kernel))
    ctrl.reset(np.zeros(3), IDENTITY_QUAT, np.zeros(7))
    return ctrl


def test_clip_bounds_the_spring_force_for_huge_errors(kernel: str) -> None:
    config = ImpedanceConfig(stiffness_pos_n_m=2000.0, stiffness_rot_nm_rad=80.0, **UNLIMITED)
    ctrl = held_controller(config, kernel)
    tau = ctrl.compute(np.zeros(7), np.zeros(7), np.array([5.0, -7.0, 100.0]), rot_x(2.5), JAC, np.zeros(7))

    expected = np.array([-2000 * 0.02, 2000 * 0.02, -2000 * 0.02, -80 * 0.1, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(tau, expected, atol=1e-9)
    np.testing.assert_allclose(ctrl.pose_error, [0.02, -0.02, 0.02, 0.1, 0.0, 0.0], atol=1e-12)


def test_spring_and_damper_restore_small_errors(kernel: str) -> None:
    config = ImpedanceConfig(stiffness_pos_n_m=1000.0, stiffness_rot_nm_rad=50.0, nullspace_stiffness_nm_rad=0.0, **UNLIMITED)
    ctrl = held_controller(config, kernel)
    tau = ctrl.compute(np.zeros(7), np.zeros(7), np.array([0.005, 0.0, -0.01]), rot_z(0.02), JAC, np.zeros(7))
    np.testing.assert_allclose(tau[:6], [-5.0, 0.0, 10.0, 0.0, 0.0, -50.0 * np.sin(0.02)], atol=1e-9)

    ctrl = held_controller(config, kernel)
    dq = np.array([0.1, 0.0, 0.0, 0.0, 0.0, -0.2, 0.3])  # joint 7 moves nothing
    tau = ctrl.compute(np.zeros(7), dq, np.zeros(3), np.eye(3), JAC, np.zeros(7))
    damping_pos = 2.0 * np.sqrt(1000.0 * config.apparent_mass_kg)
    damping_rot = 2.0 * np.sqrt(50.0 * config.apparent_inertia_kg_m2)
    np.testing.assert_allclose(tau, [-damping_pos * 0.1, 0, 0, 0, 0, damping_rot * 0.2, 0], atol=1e-9)


def test_posture_term_acts_in_the_nullspace(kernel: str) -> None:
    config = ImpedanceConfig(nullspace_stiffness_nm_rad=10.0, **UNLIMITED)
    ctrl = held_controller(config, kernel)
    q = np.array([0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2])
    tau = ctrl.compute(q, np.zeros(7), np.zeros(3), np.eye(3), JAC, np.zeros(7))

    assert tau[6] == pytest.approx(-10.0 * 0.2)
    leak = config.nullspace_damping_lambda**2 / (1.0 + config.nullspace_damping_lambda**2)
    assert tau[0] == pytest.approx(-10.0 * 0.1 * leak)  # the damped projector's small leak
    np.testing.assert_allclose(tau[1:6], 0.0, atol=1e-12)


def random_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A tick's inputs with errors and bias far beyond what the limits allow."""
    q, dq = rng.uniform(-1, 1, 7), rng.uniform(-3, 3, 7)
    pos = rng.uniform(-1, 1, 3)
    rot = rot_x(rng.uniform(-3, 3)) @ rot_z(rng.uniform(-3, 3))
    return q, dq, pos, rot, JAC, rng.uniform(-200, 200, 7)


def test_torque_rate_and_torque_limits_hold_every_tick(kernel: str) -> None:
    config = ImpedanceConfig(stiffness_pos_n_m=3000.0, stiffness_rot_nm_rad=150.0)
    ctrl = held_controller(config, kernel)
    rng = np.random.default_rng(0)
    max_step_nm = config.max_torque_rate_nm_s * config.dt_s
    previous = np.zeros(7)
    for _ in range(300):
        tau = ctrl.compute(*random_inputs(rng)).copy()
        assert np.all(np.abs(tau - previous) <= max_step_nm + 1e-9)
        assert np.all(np.abs(tau) <= np.asarray(config.torque_limits_nm) + 1e-12)
        previous = tau


def test_rate_limited_torque_reaches_a_constant_request(kernel: str) -> None:
    config = ImpedanceConfig(stiffness_pos_n_m=3000.0, torque_limits_nm=(1e3,) * 7, target_filter_s=0.0)
    ctrl = held_controller(config, kernel)
    pos = np.array([0.0, 0.0, 1.0])  # clipped: the spring asks for -3000 * 0.02 = -60 N on joint 3
    taus = [ctrl.compute(np.zeros(7), np.zeros(7), pos, np.eye(3), JAC, np.zeros(7))[2] for _ in range(80)]

    assert taus[0] == pytest.approx(-1.0) and taus[29] == pytest.approx(-30.0)  # 1 Nm per 1 ms tick
    assert taus[-1] == pytest.approx(-60.0)


def test_compute_does_not_allocate_in_steady_state(kernel: str) -> None:
    ctrl = held_controller(ImpedanceConfig(), kernel)
    q, dq, pos, rot = np.full(7, 0.1), np.full(7, 0.01), np.array([0.01, 0.0, 0.0]), rot_z(0.01)
    jacs = [JAC * (1.0 + 1e-3 * k) for k in range(8)]
    bias = np.ones(7)
    for k in range(100):
        ctrl.compute(q, dq, pos, rot, jacs[k % 8], bias)

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for k in range(2000):
            ctrl.compute(q, dq, pos, rot, jacs[k % 8], bias)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 512, f"compute() kept {grown} bytes over 2000 calls"


@pytest.mark.parametrize(
    "bad",
    [
        {"stiffness_pos_n_m": -100.0},
        {"stiffness_rot_nm_rad": 0.0},
        {"damping_ratio": -0.5},
        {"max_torque_rate_nm_s": 0.0},
        {"clip_pos_m": (0.02, 0.02)},
        {"clip_rot_rad": (0.1, 0.1, 0.1, 0.1)},
        {"clip_pos_m": (0.02, -0.02, 0.02)},
        {"stiffness_pos_n_m": float("nan")},
        {"torque_limits_nm": (-5.0,) * 7},
        {"clip_pos_m": (float("nan"), 0.02, 0.02)},
        {"nullspace_damping_lambda": -0.1},
        {"kernel": "cuda"},
    ],
    ids=lambda bad: "-".join(f"{k}={v}" for k, v in bad.items()),
)
def test_invalid_config_raises(bad: dict) -> None:
    with pytest.raises(ValueError):
        ImpedanceConfig(**bad)


@pytest.mark.parametrize(
    "pos, quat",
    [
        ([np.nan, 0.0, 0.0], IDENTITY_QUAT),
        ([0.0, 0.0, 0.0], [np.nan, 0.0, 0.0, 1.0]),
        ([0.0, np.inf, 0.0], IDENTITY_QUAT),
        ([0.0, 0.0], IDENTITY_QUAT),
        ([0.0, 0.0, 0.0], np.zeros(4)),
    ],
)
def test_set_target_rejects_non_finite_or_misshapen_targets(pos: list, quat: np.ndarray, kernel: str) -> None:
    ctrl = held_controller(ImpedanceConfig(), kernel)
    with pytest.raises(ValueError):
        ctrl.set_target(np.array(pos), np.asarray(quat))


def test_set_gains_rejects_non_positive_stiffness(kernel: str) -> None:
    ctrl = held_controller(ImpedanceConfig(), kernel)
    with pytest.raises(ValueError):
        ctrl.set_gains(-1.0, 10.0)


def test_recovers_finite_torques_after_a_jacobian_jump(kernel: str) -> None:
    ctrl = held_controller(dataclasses.replace(ImpedanceConfig(), max_torque_rate_nm_s=1e9), kernel)
    for jac in [JAC] * 5 + [3.0 * JAC] * 64:  # the residual check runs every 32 ticks
        tau = ctrl.compute(np.zeros(7), np.zeros(7), np.zeros(3), np.eye(3), jac, np.zeros(7))
    assert np.all(np.isfinite(tau))


def test_non_finite_inputs_raise_instead_of_sending_nan_torques(kernel: str) -> None:
    ctrl = held_controller(ImpedanceConfig(), kernel)
    q = np.zeros(7)
    q[2] = np.nan
    with pytest.raises(FloatingPointError, match="non-finite torque"):
        ctrl.compute(q, np.zeros(7), np.zeros(3), np.eye(3), JAC, np.zeros(7))
