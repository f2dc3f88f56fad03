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
from typing import Any, Callable, ClassVar, Mapping

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from robot_rl.env import check_action

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


# ------------------------------------------------------------------------------ natively batched simulators
class TaskVectorEnv(VectorEnv):
    """What a natively batched simulator of one task shares (e.g. the JAX puck, car, quadrotor):
    spaces from the task's declarations, seeding, action checks and the SAME_STEP info layout.

    A subclass owns its batched state and writes two methods:

    * ``_reset_batch(seed)`` -> ``obs (N, D)``: reset every sub-env; ``seed`` (an int) starts a new
      random stream, ``None`` continues the current one;
    * ``_step_batch(actions)`` -> ``(obs, reward, terminated, truncated, values, final_obs)``:
      ``values`` maps info keys to per-sub-env arrays of the step (``success``,
      ``executed_action``, ``action_clipped``, metrics...), ``final_obs`` is the terminal
      observation where an episode ended (anything elsewhere); sub-envs that ended are already
      reset in ``obs``.

    The infos are then laid out as ``SyncVectorEnv`` lays out :class:`~robot_rl.env.RobotEnv`
    sub-envs (:func:`same_step_info`). ``info_dtypes`` fixes the dtype of extra info values.
    """

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.SAME_STEP}
    info_dtypes: ClassVar[dict[str, Any]] = {}

    def __init__(self, task: Any, family: str, num_envs: int, backend_spec: Any, control_hz: float | None = None,
                 needs: str = "arrays") -> None:
        if not (isinstance(num_envs, (int, np.integer)) and num_envs >= 1):
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        if getattr(task, "family", None) != family or not hasattr(task, needs):
            raise ValueError(f"the batched {family} backend runs {family} tasks written as array functions "
                             f"(`task.{needs}`); {getattr(task, 'name', task)!r} is not one")
        self.task, self.num_envs, self.backend_spec = task, int(num_envs), backend_spec
        self.autoreset_mode = AutoresetMode.SAME_STEP
        self.control_hz = float(control_hz or task.control_hz)
        self.max_episode_steps = task.max_episode_steps
        self.state_layout, start = {}, 0
        for name, size in task.state_layout(backend_spec, "state").items():
            self.state_layout[name], start = slice(start, start + size), start + size
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(start,), dtype=np.float32)
        self.single_action_space = task.action_space(backend_spec)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._started = False

    def _reset_batch(self, seed: int | None) -> np.ndarray:
        raise NotImplementedError

    def _step_batch(self, actions: np.ndarray) -> tuple:
        raise NotImplementedError

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Reset every sub-env; ``seed`` (one int for the whole batch) makes it reproducible."""
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError(f"{type(self).__name__}.reset takes one int seed for the whole batch, got {seed!r}")
        super().reset(seed=seed)
        first = int(seed) if seed is not None else None if self._started else int(self.np_random.integers(2**31))
        obs = self._reset_batch(first)
        self._started = True
        return np.array(obs, dtype=np.float32), {"success": np.zeros(self.num_envs, bool),
                                                  "_success": np.ones(self.num_envs, bool)}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = check_action(actions, self.action_space.shape, "actions (num_envs, action dim)")
        obs, reward, terminated, truncated, values, final_obs = self._step_batch(actions)
        terminated, truncated = np.array(terminated, dtype=bool), np.array(truncated, dtype=bool)
        info = same_step_info(terminated | truncated, values, final_obs, self.info_dtypes)
        return np.array(obs, dtype=np.float32), np.asarray(reward, np.float64), terminated, truncated, info


def same_step_info(done: np.ndarray, values: Mapping[str, Any], final_obs: Any,
                   dtypes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One SAME_STEP vector step's info from per-sub-env ``values``: each value masked (zeros,
    mask ``_<key>`` False) where the episode ended -- that row holds the new episode's reset info,
    which says only ``success`` False -- and, where some episode ended, ``final_obs`` (one dense
    batch, zeros where nothing ended) and ``final_info`` (the ending step's values) with their masks."""
    live, dtypes = ~done, dtypes or {}
    arrays = {key: np.array(value, dtype=dtypes.get(key)) for key, value in values.items()}
    info: dict[str, Any] = {}
    for key, value in arrays.items():
        info[key], info["_" + key] = _rows_where(live, value), live.copy()
    if "success" in info:
        info["_success"] = np.ones_like(done)
    if done.any():
        info["final_obs"], info["_final_obs"] = _rows_where(done, np.array(final_obs)), done.copy()
        final = {}
        for key, value in arrays.items():
            final[key], final["_" + key] = _rows_where(done, value), done.copy()
        info["final_info"], info["_final_info"] = final, done.copy()
    return info


def _rows_where(mask: np.ndarray, value: np.ndarray) -> np.ndarray:
    return np.where(mask.reshape(-1, *([1] * (value.ndim - 1))), value, np.zeros_like(value))


def require_state_obs(obs: str, family: str) -> None:
    """A batched simulator that renders nothing refuses ``obs="pixels"`` with the way out."""
    if obs != "state":
        raise ValueError(f"the batched {family} backend has state observations only, got obs={obs!r}; use its "
                         f"MuJoCo backend (backend='sim') for obs='pixels'")
