"""The arm checks on a real FR3: ``ROBOT_RL_HARDWARE=1 ROBOT_RL_FR3_RIG=rig.toml pytest -m hardware``.
The arm moves a few centimetres around the rig's reset pose; keep the workspace clear."""

from __future__ import annotations

import os

import pytest
from robot_rl.testing.arm_backend import check_arm_backend

from drivers.arm.fr3 import Fr3Arm
from drivers.arm.fr3_config import load_fr3_rig


@pytest.mark.hardware
def test_a_real_fr3_passes_the_arm_checks():
    rig = os.environ.get("ROBOT_RL_FR3_RIG")
    if not rig:
        pytest.skip("set ROBOT_RL_FR3_RIG to the robot's rig file ([arm.fr3] table)")
    check_arm_backend(Fr3Arm(load_fr3_rig(rig)))
