"""What every arm task shares: the family, the scene objects it asks a simulator for, and the
default action mapping (end-effector deltas, :mod:`tasks.arm.actions`).

A subclass is then reset / observe / reward / success / terminated / expert; it keeps its
action mapping in ``self.actions`` (a config field, so ``robot_rl.make(..., actions=...)`` and
rotation actions work for every arm task).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from robot_rl.backends.arm import ArmSpec, ArmState, ArmTarget, ObjectSpec
from tasks.arm.actions import EndEffectorDeltaActions


class ArmTask:
    """Base of the arm family's tasks.

    Attributes:
        family: ``"arm"``.
        objects: rigid boxes the task needs in the scene (simulators add them; on a robot they are real).
        actions: the normalized-action <-> :class:`ArmTarget` mapping.
        control_hz: the default control rate (10 Hz, as SERL runs its Franka).
    """

    family = "arm"
    control_hz = 10.0
    objects: tuple[ObjectSpec, ...] = ()
    actions: EndEffectorDeltaActions = EndEffectorDeltaActions()

    def action_space(self, spec: ArmSpec) -> gym.spaces.Box:
        return self.actions.space()

    def action_to_command(self, action: np.ndarray, state: ArmState, spec: ArmSpec) -> ArmTarget:
        return self.actions.to_target(action, state, spec)

    def command_to_action(self, command: ArmTarget, state: ArmState, spec: ArmSpec) -> np.ndarray:
        return self.actions.to_action(command, state, spec)

    def hold_action(self, spec: ArmSpec) -> np.ndarray:
        """Zero motion, gripper open."""
        action = np.zeros(self.actions.dim, dtype=np.float32)
        action[-1] = 1.0
        return action
