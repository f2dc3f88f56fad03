"""What every puck task shares: the family, the control rate and the default action mapping.

An action is a normalized force: ``action`` in ``[-1, 1]^2`` -> ``force_n = action * max_force_n``
(table frame, per axis). The mapping is written once over ``xp`` arrays
(:func:`action_to_force_arrays`, :func:`force_to_action_arrays`), so the JAX vector env maps a
batch of actions exactly as :class:`PuckTask` maps one.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from sim.puck.contract import PuckCommand, PuckSpec, PuckState, clip_force_arrays

ACTION_DIM = 2


def action_to_force_arrays(action: Any, max_force_n: Any, xp: Any) -> Any:
    """``(..., 2)`` normalized actions -> the forces [N] a puck backend applies (limits included)."""
    return clip_force_arrays(xp.clip(action, -1.0, 1.0) * max_force_n, max_force_n, xp)


def force_to_action_arrays(force_n: Any, max_force_n: Any, xp: Any) -> Any:
    """Inverse of :func:`action_to_force_arrays` on forces within the limit."""
    return xp.clip(force_n / max_force_n, -1.0, 1.0)


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
