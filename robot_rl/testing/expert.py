"""Run a task's scripted expert for one episode, the way the task tests and benchmarks check it."""

from __future__ import annotations

from typing import Any, NamedTuple


class ExpertEpisode(NamedTuple):
    success: bool
    terminated: bool
    total_reward: float
    steps: int


def run_expert(env: Any, seed: int) -> ExpertEpisode:
    """Reset ``env`` (a robot_rl env) with ``seed`` and step the task's expert on the true state until
    the episode ends; returns the last step's ``info["success"]``, whether it terminated, the summed
    reward and the number of steps."""
    env.reset(seed=seed)
    task, total, steps = env.unwrapped.task, 0.0, 0
    while True:
        _, reward, terminated, truncated, info = env.step(task.expert(env.unwrapped.state))
        total, steps = total + reward, steps + 1
        if terminated or truncated:
            return ExpertEpisode(bool(info["success"]), bool(terminated), total, steps)
