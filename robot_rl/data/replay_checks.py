"""What a replay buffer refuses, with the error it says: observations, steps, episodes, ``out``.

``shapes`` is :meth:`ObsSpec.shapes` (key -> (shape, dtype)); ``name`` names the buffer in errors.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from robot_rl.data.episodes import Episode
from robot_rl.data.schema import STATE, Batch

Shapes = Mapping[str, tuple[tuple[int, ...], np.dtype]]


def check_obs(name: str, shapes: Shapes, obs: Mapping[str, np.ndarray], label: str, batch: int | None = None) -> dict[str, np.ndarray]:
    """One canonical observation (or ``batch`` of them, leading axis) with the buffer's keys, shapes and
    dtypes and a finite ``state``."""
    if not isinstance(obs, Mapping) or set(obs) != set(shapes):
        got = sorted(obs) if isinstance(obs, Mapping) else type(obs).__name__
        raise ValueError(f"replay {name!r}: {label} must be a dict with keys {sorted(shapes)} "
                         f"(canonical, see ObsSpec.canonical), got {got}")
    out = {}
    for key, (shape, dtype) in shapes.items():
        value = np.asarray(obs[key])
        expected = shape if batch is None else (batch, *shape)
        if value.shape != expected or value.dtype != dtype:
            raise ValueError(f"replay {name!r}: {label}[{key!r}] must be {dtype} of shape {expected}, "
                             f"got {value.dtype} of shape {value.shape}")
        if key == STATE and not np.all(np.isfinite(value)):
            raise ValueError(f"replay {name!r}: {label}[{key!r}] (shape {expected}) holds NaN or inf: {value}")
        out[key] = value
    return out


def check_step(name: str, action_dim: int, action: Any, reward: Any) -> tuple[np.ndarray, np.float32]:
    """One step's finite float action of shape ``(action_dim,)`` and finite scalar reward."""
    shape = (action_dim,)
    action = np.asarray(action)
    if action.shape != shape or action.dtype.kind not in "fiu":
        raise ValueError(f"replay {name!r}: action must be a float array of shape {shape}, "
                         f"got {action.dtype} of shape {action.shape}")
    if not np.all(np.isfinite(action)):
        raise ValueError(f"replay {name!r}: action (shape {shape}) holds NaN or inf: {action}")
    reward_array = np.asarray(reward)
    if reward_array.shape != () or reward_array.dtype.kind not in "fiub" or not np.isfinite(reward_array):
        raise ValueError(f"replay {name!r}: reward must be a finite scalar (shape ()), got {reward!r}")
    return action.astype(np.float32, copy=False), np.float32(reward_array)


def check_steps(name: str, action_dim: int, actions: Any, rewards: Any, terminated: Any,
                truncated: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """N steps at once: actions ``(N, action_dim)``, rewards, terminated, truncated ``(N,)``; all finite."""
    rewards = np.asarray(rewards)
    if rewards.ndim != 1 or rewards.size == 0 or rewards.dtype.kind not in "fiub" or not np.all(np.isfinite(rewards)):
        raise ValueError(f"replay {name!r}: rewards must be N >= 1 finite numbers (shape (N,)), got {rewards!r}")
    n = rewards.shape[0]
    actions = np.asarray(actions)
    if actions.shape != (n, action_dim) or actions.dtype.kind not in "fiu" or not np.all(np.isfinite(actions)):
        raise ValueError(f"replay {name!r}: actions must be finite floats of shape {(n, action_dim)}, "
                         f"got {actions.dtype} of shape {actions.shape}")
    flags = []
    for label, value in (("terminated", terminated), ("truncated", truncated)):
        value = np.asarray(value)
        if value.shape != (n,) or value.dtype.kind not in "biu":
            raise ValueError(f"replay {name!r}: {label} must be {n} flags (shape ({n},)), got {value!r}")
        flags.append(value.astype(np.bool_))
    return actions.astype(np.float32, copy=False), rewards.astype(np.float32), flags[0], flags[1]


def check_episode(name: str, shapes: Shapes, action_dim: int, episode: Episode) -> dict[str, np.ndarray]:
    """The episode's observations, after checking keys, shapes, dtypes and finiteness."""
    observations, steps = episode.observations, len(episode.actions)
    if steps < 1:
        raise ValueError(f"replay {name!r}: an episode needs at least one step, got 0")
    if set(observations) != set(shapes):
        raise ValueError(f"replay {name!r}: episode observation keys {sorted(observations)} do not match "
                         f"the buffer's {sorted(shapes)} (state-mode episodes hold only 'state')")
    expected = {f"observations[{key!r}]": (observations[key], (steps + 1, *shape), dtype)
                for key, (shape, dtype) in shapes.items()}
    expected["actions"] = (episode.actions, (steps, action_dim), np.dtype(np.float32))
    expected["rewards"] = (episode.rewards, (steps,), np.dtype(np.float32))
    expected["terminated"] = (episode.terminated, (steps,), np.dtype(np.bool_))
    for label, (array, shape, dtype) in expected.items():
        if array.shape != shape or array.dtype != dtype:
            raise ValueError(f"replay {name!r}: episode {label} must be {dtype} of shape {shape}, "
                             f"got {array.dtype} of shape {array.shape}")
    for label in (f"observations[{STATE!r}]", "actions", "rewards"):
        array, shape, _ = expected[label]
        if not np.all(np.isfinite(array)):
            raise ValueError(f"replay {name!r}: episode {label} (shape {shape}) holds NaN or inf")
    return observations


def check_out(name: str, shapes: Shapes, action_dim: int, out: Batch, size: int) -> None:
    """``out`` must hold writeable contiguous numpy arrays laid out like ``sample(size)``'s."""
    layout = {f"{part}/{key}": ((size, *shape), dtype) for part in ("obs", "next_obs") for key, (shape, dtype) in shapes.items()}
    layout.update(action=((size, action_dim), np.float32), reward=((size,), np.float32), terminated=((size,), np.float32))
    got = dict(out.items()) if isinstance(out, Batch) else {}
    if got.keys() != layout.keys():
        raise ValueError(f"replay {name!r}: out must be a Batch with {sorted(layout)}, got {sorted(got)}")
    for key, (shape, dtype) in layout.items():
        value = got[key]
        if not (isinstance(value, np.ndarray) and value.shape == shape and value.dtype == dtype
                and value.flags.c_contiguous and value.flags.writeable):
            found = f"{value.dtype} of shape {value.shape}" if isinstance(value, np.ndarray) else type(value)
            raise ValueError(f"replay {name!r}: out {key} must be a writeable contiguous numpy "
                             f"{np.dtype(dtype)} array of shape {shape}, got {found}")
