"""Env interaction for training: act, store the executed transition, write finished episodes."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from robot_rl.data import EpisodeRecorder, write_episode
from robot_rl.data.schema import ObsSpec

Policy = Callable[[dict[str, np.ndarray]], np.ndarray]


def episode_metadata(task: str, obs_mode: str, spec: ObsSpec, space: gym.spaces.Box, control_hz: float, source: str) -> dict:
    """Metadata for episode files holding canonical observations."""
    return {
        "task": task,
        "obs_mode": obs_mode,
        "control_hz": control_hz,
        "observation_spec": {k: {"shape": list(s), "dtype": str(d)} for k, (s, d) in spec.shapes().items()},
        "action_spec": {"shape": list(space.shape), "low": space.low.tolist(), "high": space.high.tolist()},
        "source": source,
    }


def success_of(info: dict) -> float:
    """1.0/0.0 from ``info["success"]`` (or ``is_success``); NaN for envs that do not report it."""
    for key in ("success", "is_success"):
        if key in info:
            return float(bool(info[key]))
    return float("nan")


@dataclasses.dataclass
class EpisodeStats:
    ret: float
    length: int
    success: float
    intervention_steps: int = 0

    @property
    def intervention_rate(self) -> float:
        return self.intervention_steps / self.length if self.length else 0.0


class Collector:
    """Steps one env, adds each executed transition to ``buffer``, writes episodes to ``store``.

    The stored action is ``info["executed_action"]`` when the env reports it (robot_rl envs do:
    the action after the robot's safety limits), else the action sent. A step a human took over
    (``info["intervention"]``, see :class:`~robot_rl.wrappers.intervention.InterveneWithTeleop`)
    is flagged in the episode file and also added to ``intervention_buffer`` (the demo buffer,
    as HIL-SERL does), each run of consecutive intervened steps as one segment there.
    """

    def __init__(self, env: gym.Env, spec: ObsSpec, buffer: Any, store: pathlib.Path, metadata: dict, seed: int,
                 intervention_buffer: Any = None) -> None:
        self.env, self.spec, self.buffer, self.store = env, spec, buffer, store
        self.intervention_buffer = intervention_buffer
        self.recorder = EpisodeRecorder(metadata)
        self.seed = seed
        self.steps = 0
        self.intervention_steps = 0
        self._in_segment = False
        self._obs = self._reset(seed)
        self._ret, self._len, self._episode_interventions = 0.0, 0, 0

    def _reset(self, seed: int | None) -> dict[str, np.ndarray]:
        raw, _ = self.env.reset(seed=seed)
        obs = self.spec.canonical(raw)
        self.buffer.start_episode(obs)
        self.recorder.start(obs)
        return obs

    @property
    def obs(self) -> dict[str, np.ndarray]:
        return self._obs

    def step(self, policy: Policy) -> EpisodeStats | None:
        """One env step with ``policy``; returns the episode's stats when it ended."""
        action = np.asarray(policy(self._obs), dtype=np.float32)
        raw, reward, terminated, truncated, info = self.env.step(action)
        executed = np.asarray(info.get("executed_action", action), dtype=np.float32)
        obs = self.spec.canonical(raw)
        intervened = bool(info.get("intervention", False))
        step = (executed, float(reward), bool(terminated), bool(truncated), obs)
        self.buffer.add(*step)
        self.recorder.add(*step, intervention=intervened)
        self._store_intervention(intervened, step)
        self.steps += 1
        self._ret += float(reward)
        self._len += 1
        self._obs = obs
        if not (terminated or truncated):
            return None
        stats = EpisodeStats(self._ret, self._len, success_of(info), self._episode_interventions)
        success = None if np.isnan(stats.success) else bool(stats.success)
        write_episode(self.recorder.finish(success=success, intervention_steps=stats.intervention_steps), self.store)
        self._ret, self._len, self._episode_interventions = 0.0, 0, 0
        self._obs = self._reset(None)
        return stats

    def _store_intervention(self, intervened: bool, step: tuple) -> None:
        """Count an intervened step and copy it into the intervention buffer."""
        if intervened:
            self.intervention_steps += 1
            self._episode_interventions += 1
            if self.intervention_buffer is not None:
                if not self._in_segment:
                    self.intervention_buffer.start_episode(self._obs)
                self.intervention_buffer.add(*step)
        self._in_segment = intervened and not (step[2] or step[3])


def add_intervention_segments(buffer: Any, episode: Any) -> int:
    """Copy the intervened steps of an on-disk episode into ``buffer`` (one segment per run of
    consecutive intervened steps); returns how many were added."""
    flags = np.asarray(episode.intervention, dtype=bool)
    added = 0
    for t in np.flatnonzero(flags):
        if t == 0 or not flags[t - 1]:
            buffer.start_episode({k: v[t] for k, v in episode.observations.items()})
        next_obs = {k: v[t + 1] for k, v in episode.observations.items()}
        buffer.add(episode.actions[t], float(episode.rewards[t]), bool(episode.terminated[t]), bool(episode.truncated[t]), next_obs)
        added += 1
    return added
