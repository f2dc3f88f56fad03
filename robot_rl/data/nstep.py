"""n-step returns over the replay ring: walk each sampled transition forward inside its episode.

For a sampled slot ``i`` the n-step transition sums ``r_i + g r_{i+1} + ... + g^{k-1} r_{i+k-1}``
and bootstraps from the observation ``k`` slots later with the multiplier ``g^k``, where ``k <= n``
stops early at a termination (no bootstrap: ``terminated`` 1.0) or where the episode's stored
transitions end (a truncation, or the latest step of an episode in progress: bootstrap from the
last observation, as the 1-step target does).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class NStep(NamedTuple):
    reward: np.ndarray  # (B,) float32 discounted reward sums
    terminated: np.ndarray  # (B,) float32: a termination inside the k steps
    following: np.ndarray  # (B,) int64 slot of the bootstrap observation
    discount: np.ndarray  # (B,) float32 multiplier g^k of the bootstrap value


def n_step_transitions(index: np.ndarray, n: int, discount: float, reward: np.ndarray, terminated: np.ndarray,
                       valid: np.ndarray) -> NStep:
    """n-step returns for the valid slots ``index`` of a ring of ``len(valid)`` slots."""
    if n < 1:
        raise ValueError(f"n_step must be >= 1, got {n}")
    capacity = valid.shape[0]
    current = index.astype(np.int64, copy=True)
    total = np.zeros(index.shape, np.float64)
    scale = np.ones(index.shape, np.float64)
    ended = np.zeros(index.shape, bool)
    term = np.zeros(index.shape, bool)
    for _ in range(n):
        walking = ~ended
        total[walking] += scale[walking] * reward[current[walking]]
        scale[walking] *= discount
        step_term = walking & terminated[current]
        term |= step_term
        current[walking] = (current[walking] + 1) % capacity
        # Continue only while the next slot still has a transition of the same episode.
        ended |= step_term | (walking & ~valid[current])
    return NStep(total.astype(np.float32), term.astype(np.float32), current, scale.astype(np.float32))
