"""The conformance suite every robot_rl env passes, sim and real-over-fake alike.

``check_conformance(make_env)`` builds envs with ``make_env()`` and checks:

* gymnasium's ``check_env`` (API, spaces, seeding);
* seeded determinism: same seed + same actions -> identical observations, rewards and flags;
* every observation lies in ``observation_space``; rewards are finite floats;
* no aliasing: an observation does not change when the env steps again;
* termination and truncation are distinct (never both) and truncation comes at the time limit;
* bad actions (NaN, inf, wrong shape) raise ``ValueError`` naming the expected shape.
"""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env


def _copy(obs: Any) -> Any:
    return {k: np.array(v, copy=True) for k, v in obs.items()} if isinstance(obs, dict) else np.array(obs, copy=True)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    return np.array_equal(a, b)


def rollout(env: gym.Env, seed: int, steps: int) -> list[tuple]:
    """``steps`` seeded random steps (resetting at episode ends), as copied tuples."""
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [(_copy(obs), 0.0, False, False)]
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        out.append((_copy(obs), reward, terminated, truncated))
        if terminated or truncated:
            obs, _ = env.reset()
    return out


def check_api(env: gym.Env) -> None:
    check_env(env.unwrapped, skip_render_check=True)


def check_determinism(make_env: Callable[[], gym.Env], steps: int) -> None:
    first, second = make_env(), make_env()
    try:
        a, b = rollout(first, 7, steps), rollout(second, 7, steps)
    finally:
        first.close()
        second.close()
    for t, (x, y) in enumerate(zip(a, b)):
        if not (_equal(x[0], y[0]) and x[1:] == y[1:]):
            raise AssertionError(f"two envs with seed 7 diverge at step {t}")


def check_spaces_and_aliasing(env: gym.Env, steps: int) -> None:
    obs, _ = env.reset(seed=3)
    held, snapshot = obs, _copy(obs)
    for t in range(steps):
        if obs not in env.observation_space:
            raise AssertionError(f"observation at step {t} is outside observation_space")
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        if not (isinstance(reward, float) and np.isfinite(reward)):
            raise AssertionError(f"reward must be a finite float, got {reward!r}")
        if terminated and truncated:
            raise AssertionError("terminated and truncated are both set: they must stay distinct")
        if not _equal(held, snapshot):
            raise AssertionError(f"an earlier observation changed when the env stepped (step {t}): aliasing")
        held, snapshot = obs, _copy(obs)
        if terminated or truncated:
            obs, _ = env.reset()


def check_time_limit(env: gym.Env, hold_action: np.ndarray) -> None:
    """With an action that achieves nothing, the episode ends by truncation at the time limit."""
    limit = env.unwrapped.max_episode_steps
    env.reset(seed=11)
    for t in range(1, limit + 1):
        _, _, terminated, truncated, _ = env.step(hold_action)
        if terminated:
            raise AssertionError(f"holding still terminated the episode at step {t}")
        if truncated != (t == limit):
            raise AssertionError(f"truncated={truncated} at step {t}, time limit {limit}")


def check_bad_actions(env: gym.Env) -> None:
    env.reset(seed=0)
    shape = env.action_space.shape
    good = np.zeros(shape, dtype=np.float32)
    bad = [np.full(shape, np.nan, dtype=np.float32), np.full(shape, np.inf, dtype=np.float32), np.zeros((shape[0] + 1,), dtype=np.float32)]
    for action in bad:
        try:
            env.step(action)
        except ValueError as err:
            if str(shape) not in str(err):
                raise AssertionError(f"the error for a bad action should name the shape {shape}: {err}") from err
        else:
            raise AssertionError(f"env.step accepted a bad action {action}")
    env.step(good)  # and the env still works


def check_conformance(make_env: Callable[[], gym.Env], hold_action: np.ndarray, steps: int = 30) -> None:
    """Run the whole suite. ``hold_action`` must make no progress on the task (for the time limit)."""
    env = make_env()
    try:
        check_api(env)
        check_spaces_and_aliasing(env, steps)
        check_time_limit(env, hold_action)
        check_bad_actions(env)
    finally:
        env.close()
    check_determinism(make_env, steps)
