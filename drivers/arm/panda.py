"""Franka Panda (and FR3-class) constants, written once: the sim arm, its tasks' resets, the
impedance controller's defaults and the real-arm backends read them from here.

Joint position and torque limits are the Panda datasheet's ("Robot and interface specifications",
Franka Emika); the MJCF model (``sim/arm/assets/arm7.xml``) writes the same numbers in its
``range``/``ctrlrange`` attributes and ``tests/sim/test_arm_model.py`` checks that they agree.
"""

from __future__ import annotations

import numpy as np

#: Lower/upper joint position limits [rad], joints 1..7.
JOINT_LIMITS_RAD = np.array([
    [-2.8973, 2.8973], [-1.7628, 1.7628], [-2.8973, 2.8973], [-3.0718, -0.0698],
    [-2.8973, 2.8973], [-0.0175, 3.7525], [-2.8973, 2.8973],
])
JOINT_LIMITS_RAD.setflags(write=False)

#: Absolute joint torque limits [Nm], joints 1..7.
TORQUE_LIMITS_NM = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)

#: Largest change of commanded torque [Nm/s] the robot accepts.
MAX_TORQUE_RATE_NM_S = 1000.0

#: The "ready" pose [rad]: TCP 0.307 m in front of the base, 0.487 m up, pointing down.
READY_JOINT_POS_RAD = (0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4)

#: Franka Hand: fully open finger distance [m].
GRIPPER_MAX_WIDTH_M = 0.08
