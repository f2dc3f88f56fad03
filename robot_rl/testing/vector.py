"""Checks for natively batched envs (:class:`robot_rl.vector.TaskVectorEnv` and its kind).

:func:`check_same_step_layout` compares one step's infos with what ``SyncVectorEnv`` in
``SAME_STEP`` mode gives over :class:`~robot_rl.env.RobotEnv` sub-envs of the same task;
:func:`check_seeded_determinism` steps two envs with the same seed and actions;
:func:`check_step_arrays` checks one step's arrays (shapes, dtypes, no aliasing).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np


def check_same_step_layout(ours: Mapping[str, Any], theirs: Mapping[str, Any], where: str = "") -> None:
    """``ours`` has every key of ``theirs`` with the same shapes, dtypes, masks and boolean values.

    Two documented differences are allowed: ours keeps a key that every sub-env lacked this step
    (all masked out), and ``final_obs`` is one dense array where ``SyncVectorEnv`` holds an
    object array of per-env observations.
    """
    extra = set(ours) - set(theirs)
    assert all(not np.any(ours[k if k.startswith("_") else "_" + k]) for k in extra), f"{where}: extra keys {extra}"
    assert set(theirs) <= set(ours), f"{where}: keys {sorted(ours)} vs {sorted(theirs)}"
    for key, value in theirs.items():
        if key == "final_info":
            check_same_step_layout(ours[key], value, f"{where} final_info")
        elif key == "final_obs":
            mask = theirs["_final_obs"]
            assert ours[key].shape[0] == len(mask) and ours[key].dtype == np.float32, f"{where}: final_obs"
            assert np.stack(value[mask]).shape == ours[key][mask].shape, f"{where}: final_obs rows"
        else:
            assert ours[key].shape == value.shape and ours[key].dtype == value.dtype, f"{where}: {key}"
            if key.startswith("_") or value.dtype == bool:
                np.testing.assert_array_equal(ours[key], value, err_msg=f"{where}: {key}")


def rollout(envs: Any, seed: int, steps: int = 40, scale: float = 0.3) -> list[np.ndarray]:
    """``steps`` seeded random steps of a vector env: observations, rewards and flags, in order."""
    obs, _ = envs.reset(seed=seed)
    shape = (steps, envs.num_envs, *envs.single_action_space.shape)
    actions = np.random.default_rng(seed).uniform(-scale, scale, shape).astype(np.float32)
    out = [obs]
    for action in actions:
        obs, reward, terminated, truncated, _ = envs.step(action)
        out += [obs, reward, terminated, truncated]
    return out


def check_seeded_determinism(envs: Any, make_other: Callable[[], Any], seed: int = 3) -> None:
    """The same seed gives the same rollout, on the same env again and on a second instance; another
    seed gives other starts."""
    first, again, other = rollout(envs, seed), rollout(envs, seed), rollout(make_other(), seed)
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert not np.array_equal(first[0], rollout(envs, seed + 1, steps=0)[0]), "another seed gave the same starts"


def check_step_arrays(envs: Any, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Reset with ``seed`` and take one random step: observations ``float32 (n, *obs)`` inside the
    observation space, rewards ``float64 (n,)``, boolean ``(n,)`` flags, ``executed_action``
    ``float32 (n, *action)``, and arrays that are plain writable numpy, not views a later step
    overwrites. Returns the step's observations and info for family-specific checks."""
    n, obs_shape, action_shape = envs.num_envs, envs.single_observation_space.shape, envs.single_action_space.shape
    obs, info = envs.reset(seed=seed)
    assert obs.shape == (n, *obs_shape) and obs.dtype == np.float32 and obs in envs.observation_space
    assert not info["success"].any() and info["_success"].all()
    envs.action_space.seed(seed)
    obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
    assert obs.shape == (n, *obs_shape) and obs.dtype == np.float32
    assert reward.shape == (n,) and reward.dtype == np.float64
    assert terminated.dtype == truncated.dtype == bool and terminated.shape == truncated.shape == (n,)
    assert info["success"].shape == (n,) and info["success"].dtype == bool
    assert info["executed_action"].shape == (n, *action_shape) and info["executed_action"].dtype == np.float32
    held, snapshot = obs, obs.copy()
    envs.step(envs.action_space.sample())
    np.testing.assert_array_equal(held, snapshot, err_msg="a later step changed an earlier step's observations")
    assert held.flags.writeable and info["success"].flags.writeable, "read-only arrays (JAX views?)"
    return obs, info
