"""N envs stepped as one: every robot_rl training loop sees a gymnasium ``VectorEnv`` (STYLE.md 17).

Three ways to get one, all with the same interface:

* ``vectorization="sync"``: N envs stepped one after the other in this process
  (``gymnasium.vector.SyncVectorEnv``; N = 1 is the single-env case);
* ``vectorization="subprocess"``: N envs in N worker processes (``AsyncVectorEnv``, spawned, so
  MuJoCo/EGL and torch's threads are never forked);
* a **natively batched** backend (registered with ``batched=True``, e.g. a JAX simulator): its
  factory returns the whole ``VectorEnv``.

The contract every robot_rl vector env keeps (gymnasium's ``AutoresetMode.SAME_STEP``): a
sub-env whose episode ended in ``step()`` is reset in the same call; the returned observation
row is the reset one; ``info["final_obs"]`` (with the mask ``info["_final_obs"]``) holds the
terminal observation and ``info["final_info"]`` that step's info. Per-step infos are arrays
with a mask per key (``info["success"]``, ``info["_success"]``); robot_rl envs put
``success`` and ``executed_action`` (the action after the backend's safety limits) there.
:func:`lane_infos` turns one step's infos back into one dict per sub-env.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

VECTORIZATIONS = ("sync", "subprocess")
_FINAL = ("final_obs", "final_info")


def vectorize(make_env: Callable[[], gym.Env], num_envs: int = 1, vectorization: str = "sync") -> VectorEnv:
    """``num_envs`` copies of ``make_env()`` as one vector env (SAME_STEP autoreset).

    With ``subprocess`` the factory is pickled to the workers: make it a module-level function
    or a ``functools.partial`` of one.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    if vectorization not in VECTORIZATIONS:
        raise ValueError(f"unknown vectorization {vectorization!r}; known: {list(VECTORIZATIONS)}")
    factories = [make_env] * num_envs
    if vectorization == "sync":
        return SyncVectorEnv(factories, copy=True, autoreset_mode=AutoresetMode.SAME_STEP)
    return AsyncVectorEnv(factories, copy=True, context="spawn", autoreset_mode=AutoresetMode.SAME_STEP)


def make_vector(task: str, backend: str = "sim", obs: str = "state", num_envs: int = 1, vectorization: str = "sync",
                **overrides: Any) -> VectorEnv:
    """``num_envs`` envs of a registered task: a natively batched backend's own vector env, or
    :func:`vectorize` over ``robot_rl.make`` (see the module docstring)."""
    from robot_rl.registry import load, make, make_parts

    task_obj, backend_entry, backend_options, env_options = make_parts(task, backend, obs, overrides)
    if not backend_entry.batched:
        return vectorize(functools.partial(make, task, backend, obs, **overrides), num_envs, vectorization)
    if env_options:
        raise ValueError(f"backend {backend!r} is natively batched; env options {sorted(env_options)} do not apply to it")
    envs = load(backend_entry.entry_point)(task_obj, obs, num_envs, **backend_options)
    check_vector_env(envs, num_envs)
    return envs


def check_vector_env(envs: VectorEnv, num_envs: int) -> None:
    """A vector env keeps the contract above: the size asked for and SAME_STEP autoreset."""
    if not isinstance(envs, VectorEnv):
        raise TypeError(f"expected a gymnasium VectorEnv, got {type(envs).__name__}")
    if envs.num_envs != num_envs:
        raise ValueError(f"asked for {num_envs} envs, the vector env has {envs.num_envs}")
    mode = envs.metadata.get("autoreset_mode")
    if mode != AutoresetMode.SAME_STEP:
        raise ValueError(f"robot_rl vector envs autoreset in SAME_STEP mode; {type(envs).__name__} says {mode!r}")


def lane_infos(infos: Mapping[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """One step's vector infos as one dict per sub-env; a sub-env whose episode ended gets its
    final step's info (not the reset's)."""
    final, ended = infos.get("final_info"), infos.get("_final_info")
    return [_unpack(final, i) if final is not None and ended is not None and ended[i] else _unpack(infos, i)
            for i in range(num_envs)]


def _unpack(infos: Mapping[str, Any], i: int) -> dict[str, Any]:
    out = {}
    for key, value in infos.items():
        if key.startswith("_") or key in _FINAL:
            continue
        mask = infos.get("_" + key)
        if mask is not None and not mask[i]:
            continue
        out[key] = _unpack(value, i) if isinstance(value, Mapping) else value[i]
    return out


def final_observations(obs: Any, infos: Mapping[str, Any]) -> Any:
    """The batch of observations each sub-env's step led to: the terminal observation where the
    episode ended (``info["final_obs"]``), the returned one elsewhere (a copy; ``obs`` is kept).

    ``final_obs`` may be gymnasium's object array of per-env observations or, from a natively
    batched env, a dense batch (an array, or a dict of arrays) laid out like ``obs``.
    """
    ended = infos.get("_final_obs")
    if ended is None or not np.any(ended):
        return obs
    final, rows = infos["final_obs"], np.flatnonzero(ended)
    if isinstance(obs, Mapping):
        out = {key: np.array(value, copy=True) for key, value in obs.items()}
        for key, value in out.items():
            value[rows] = [final[i][key] for i in rows] if _per_env(final) else np.asarray(final[key])[rows]
        return out
    out = np.array(obs, copy=True)
    out[rows] = [final[i] for i in rows] if _per_env(final) else np.asarray(final)[rows]
    return out


def _per_env(final: Any) -> bool:
    """gymnasium's layout: an object array holding one observation per sub-env."""
    return isinstance(final, np.ndarray) and final.dtype == object
