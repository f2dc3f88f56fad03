"""n-step returns over the replay ring: walk each sampled transition forward inside its episode.

For a sampled slot ``i`` the n-step transition sums ``r_i + g r_{i+1} + ... + g^{k-1} r_{i+k-1}``
and bootstraps from the observation ``k`` slots later with the multiplier ``g^k``, where ``k <= n``
stops early at a termination (no bootstrap: ``terminated`` 1.0) or where the episode's stored
transitions end (a truncation, or the latest step of an episode in progress: bootstrap from the
last observation, as the 1-step target does).

An episode may be stored as several segments in different places of the ring (the learner adds
each chunk an actor sends as its own segment). With ``links`` (see :class:`Links` and
:mod:`robot_rl.data.segments`), a walk that reaches the end of a segment linked to the segment
that continues the episode jumps to that segment's first slot (the same observation; the jump is
no step) and goes on there, so ``k`` counts steps, not slots. The bootstrap slot is wherever the
walk stopped (a walk of exactly ``n`` steps that ends at a segment end stays in that end's slot).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class NStep(NamedTuple):
    reward: np.ndarray  # (B,) float32 discounted reward sums
    terminated: np.ndarray  # (B,) float32: a termination inside the k steps
    following: np.ndarray  # (B,) int64 slot of the bootstrap observation
    discount: np.ndarray  # (B,) float32 multiplier g^k of the bootstrap value


class Links(NamedTuple):
    """Where an episode goes on after the end of a stored segment, per slot of the ring."""

    continues: np.ndarray  # (C,) int64: slot holding the same observation that starts the next segment, -1: none
    continues_serial: np.ndarray  # (C,) int64: that slot's write serial when it was linked
    serial: np.ndarray  # (C,) int64: write serial of each slot's current content


def follow_links(slots: np.ndarray, links: Links) -> np.ndarray:
    """Each slot's continuation where it has one whose slot still holds the linked content, else the slot."""
    target = links.continues[slots]
    alive = (target >= 0) & (links.serial[np.maximum(target, 0)] == links.continues_serial[slots])
    return np.where(alive, target, slots)


def n_step_transitions(index: np.ndarray, n: int, discount: float, reward: np.ndarray, terminated: np.ndarray,
                       valid: np.ndarray, links: Links | None = None, successor: np.ndarray | None = None) -> NStep:
    """n-step returns for the valid slots ``index`` of a ring of ``len(valid)`` slots.

    ``links``: continue walks across linked segment ends (None: stop at every segment end).
    ``successor``: the slot each valid slot's transition leads to (None: the next slot of the
    ring, as when one episode is written at a time; interleaved episodes record theirs).
    """
    if n < 1:
        raise ValueError(f"n_step must be >= 1, got {n}")
    capacity = valid.shape[0]
    current = index.astype(np.int64, copy=True)
    total = np.zeros(index.shape, np.float64)
    scale = np.ones(index.shape, np.float64)
    ended = np.zeros(index.shape, bool)
    term = np.zeros(index.shape, bool)
    for step in range(n):
        walking = ~ended
        total[walking] += scale[walking] * reward[current[walking]]
        scale[walking] *= discount
        step_term = walking & terminated[current]
        term |= step_term
        if successor is None:
            current[walking] = (current[walking] + 1) % capacity
        else:
            current[walking] = successor[current[walking]]
        # Continue only while the next slot still has a transition of the same episode.
        stopped = walking & ~valid[current]
        if links is not None and step < n - 1:
            seam = np.flatnonzero(stopped & ~step_term)  # segment ends: the episode may go on in a linked segment
            if seam.size:
                current[seam] = follow_links(current[seam], links)
                stopped[seam] = ~valid[current[seam]]
        ended |= step_term | stopped
    return NStep(total.astype(np.float32), term.astype(np.float32), current, scale.astype(np.float32))
