"""A Panda (FER) rig's settings (:class:`PandaConfig`), read from the rig's ``[arm.panda]`` table
(:func:`load_panda_rig`): address, reset pose, workspace box, gains and gripper live there.

The Panda backend drives the same Cartesian impedance with the same gain sets and safety limits
as the FR3 backend, so :class:`PandaConfig` is :class:`~drivers.arm.fr3_config.Fr3Config` with the
Panda's joint limits and panda-python's controller settings added. Example::

    [arm.panda]
    host = "172.16.0.2"
    reported_ee_frame = "tcp"            # Desk has the Franka Hand set as end effector
    gripper = "franka_hand"              # or "none"
    workspace_low_m = [0.3, -0.25, 0.02]
    workspace_high_m = [0.7, 0.25, 0.45]
    gain_set = "compliant"
    damping_ratio = 1.0

``[arm.panda.gains.<name>]`` tables add or replace gain sets, as ``[arm.fr3.gains.<name>]`` do
(:mod:`drivers.arm.fr3_config`); the parsing is shared (:func:`~drivers.arm.fr3_config.parse_franka_table`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

from drivers.arm import panda
from drivers.arm.fr3_config import Fr3Config, parse_franka_table
from robot_rl.rig import read_rig_table
from robot_rl.backends.checks import check_range

SECTION = "arm.panda"


class PandaRigError(ValueError):
    """A rig file's ``[arm.panda]`` table is malformed; the message names the file and the field."""


@dataclasses.dataclass(frozen=True)
class PandaConfig(Fr3Config):
    """Every :class:`~drivers.arm.fr3_config.Fr3Config` field (same meaning, same defaults; the
    reset pose is checked against the Panda's joint limits; ``reset_dynamics_factor`` is
    panda-python's ``speed_factor`` of the reset motion; ``realtime`` is libfranka's real-time
    config; ``max_torque_rate_nm_s`` is franky's and unused here: panda-python's controllers have
    no such setting), plus panda-python's Cartesian impedance settings:

        damping_ratio: Cartesian damping from the stiffness (1.0: critically damped).
        filter_coeff: panda-python's first-order filter on the reference, (0, 1] (1.0: none).
        gripper_speed_m_s: finger speed of Franka Hand moves.
    """

    damping_ratio: float = 1.0
    filter_coeff: float = 1.0
    gripper_speed_m_s: float = 0.1

    _section = SECTION
    _robot = "Panda"
    _joint_limits_rad = panda.JOINT_LIMITS_RAD

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range(self, "damping_ratio", 0.1, 2.0)
        check_range(self, "filter_coeff", 0.0, 1.0, low_open=True)
        check_range(self, "gripper_speed_m_s", 0.0, 0.2, low_open=True)


def load_panda_rig(path: str | os.PathLike, **overrides: Any) -> PandaConfig:
    """Read and validate the ``[arm.panda]`` table of a rig file; ``overrides`` win over the file."""
    return parse_panda_table({**read_rig_table(path, SECTION, PandaRigError), **overrides}, path)


def parse_panda_table(table: Mapping[str, Any], path: str | os.PathLike = "<rig>") -> PandaConfig:
    """Validate a parsed ``[arm.panda]`` table (``[arm.panda.gains.<name>]`` tables add or replace
    gain sets); errors name ``path`` and the field."""
    return parse_franka_table(PandaConfig, table, path, PandaRigError)
