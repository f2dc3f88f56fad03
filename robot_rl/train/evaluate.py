"""Deterministic evaluation episodes, optionally filmed (one env), or batched (a natively batched backend)."""

from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

from robot_rl.data.schema import ObsSpec
from robot_rl.train.collect import success_of
from robot_rl.vector import lane_infos
from robot_rl.video import VideoWriter


def evaluate(env: gym.Env, agent, spec: ObsSpec, episodes: int, seed: int, video: VideoWriter | None = None, video_episodes: int = 0,
             between_steps: Callable[[], None] | None = None) -> tuple[float, float]:
    """Run ``episodes`` episodes with ``agent.act(obs, deterministic=True)``.

    Returns (success rate, mean return); an episode succeeds if ``info["success"]`` was true at
    any step (an env that keeps running after success, e.g. to train on a learned reward, counts
    too); the success rate is NaN for envs without ``success``. Episode i is seeded ``seed + i``
    so every evaluation sees the same starts. ``between_steps`` runs after every step (the
    distributed learner keeps serving its actors there).
    """
    returns, successes = [], []
    for i in range(episodes):
        filming = video is not None and i < video_episodes
        raw, _ = env.reset(seed=seed + i)
        done, ret, t, succeeded = False, 0.0, 0, float("nan")
        while not done:
            if filming:
                video.add(env.render(), f"eval episode {i + 1} step {t}")
            raw, reward, terminated, truncated, info = env.step(agent.act(spec.canonical(raw), deterministic=True))
            ret, t, done = ret + float(reward), t + 1, terminated or truncated
            succeeded = np.fmax(succeeded, success_of(info))
            if between_steps is not None:
                between_steps()
        if filming:
            video.add(env.render(), f"eval episode {i + 1} step {t} return {ret:.2f}")
        returns.append(ret)
        successes.append(float(succeeded))
    success = float(np.mean(successes)) if not np.isnan(successes).any() else float("nan")
    return success, float(np.mean(returns))


def evaluate_batched(envs: VectorEnv, agent, spec: ObsSpec, seed: int) -> tuple[float, float]:
    """One deterministic episode in each sub-env of a (natively batched) vector env, all at once:
    sub-env i starts from seed ``seed + i``; its first episode counts, later ones are ignored.
    Returns (success rate, mean return) as :func:`evaluate` does."""
    n = envs.num_envs
    raw, _ = envs.reset(seed=seed)
    returns, succeeded, running = np.zeros(n), np.full(n, np.nan), np.ones(n, bool)
    while running.any():
        raw, rewards, terminated, truncated, infos = envs.step(agent.act_batch(spec.canonical_batch(raw), deterministic=True))
        returns += np.where(running, rewards, 0.0)
        for i, info in enumerate(lane_infos(infos, n)):
            if running[i]:
                succeeded[i] = np.fmax(succeeded[i], success_of(info))
        running &= ~(terminated | truncated)
    success = float(np.mean(succeeded)) if not np.isnan(succeeded).any() else float("nan")
    return success, float(np.mean(returns))
