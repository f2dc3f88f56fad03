"""The sim arm's task objects (sim/arm/objects.py): free, fixed (placeable, immovable), held in the
gripper, and made of several boxes."""

import mujoco
import numpy as np
import pytest

from robot_rl.backends.arm import ArmTarget, ObjectSpec
from sim.arm.backend import MujocoArm, MujocoArmConfig
from tasks.arm.actions import TOP_DOWN_QUAT_WXYZ

DOWN = np.array(TOP_DOWN_QUAT_WXYZ, dtype=np.float64)
PEG = ObjectSpec("peg", (0.01, 0.01, 0.03), mass_kg=0.05, held_offset_m=(0.0, 0.0, 0.02))
WALLS = ObjectSpec("walls", (0.05, 0.05, 0.02), fixed=True,
                   parts=(((-0.04, 0.0, 0.0), (0.01, 0.05, 0.02)), ((0.04, 0.0, 0.0), (0.01, 0.05, 0.02))))
CUBE = ObjectSpec("cube", (0.02, 0.02, 0.02))


def arm_with(*objects):
    return MujocoArm(MujocoArmConfig(cameras=()), objects=objects)


def start(arm, tcp_pos_m):
    return arm.reset(np.asarray(arm.spec.home_joint_pos_rad), ArmTarget(np.asarray(tcp_pos_m, dtype=np.float64), DOWN, 0.02))


def test_held_object_rides_at_its_offset_in_the_tcp_frame_and_cannot_be_placed():
    with arm_with(PEG) as arm:
        state = start(arm, [0.5, 0.0, 0.3])
        peg = state.objects["peg"]
        # TCP pointing down: +z of the TCP frame is -z of the base.
        np.testing.assert_allclose(peg[:3], state.tcp_pos_m + [0.0, 0.0, -0.02], atol=1e-4)
        np.testing.assert_allclose(np.abs(peg[3:]), np.abs(state.tcp_quat_wxyz), atol=1e-6)
        arm.command(ArmTarget(state.tcp_pos_m + [0.03, 0.0, 0.0], DOWN, 0.02))
        arm.sync(1.0)
        moved = arm.read_state()
        np.testing.assert_allclose(moved.objects["peg"][:3], moved.tcp_pos_m + [0.0, 0.0, -0.02], atol=1e-3)
        with pytest.raises(KeyError, match="held in the gripper"):
            arm.set_object_pose("peg", np.zeros(3), np.array([1.0, 0, 0, 0]))


def test_held_object_contacts_are_the_robots_external_wrench():
    """Pushing the held peg onto a fixed block: ext_wrench equals MuJoCo's force on the block."""
    block = ObjectSpec("block", (0.1, 0.1, 0.05), fixed=True)
    with arm_with(PEG, block) as arm:
        start(arm, [0.5, 0.0, 0.2])
        arm.set_object_pose("block", np.array([0.5, 0.0, 0.05]), np.array([1.0, 0.0, 0.0, 0.0]))
        tip_to_tcp = 0.02 + 0.03
        for _ in range(20):  # toward the tip 5 cm into the block, at the backend's step limit
            arm.command(ArmTarget(np.array([0.5, 0.0, 0.1 + tip_to_tcp - 0.05]), DOWN, 0.02))
            arm.sync(0.1)
        state = arm.read_state()
        m, d = arm.model, arm.data
        mujoco.mj_rnePostConstraint(m, d)
        on_block = d.cfrc_ext[m.body("block").id][3:]
        np.testing.assert_allclose(state.ext_wrench_n_nm[:3], -on_block, atol=0.05)
        assert state.ext_wrench_n_nm[2] > 5.0, "the block pushes the peg (and the hand) up"
        np.testing.assert_allclose(state.objects["block"][:3], [0.5, 0.0, 0.05], atol=1e-12, err_msg="a fixed object never moves")


def test_fixed_object_of_several_boxes_is_placed_and_reported():
    with arm_with(WALLS, CUBE) as arm:
        start(arm, [0.4, 0.0, 0.3])
        assert {arm.model.geom(i).name for i in range(arm.model.ngeom)} >= {"walls/0", "walls/1", "cube"}
        quat = np.array([np.cos(0.2), 0.0, 0.0, np.sin(0.2)])
        arm.set_object_pose("walls", np.array([0.6, 0.1, 0.02]), quat)
        state = arm.read_state()
        np.testing.assert_allclose(state.objects["walls"], np.concatenate([[0.6, 0.1, 0.02], quat]), atol=1e-12)
        # A free cube dropped between the walls falls to the table; one dropped on a wall rests on it.
        arm.set_object_pose("cube", np.array([0.6, 0.1, 0.05]), np.array([1.0, 0.0, 0.0, 0.0]))
        arm.sync(0.5)
        assert arm.read_state().objects["cube"][2] == pytest.approx(0.02, abs=2e-3)
        wall_x, wall_y = 0.6 + 0.04 * np.cos(0.4), 0.1 + 0.04 * np.sin(0.4)
        arm.set_object_pose("cube", np.array([wall_x, wall_y, 0.08]), np.array([1.0, 0.0, 0.0, 0.0]))
        arm.sync(0.5)
        assert arm.read_state().objects["cube"][2] == pytest.approx(0.04 + 0.02, abs=2e-3)
        # reset() puts every object back at its model pose.
        state = start(arm, [0.4, 0.0, 0.3])
        np.testing.assert_allclose(state.objects["walls"][:3], [0.5, 0.0, 0.02])  # resting on the table
        np.testing.assert_allclose(state.objects["cube"][:3], [0.5, 0.0, 0.02], atol=1e-3)


def test_object_spec_rejects_impossible_objects():
    with pytest.raises(ValueError, match="both fixed and held"):
        ObjectSpec("x", (0.01, 0.01, 0.01), fixed=True, held_offset_m=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="positive half extents"):
        ObjectSpec("x", (0.01, 0.01, 0.01), parts=(((0.0, 0.0, 0.0), (0.01, 0.0, 0.01)),))
    with pytest.raises(ValueError, match="offsets"):
        ObjectSpec("x", (0.01, 0.01, 0.01), held_offset_m=(0.0, 0.0))
