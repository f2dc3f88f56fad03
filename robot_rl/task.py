"""The Task contract: what a task adds to a backend to make an env.

A task is backend-agnostic: it names the robot *family* it runs on, reads that family's typed
state (``ArmState`` for arms, ...) and speaks to the backend only through the family's Protocol,
so the same task runs in MuJoCo and on the robot. It declares its spaces from the backend's spec
alone (no device needed).

Each family has a base class (``tasks/arm/base.py``: ``ArmTask``) that holds the default action
mapping (``action_space``, ``action_to_command``, ``command_to_action``), so a task itself is
reset / observe / reward / success / terminated / expert.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np


@runtime_checkable
class Task(Protocol):
    """Reset distribution, observation, reward, success, termination and a scripted expert.

    Attributes:
        name: registry name of the task.
        family: the robot family it runs on; any backend of that family works.
        max_episode_steps: the time limit; reaching it truncates (never terminates) an episode.
        control_hz: the control rate the task is designed for (the env's default).
    """

    name: str
    family: str
    max_episode_steps: int
    control_hz: float

    def state_layout(self, spec: Any, obs_mode: str) -> Mapping[str, int]:
        """Named parts of the flat ``state`` vector, in order, with their sizes."""
        ...

    def action_space(self, spec: Any) -> gym.spaces.Box:
        """The normalized action space (``[-1, 1]`` per dimension)."""
        ...

    def reset(self, backend: Any, rng: np.random.Generator) -> Any:
        """Bring robot (and, in sim, the scene) to a state drawn from the reset distribution."""
        ...

    def observe(self, state: Any, obs_mode: str) -> np.ndarray:
        """The flat float32 ``state`` vector (layout as in :meth:`state_layout`)."""
        ...

    def action_to_command(self, action: np.ndarray, state: Any, spec: Any) -> Any:
        """Map a normalized action to the backend's command (e.g. an ``ArmTarget``)."""
        ...

    def command_to_action(self, command: Any, state: Any, spec: Any) -> np.ndarray:
        """Inverse of :meth:`action_to_command`: the action the executed command amounts to."""
        ...

    def hold_action(self, spec: Any) -> np.ndarray:
        """An action that makes no progress (the robot holds still): the conformance suite's
        time-limit check drives with it."""
        ...

    def reward(self, state: Any) -> float:
        ...

    def success(self, state: Any) -> bool:
        ...

    def terminated(self, state: Any) -> bool:
        """Episode over for a reason inside the MDP (success, or an unrecoverable failure)."""
        ...

    def expert(self, state: Any) -> np.ndarray:
        """A scripted action from the (privileged, in sim) state: demos and simulated humans."""
        ...


# Optional, called by RobotEnv when a task defines them (not part of the Protocol above):
#   truncated(state) -> bool   end the episode now for a reason outside the MDP (it bootstraps):
#                              a crash the robot must recover from, being stuck (tasks/car/lap.py)
#   info(state) -> dict        per-step metrics merged into the step's info (lap time, ...)
