"""What one agent update learns from: RLPD's symmetric sampling, half online data, half demos.

Used by the single-process trainer and the distributed learner alike.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from robot_rl.data.replay import ReplayBuffer
from robot_rl.data.schema import Batch, concat_batches


def sample_batch(online: ReplayBuffer, demos: ReplayBuffer | None, agent_config: Any, demo_ratio: float) -> Batch:
    """``utd_ratio`` minibatches, each ``demo_ratio`` from demos and the rest online (RLPD); demo
    rows are flagged (``Batch.demo``) for the BC term. ``agent_config`` has ``batch_size``,
    ``utd_ratio``, ``n_step`` and ``discount`` (SACConfig)."""
    batch_size, n = agent_config.batch_size, agent_config.n_step
    n_demo = int(round(batch_size * demo_ratio)) if demos is not None and len(demos) else 0
    parts = []
    for _ in range(agent_config.utd_ratio):
        parts.append(online.sample(batch_size - n_demo, n_step=n, discount=agent_config.discount))
        if n_demo:
            parts.append(demo_rows(demos.sample(n_demo, n_step=n, discount=agent_config.discount)))
    return concat_batches(parts)


def demo_batch(demos: ReplayBuffer, agent_config: Any) -> Batch:
    """A demo-only batch of ``batch_size * utd_ratio`` rows (offline pre-training)."""
    size = agent_config.batch_size * agent_config.utd_ratio
    return demo_rows(demos.sample(size, n_step=agent_config.n_step, discount=agent_config.discount))


def demo_rows(batch: Batch) -> Batch:
    return dataclasses.replace(batch, demo=np.ones(len(batch), np.float32))
