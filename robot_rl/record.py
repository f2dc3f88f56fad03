"""Record episodes from a policy (the task's scripted expert today) into episode files."""

from __future__ import annotations

import dataclasses
import pathlib
import time
from typing import Callable

import numpy as np

from robot_rl.data import Episode, EpisodeRecorder, write_episode
from robot_rl.env import RobotEnv
from robot_rl.video import VideoWriter

Policy = Callable[[RobotEnv], np.ndarray]


def expert_policy(env: RobotEnv) -> np.ndarray:
    """The task's scripted expert, acting on the env's (privileged in sim) backend state."""
    return env.task.expert(env.state)


def episode_metadata(env: RobotEnv, backend: str, source: str) -> dict:
    """The per-run metadata every episode file carries."""
    return {
        "task": env.task.name,
        "backend": backend,
        "obs_mode": env.obs_mode,
        "control_hz": env.control_hz,
        "observation_spec": env.observation_spec(),
        "action_spec": {
            "shape": list(env.action_space.shape),
            "low": env.action_space.low.tolist(),
            "high": env.action_space.high.tolist(),
        },
        "source": source,
    }


@dataclasses.dataclass
class RecordSummary:
    episodes: int = 0
    successes: int = 0
    kept: int = 0
    steps: int = 0
    files: list[pathlib.Path] = dataclasses.field(default_factory=list)
    video: pathlib.Path | None = None


def run_episode(env: RobotEnv, policy: Policy, seed: int, recorder: EpisodeRecorder, video: VideoWriter | None, label: str) -> Episode:
    """One episode: reset, act until terminated or truncated; stores the executed actions."""
    obs, info = env.reset(seed=seed)
    recorder.start(obs)
    done, step = False, 0
    while not done:
        if video is not None:
            video.add(env.render(), f"{label} step {step}")
        obs, reward, terminated, truncated, info = env.step(policy(env))
        recorder.add(info["executed_action"], reward, terminated, truncated, obs)
        done, step = terminated or truncated, step + 1
    if video is not None:
        video.add(env.render(), f"{label} step {step} {'success' if info['success'] else 'failure'}")
    return recorder.finish(seed=seed, success=bool(info["success"]), created_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def record(
    env: RobotEnv,
    policy: Policy,
    out: pathlib.Path,
    episodes: int,
    seed: int,
    backend: str,
    source: str,
    video_episodes: int = 0,
    keep_failures: bool = False,
) -> RecordSummary:
    """Record ``episodes`` episodes into ``out`` (one file each), printing a line per episode."""
    recorder = EpisodeRecorder(episode_metadata(env, backend, source))
    summary = RecordSummary()
    video = VideoWriter(out / "demo.mp4", fps=env.control_hz) if video_episodes > 0 else None
    try:
        for i in range(episodes):
            start = time.perf_counter()
            rendering = video if i < video_episodes else None
            episode = run_episode(env, policy, seed + i, recorder, rendering, f"episode {i + 1}")
            summary.episodes += 1
            summary.successes += episode.success
            summary.steps += len(episode)
            kept = episode.success or keep_failures
            if kept:
                summary.files.append(write_episode(episode, out))
                summary.kept += 1
            rate = len(episode) / max(time.perf_counter() - start, 1e-9)
            outcome = "success" if episode.success else "failure"
            where = summary.files[-1].name if kept else "discarded"
            print(f"episode {i + 1}/{episodes}: {outcome} in {len(episode)} steps ({rate:.0f} steps/s) -> {where}", flush=True)
    finally:
        if video is not None:
            summary.video = video.close()
    return summary
