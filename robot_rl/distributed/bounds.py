"""What values the learner takes from an actor: finite, actions inside the action space, rewards and
float observations within configured magnitudes (``--max-abs-reward``, ``--max-abs-observation``).

A finite but absurd value is as bad as NaN: a reward of 3e38 overflows the n-step sum to inf, a
state of 3e38 overflows the first layer, and either turns every loss and then every weight into
NaN. The learner checks each chunk before storing it (and refuses it, telling the actor why) and
each stored episode or chunk before replaying it after ``--resume`` (data from before the check).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import numpy as np

DEFAULT_MAX_ABS_REWARD = 1e4
"""Robot rewards are O(1) per step; gymnasium's largest per-step rewards are in the hundreds."""
DEFAULT_MAX_ABS_OBSERVATION = 1e6
"""State vectors hold SI quantities (m, rad, m/s, N); 1e6 leaves room for any of them."""
ACTION_TOLERANCE = 1e-3
"""Actions may exceed the space by this fraction of its width (float error of a backend's
``executed_action`` round trip)."""


@dataclasses.dataclass(frozen=True)
class ValueBounds:
    """The bounds; :meth:`problem` names the first value outside them. ``inf`` turns a magnitude check off."""

    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    max_abs_reward: float = DEFAULT_MAX_ABS_REWARD
    max_abs_observation: float = DEFAULT_MAX_ABS_OBSERVATION

    def __post_init__(self) -> None:
        if not (self.max_abs_reward > 0 and self.max_abs_observation > 0):
            raise ValueError("--max-abs-reward and --max-abs-observation must be > 0 (inf: no limit)")

    @classmethod
    def for_space(cls, action_space: Any, max_abs_reward: float = DEFAULT_MAX_ABS_REWARD,
                  max_abs_observation: float = DEFAULT_MAX_ABS_OBSERVATION) -> "ValueBounds":
        """Bounds for a Box ``action_space`` (anything with ``low`` and ``high``)."""
        low, high = (tuple(float(x) for x in np.asarray(v, np.float64).reshape(-1)) for v in (action_space.low, action_space.high))
        return cls(low, high, float(max_abs_reward), float(max_abs_observation))

    def problem(self, action: np.ndarray, reward: np.ndarray, observations: Mapping[str, np.ndarray]) -> str | None:
        """What is out of bounds in these steps (``action (T, A)``, ``reward (T,)``, observations by key
        ``(rows, ...)``), as one phrase; None when everything fits."""
        return (self._action_problem(np.asarray(action)) or _magnitude_problem("reward", np.asarray(reward), self.max_abs_reward,
                                                                               "--max-abs-reward")
                or self._observation_problem(observations))

    def _action_problem(self, action: np.ndarray) -> str | None:
        low, high = np.asarray(self.action_low), np.asarray(self.action_high)
        slack = ACTION_TOLERANCE * np.where(np.isfinite(high - low), high - low, 0.0) + 1e-6
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(action) | (action < low - slack) | (action > high + slack)
        if not bad.any():
            return None
        step, dim = (int(i) for i in np.argwhere(bad)[0])
        value = float(action[step, dim])
        where = f"action[{dim}] {value:.3g} at step {step}"
        if not math.isfinite(value):
            return f"{where} is not finite"
        return f"{where} is outside the action space [{low[dim]:g}, {high[dim]:g}]"

    def _observation_problem(self, observations: Mapping[str, np.ndarray]) -> str | None:
        for key in sorted(observations):
            value = np.asarray(observations[key])
            if value.dtype.kind == "f":
                problem = _magnitude_problem(f"observation {key!r}", value, self.max_abs_observation, "--max-abs-observation")
                if problem:
                    return problem
        return None


def _magnitude_problem(label: str, value: np.ndarray, limit: float, flag: str) -> str | None:
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(value) | (np.abs(value) > limit)
    if not bad.any():
        return None
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    found = float(value[index])
    where = f"{label} {found:.3g} at {'step' if value.ndim == 1 else 'row, column'} {index[0] if value.ndim == 1 else index[:2]}"
    if not math.isfinite(found):
        return f"{where} is not finite"
    return f"{where} is outside +-{limit:g} (the learner's {flag})"


def episode_problem(bounds: ValueBounds | None, episode: Any) -> str | None:
    """:meth:`ValueBounds.problem` of a stored :class:`~robot_rl.data.Episode` (None without bounds)."""
    return None if bounds is None else bounds.problem(episode.actions, episode.rewards, episode.observations)


def chunk_problem(bounds: ValueBounds | None, chunk: Any) -> str | None:
    """:meth:`ValueBounds.problem` of a :class:`~robot_rl.transport.Transitions` chunk (None without bounds)."""
    return None if bounds is None else bounds.problem(chunk.action, chunk.reward, chunk.observations)
