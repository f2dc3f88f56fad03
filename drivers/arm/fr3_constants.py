"""Franka Research 3 constants, from Franka's "Robot and interface specifications" (FR3).

Our FR3 model (``sim/arm/assets/fr3.xml``) writes the same joint limits in its ``range`` attributes
(``tests/drivers/arm/test_fr3_model.py`` checks that they agree). Torque limits and the torque
rate are the same as the Panda's (:mod:`drivers.arm.panda`).
"""

from __future__ import annotations

import numpy as np

#: Lower/upper joint position limits [rad], joints 1..7.
JOINT_LIMITS_RAD = np.array([
    [-2.7437, 2.7437], [-1.7837, 1.7837], [-2.9007, 2.9007], [-3.0421, -0.1518],
    [-2.8065, 2.8065], [0.5445, 4.5169], [-3.0159, 3.0159],
])
JOINT_LIMITS_RAD.setflags(write=False)

#: Joint velocity limits [rad/s], joints 1..7.
JOINT_VELOCITY_LIMITS_RAD_S = np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26])
JOINT_VELOCITY_LIMITS_RAD_S.setflags(write=False)

#: Flange frame relative to link 7's frame: 0.107 m along link 7's z axis (DH d8).
FLANGE_OFFSET_M = 0.107

#: The Franka Hand's TCP relative to the flange: 0.1034 m along z, hand turned -45 deg about z
#: (the sim arm's ``tcp`` site sits at the same place, so tasks see one TCP frame).
HAND_TCP_OFFSET_M = 0.1034
HAND_YAW_RAD = -np.pi / 4

#: Franka Hand: fully open finger distance [m].
HAND_MAX_WIDTH_M = 0.08
