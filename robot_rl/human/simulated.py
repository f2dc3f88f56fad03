"""A simulated human: a :class:`~robot_rl.human.teleop.TeleopDevice` that takes over with a scripted expert.

It lets the human-in-the-loop machinery (``InterveneWithTeleop``, intervention data, the learner's
demo/intervention sampling) run in sim with no one at the keyboard. At every ``poll`` it looks at
the policy's proposed action and, when a trigger fires, drives with the expert for ``hold_steps``
steps, then hands back.

Triggers (any subset, see :class:`SimulatedHumanConfig`):

- ``distance``: ``||policy_action - expert_action||_2 > distance_threshold`` (whole action vector,
  gripper included, in the env's normalized action units) for ``distance_steps`` polls in a row;
- ``stall``: ``progress()`` has not risen by more than ``stall_eps`` above its best value for
  ``stall_steps`` polls;
- ``random``: with probability ``random_prob`` per poll (seeded).

Default progress for robot_rl tasks (:func:`task_progress`): the task's ``progress(state)`` where it
has one (car_lap: metres along the track; its reward is a speed, which levels off while the car
drives well), else the task's *dense* reward for the current state — a task whose config has a
``dense_reward`` field is copied with ``dense_reward=True`` (so the stall test works while the env
itself trains on sparse reward); other tasks use their ``reward(state)`` as it is.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import Any, Callable

import numpy as np

from robot_rl.human.teleop import TeleopEvent

TRIGGERS = ("distance", "stall", "random")


@dataclasses.dataclass(frozen=True)
class SimulatedHumanConfig:
    """Attributes:
        triggers: which of ``distance``, ``stall``, ``random`` may start an intervention.
        distance_threshold: L2 distance between policy and expert actions (normalized action units).
        distance_steps: consecutive polls above the threshold before taking over.
        stall_steps: polls without progress before taking over.
        stall_eps: the smallest rise of ``progress()`` that counts as progress.
        random_prob: probability per poll of taking over.
        hold_steps: polls the expert drives once it took over.
        seed: seeds the ``random`` trigger.
    """

    triggers: tuple[str, ...] = ("distance", "stall")
    distance_threshold: float = 1.0
    distance_steps: int = 3
    stall_steps: int = 20
    stall_eps: float = 1e-3
    random_prob: float = 0.05
    hold_steps: int = 10
    seed: int | None = 0

    def __post_init__(self) -> None:
        unknown = set(self.triggers) - set(TRIGGERS)
        if unknown:
            raise ValueError(f"unknown triggers {sorted(unknown)}; known: {list(TRIGGERS)}")
        if min(self.distance_steps, self.stall_steps, self.hold_steps) < 1:
            raise ValueError("distance_steps, stall_steps and hold_steps must be >= 1")
        if not 0.0 <= self.random_prob <= 1.0:
            raise ValueError(f"random_prob must be in [0, 1], got {self.random_prob}")
        if self.distance_threshold < 0 or self.stall_eps < 0:
            raise ValueError("distance_threshold and stall_eps must be >= 0")


def task_progress(env: Any) -> Callable[[], float]:
    """Progress of a robot_rl env's task (see the module docstring); reads the env's current state."""
    base = env.unwrapped
    task, config = base.task, getattr(base.task, "config", None)
    if hasattr(task, "progress"):
        return lambda: float(task.progress(base.state))
    if dataclasses.is_dataclass(config) and "dense_reward" in {f.name for f in dataclasses.fields(config)}:
        task = type(task)(dataclasses.replace(config, dense_reward=True))
    return lambda: float(task.reward(base.state))


class SimulatedHuman:
    """Drives with ``expert()`` when a trigger fires; counts its interventions.

    Args:
        expert: returns the expert's action for the env's *current* state (shape ``action_shape``).
        action_shape: the env's action shape.
        config: triggers and their parameters.
        progress: for the ``stall`` trigger: a number that grows as the task advances.

    Attributes:
        interventions: number of take-overs so far.
        intervention_steps: polls answered with the expert's action.
        trigger_counts: take-overs per trigger name.
    """

    def __init__(
        self,
        expert: Callable[[], np.ndarray],
        action_shape: tuple[int, ...],
        config: SimulatedHumanConfig | None = None,
        progress: Callable[[], float] | None = None,
    ) -> None:
        self.config = config or SimulatedHumanConfig()
        if "stall" in self.config.triggers and progress is None:
            raise ValueError("the stall trigger needs a progress callable")
        self.name = "simulated human"
        self.action_shape = tuple(action_shape)
        self._expert, self._progress = expert, progress
        self._rng = np.random.default_rng(self.config.seed)
        self.interventions = 0
        self.intervention_steps = 0
        self.trigger_counts: Counter[str] = Counter()
        self._driving_left = 0
        self.new_episode()

    @classmethod
    def for_env(
        cls, env: Any, config: SimulatedHumanConfig | None = None, progress: Callable[[], float] | None = None,
    ) -> SimulatedHuman:
        """For a robot_rl env: expert = ``task.expert(state)``, progress = :func:`task_progress`."""
        base = env.unwrapped
        config = config or SimulatedHumanConfig()
        if progress is None and "stall" in config.triggers:
            progress = task_progress(env)
        return cls(lambda: base.task.expert(base.state), env.action_space.shape, config, progress)

    def connect(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> SimulatedHuman:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def new_episode(self) -> None:
        """Forget the streaks and any take-over in progress (the env was reset)."""
        self._driving_left = 0
        self._far_streak = 0
        self._stall_count = 0
        self._best_progress = -np.inf

    def poll(self, policy_action: np.ndarray | None = None) -> TeleopEvent:
        """Expert action while driving (or when a trigger fires now), else no action."""
        now_s = time.monotonic()
        expert = None
        if self._driving_left == 0:
            expert = np.asarray(self._expert(), dtype=np.float32)
            fired = self._fired(policy_action, expert)
            if fired:
                self.interventions += 1
                self.trigger_counts[fired] += 1
                self._driving_left = self.config.hold_steps
        if self._driving_left == 0:
            return TeleopEvent(action=None, intervening=False, timestamp_s=now_s)
        action = np.asarray(self._expert(), dtype=np.float32) if expert is None else expert
        if action.shape != self.action_shape:
            raise ValueError(f"the expert returned shape {action.shape}, expected {self.action_shape}")
        self._driving_left -= 1
        self.intervention_steps += 1
        if self._driving_left == 0:  # hand back with fresh streaks
            self._far_streak, self._stall_count, self._best_progress = 0, 0, -np.inf
        return TeleopEvent(action=action, intervening=True, timestamp_s=now_s)

    def _fired(self, policy_action: np.ndarray | None, expert: np.ndarray) -> str | None:
        """Update every enabled trigger's state; the name of one that fired, else None."""
        cfg, fired = self.config, None
        if "distance" in cfg.triggers and policy_action is not None:
            far = float(np.linalg.norm(np.asarray(policy_action, dtype=np.float32) - expert)) > cfg.distance_threshold
            self._far_streak = self._far_streak + 1 if far else 0
            if self._far_streak >= cfg.distance_steps:
                fired = "distance"
        if "stall" in cfg.triggers:
            value = float(self._progress())
            if value > self._best_progress + cfg.stall_eps:
                self._best_progress, self._stall_count = value, 0
            else:
                self._stall_count += 1
            if self._stall_count >= cfg.stall_steps:
                fired = fired or "stall"
        if "random" in cfg.triggers and self._rng.random() < cfg.random_prob:
            fired = fired or "random"
        return fired
