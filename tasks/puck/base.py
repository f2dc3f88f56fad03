"""What every puck task shares: the family, the control rate and the default action mapping.

An action is a normalized force: ``action`` in ``[-1, 1]^2`` -> ``force_n = action * max_force_n``
(table frame, per axis). The mapping is the family's, written once over ``xp`` arrays in
:mod:`sim.puck.contract` (``action_to_force_arrays``, ``force_to_action_arrays``), so the JAX
vector env maps a batch of actions exactly as :class:`PuckTask` maps one.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from sim.puck.contract import PuckCommand, PuckSpec, PuckState, action_to_force_arrays, force_to_action_arrays

ACTION_DIM = 2


class PuckTask:
    """Base of the puck family's tasks.

    Attributes:
        family: ``"puck"``.
        control_hz: the default control rate (20 Hz: a 50 ms force hold).
    """

    family = "puck"
    control_hz = 20.0

    def action_space(self, spec: PuckSpec) -> gym.spaces.Box:
        return gym.spaces.Box(-1.0, 1.0, shape=(ACTION_DIM,), dtype=np.float32)

    def action_to_command(self, action: np.ndarray, state: PuckState, spec: PuckSpec) -> PuckCommand:
        return PuckCommand(action_to_force_arrays(np.asarray(action, dtype=np.float64), spec.max_force_n, np))

    def command_to_action(self, command: PuckCommand, state: PuckState, spec: PuckSpec) -> np.ndarray:
        return force_to_action_arrays(command.force_n, spec.max_force_n, np).astype(np.float32)

    def hold_action(self, spec: PuckSpec) -> np.ndarray:
        """No force (damping brings the puck to rest)."""
        return np.zeros(ACTION_DIM, dtype=np.float32)
