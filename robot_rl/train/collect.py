"""Env interaction for training: act on N sub-envs, store the executed transitions, write finished episodes."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Callable

import numpy as np

from gymnasium.vector import VectorEnv

from robot_rl.data import EpisodeRecorder, write_episode
from robot_rl.data.schema import ObsSpec
from robot_rl.vector import final_observations, lane_infos

Policy = Callable[[dict[str, np.ndarray]], np.ndarray]


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
    """Steps a vector env of N sub-envs (N = 1 included, see :mod:`robot_rl.vector`), adds each
    executed transition to ``buffer`` (sub-env i in lane i) and writes every finished episode to
    ``store``.

    The stored action is ``info["executed_action"]`` when the env reports it (robot_rl envs do:
    the action after the robot's safety limits), else the action sent. A step a human took over
    (``info["intervention"]``, see :class:`~robot_rl.human.intervene.InterveneWithTeleop`)
    is flagged in the episode file and also added to ``intervention_buffer`` (the demo buffer,
    as HIL-SERL does), each run of consecutive intervened steps as one segment there.
    """

    def __init__(self, envs: VectorEnv, spec: ObsSpec, buffer: Any, store: pathlib.Path, metadata: dict, seed: int,
                 intervention_buffer: Any = None) -> None:
        self.envs, self.spec, self.buffer, self.store = envs, spec, buffer, store
        self.num_envs = envs.num_envs
        self.intervention_buffer = intervention_buffer
        self.recorders = [EpisodeRecorder(metadata) for _ in range(self.num_envs)]
        self.steps = 0  # transitions, all sub-envs together
        self.intervention_steps = 0
        self._in_segment = np.zeros(self.num_envs, bool)
        self._ret = np.zeros(self.num_envs)
        self._len = np.zeros(self.num_envs, np.int64)
        self._interventions = np.zeros(self.num_envs, np.int64)
        raw, _ = envs.reset(seed=seed)
        self._obs = spec.canonical_batch(raw)
        for lane in range(self.num_envs):
            self._start(lane, self._obs)

    @property
    def obs(self) -> dict[str, np.ndarray]:
        """The current observations, ``(N, ...)`` per key."""
        return self._obs

    def _start(self, lane: int, obs: dict[str, np.ndarray]) -> None:
        first = {key: value[lane] for key, value in obs.items()}
        self.buffer.start_episode(first, lane)
        self.recorders[lane].start(first)

    def step(self, policy: Policy) -> list[EpisodeStats]:
        """One step of every sub-env with ``policy`` (batched observations -> ``(N, A)`` actions);
        returns the stats of the episodes that ended."""
        actions = np.asarray(policy(self._obs), dtype=np.float32)
        raw, rewards, terminated, truncated, infos = self.envs.step(actions)
        lanes = lane_infos(infos, self.num_envs)
        executed = np.stack([np.asarray(info.get("executed_action", a), np.float32) for info, a in zip(lanes, actions)])
        next_obs = self.spec.canonical_batch(final_observations(raw, infos))
        intervened = np.array([bool(info.get("intervention", False)) for info in lanes])
        self.buffer.add_batch(executed, rewards, terminated, truncated, next_obs)
        self._record(executed, rewards, terminated, truncated, next_obs, intervened)
        self.steps += self.num_envs
        self._ret += rewards
        self._len += 1
        self._obs = self.spec.canonical_batch(raw)
        finished = []
        for lane in np.flatnonzero(terminated | truncated):
            finished.append(self._finish(int(lane), lanes[lane]))
        return finished

    def _record(self, executed, rewards, terminated, truncated, next_obs, intervened) -> None:
        """The step of every lane into its episode recorder (and intervened ones into the demo buffer)."""
        for lane in range(self.num_envs):
            following = {key: value[lane] for key, value in next_obs.items()}
            step = (executed[lane], float(rewards[lane]), bool(terminated[lane]), bool(truncated[lane]), following)
            self.recorders[lane].add(*step, intervention=bool(intervened[lane]))
            self._store_intervention(lane, bool(intervened[lane]), step)

    def _finish(self, lane: int, info: dict) -> EpisodeStats:
        """Write lane's finished episode and start its next one (the vector env already reset it)."""
        stats = EpisodeStats(float(self._ret[lane]), int(self._len[lane]), success_of(info), int(self._interventions[lane]))
        success = None if np.isnan(stats.success) else bool(stats.success)
        write_episode(self.recorders[lane].finish(success=success, intervention_steps=stats.intervention_steps), self.store)
        self._ret[lane], self._len[lane], self._interventions[lane] = 0.0, 0, 0
        self._start(lane, self._obs)
        return stats

    def _store_intervention(self, lane: int, intervened: bool, step: tuple) -> None:
        """Count an intervened step and copy it into the intervention buffer."""
        if intervened:
            self.intervention_steps += 1
            self._interventions[lane] += 1
            if self.intervention_buffer is not None:
                if not self._in_segment[lane]:
                    self.intervention_buffer.start_episode({key: value[lane] for key, value in self._obs.items()}, lane)
                self.intervention_buffer.add(*step, lane=lane)
        self._in_segment[lane] = intervened and not (step[2] or step[3])


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
