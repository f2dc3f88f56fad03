"""The arm backend checks (robot_rl.testing.arm_backend) on the MuJoCo arm and on the FR3 over franka-sim:
the same observable contract, simulated and through libfranka's real protocol."""

from __future__ import annotations

from robot_rl.testing.arm_backend import check_arm_backend

from sim.arm.backend import MujocoArm, MujocoArmConfig


def test_the_sim_arm_passes_the_arm_checks():
    check_arm_backend(MujocoArm(MujocoArmConfig(cameras=())))


def test_the_fr3_over_franka_sim_passes_the_arm_checks(fr3):
    check_arm_backend(fr3())
