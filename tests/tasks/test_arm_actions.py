"""End-effector delta actions: mapping to targets and back (the executed-action round trip)."""

import numpy as np
import pytest

import robot_rl
from drivers.arm import panda
from robot_rl.backends.arm import ArmSpec, ArmState, CameraSpec
from tasks.arm.actions import TOP_DOWN_QUAT_WXYZ, EndEffectorDeltaActions

SPEC = ArmSpec(
    dof=7, joint_limits_rad=panda.JOINT_LIMITS_RAD, workspace_low_m=np.full(3, -1.0), workspace_high_m=np.full(3, 1.0),
    gripper_max_width_m=0.08, cameras={"front": CameraSpec("front", 8, 8)},
)


def state(pos=(0.4, 0.0, 0.3), quat=TOP_DOWN_QUAT_WXYZ):
    z3 = np.zeros(3)
    return ArmState(0.0, np.array(pos, float), np.array(quat, float), z3, z3, np.zeros(7), np.zeros(7), 0.08, np.zeros(6))


@pytest.mark.parametrize("rotation", [False, True])
def test_target_and_action_round_trip(rotation):
    actions = EndEffectorDeltaActions(rotation=rotation)
    rng = np.random.default_rng(0)
    for _ in range(20):
        action = rng.uniform(-1, 1, actions.dim).astype(np.float32)
        target = actions.to_target(action, state(), SPEC)
        np.testing.assert_allclose(actions.to_action(target, state(), SPEC), action, atol=1e-5)


def test_scaling_and_gripper_convention():
    actions = EndEffectorDeltaActions(step_m=0.02)
    target = actions.to_target(np.array([1.0, -0.5, 0.0, -1.0]), state(), SPEC)
    np.testing.assert_allclose(target.tcp_pos_m, [0.42, -0.01, 0.3])
    np.testing.assert_allclose(target.tcp_quat_wxyz, TOP_DOWN_QUAT_WXYZ)
    assert target.gripper_width_m == 0.0  # -1 closes
    assert actions.to_target(np.array([0, 0, 0, 1.0]), state(), SPEC).gripper_width_m == pytest.approx(0.08)


def test_rotation_actions_turn_the_real_arm():
    env = robot_rl.make("pick_cube", actions=EndEffectorDeltaActions(rotation=True))
    try:
        assert env.action_space.shape == (7,)
        env.reset(seed=0)
        before = env.unwrapped.state.tcp_quat_wxyz.copy()
        for _ in range(5):  # yaw about base z, 0.1 rad per step
            env.step(np.array([0, 0, 0, 0, 0, 1.0, 1.0], dtype=np.float32))
        after = env.unwrapped.state.tcp_quat_wxyz
        angle = 2 * np.arccos(min(1.0, abs(float(before @ after))))
        assert 0.28 < angle < 0.55  # 0.5 rad asked; the impedance lags about one step
    finally:
        env.close()


def test_invalid_steps_are_rejected():
    with pytest.raises(ValueError, match="step_m"):
        EndEffectorDeltaActions(step_m=0.0)
