"""A :class:`~robot_rl.vector.TaskVectorEnv` driven by two jitted JAX functions (the puck and the
quadrotor use it; the car steps through one function with a reset flag instead).

The subclass sets ``self._reset_fn(key) -> (batch, key, obs)`` and ``self._step_fn(batch, key,
actions) -> (batch, key, (obs, reward, terminated, truncated, success, executed_action,
action_clipped, final_obs))``; this class keeps the batch and the JAX random key between calls
and hands the step's arrays back as writable numpy copies (JAX gives read-only views).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from robot_rl.vector import TaskVectorEnv


class JittedTaskEnv(TaskVectorEnv):
    _reset_fn: Any
    _step_fn: Any
    _batch: Any = None
    _key: Any = None

    def _reset_batch(self, seed: int | None) -> np.ndarray:
        if seed is not None:
            self._key = jax.random.key(seed)
        self._batch, self._key, obs = self._reset_fn(self._key)
        return obs

    def _step_batch(self, actions: np.ndarray) -> tuple:
        self._batch, self._key, out = self._step_fn(self._batch, self._key, actions)
        obs, reward, terminated, truncated, success, executed, clipped, final_obs = map(np.array, jax.device_get(out))
        values = {"success": success, "executed_action": executed, "action_clipped": clipped}
        return obs, reward, terminated, truncated, values, final_obs
