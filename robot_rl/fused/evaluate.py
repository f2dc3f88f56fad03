"""Hold evaluation of a trained actor in another simulator (MuJoCo through RobotEnv): the
sim-to-sim check of a policy trained in the JAX sim.

Each episode runs the deterministic action to its end; its score is the RMS of the distance to the
target (the ``pos_error_m`` part of the observation, :attr:`robot_rl.env.RobotEnv.state_layout`)
over its final second; an episode that terminates (a crash, for quad_hover) counts as crashed and
is left out of the error statistics.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from robot_rl.envs import control_hz
from robot_rl.video import VideoWriter


@dataclasses.dataclass(frozen=True)
class HoldResult:
    """Final-second position error RMS [m] per finished (not crashed) episode, and the crash count."""

    episodes: int
    crashes: int
    final_rms_m: tuple[float, ...]
    tolerance_m: float

    @property
    def crash_rate(self) -> float:
        return self.crashes / self.episodes

    @property
    def within_tolerance(self) -> int:
        """Episodes that neither crashed nor ended farther than ``tolerance_m`` (RMS) from the target."""
        return int(np.sum(np.asarray(self.final_rms_m) <= self.tolerance_m))

    def metrics(self) -> dict[str, float]:
        rms = np.asarray(self.final_rms_m) if self.final_rms_m else np.asarray([np.nan])
        return {"eval/crash_rate": self.crash_rate, "eval/final_rms_median_m": float(np.median(rms)),
                "eval/final_rms_max_m": float(np.max(rms)), "eval/final_rms_mean_m": float(np.mean(rms)),
                "eval/within_tolerance_rate": self.within_tolerance / self.episodes}

    def line(self) -> str:
        m = self.metrics()
        return (f"{self.within_tolerance}/{self.episodes} episodes within {self.tolerance_m * 100:.0f} cm RMS over the "
                f"final second | crash rate {self.crash_rate:.0%} | final-second RMS median "
                f"{m['eval/final_rms_median_m'] * 100:.2f} cm, max {m['eval/final_rms_max_m'] * 100:.2f} cm")


def _episode(env: Any, act: Callable[[np.ndarray], np.ndarray], seed: int, final_steps: int,
             video: VideoWriter | None) -> tuple[bool, float]:
    """One episode: (crashed, final-second error RMS [m])."""
    errors = env.unwrapped.state_layout["pos_error_m"]
    obs, _ = env.reset(seed=seed)
    distances, done, terminated = [], False, False
    while not done:
        if video is not None:
            video.add(env.render(), f"seed {seed} step {len(distances)} error {np.linalg.norm(obs[errors]) * 100:.1f} cm")
        obs, _, terminated, truncated, _ = env.step(act(obs))
        distances.append(float(np.linalg.norm(obs[errors])))
        done = terminated or truncated
    return bool(terminated), float(np.sqrt(np.mean(np.square(distances[-final_steps:]))))


def evaluate_hold(env: Any, act: Callable[[np.ndarray], np.ndarray], episodes: int, seed: int, tolerance_m: float,
                  video: VideoWriter | None = None, video_episodes: int = 0,
                  progress: Callable[[int], None] | None = None) -> HoldResult:
    """``episodes`` episodes from seeds ``seed, seed + 1, ...``; ``act(obs) -> action`` is the
    deterministic policy; the first ``video_episodes`` are filmed into ``video``."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    final_steps = max(1, round(control_hz(env)))
    crashes, rms = 0, []
    for i in range(episodes):
        crashed, error = _episode(env, act, seed + i, final_steps, video if i < video_episodes else None)
        crashes += crashed
        if not crashed:
            rms.append(error)
        if progress is not None:
            progress(i + 1)
    return HoldResult(episodes, crashes, tuple(rms), tolerance_m)
