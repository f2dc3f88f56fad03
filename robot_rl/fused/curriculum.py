"""The curriculum on reward weights of the fused loop (:class:`~robot_rl.fused.config.RewardCurriculum`).

The env computes the reward's *terms* (quad_hover: ``[|e|, |v|, 1 - cos tilt, |rates|, crashed]``,
:meth:`tasks.quad.hover.HoverArrays.reward_terms`) and turns them into a reward with given weights
(``reward_from_terms``: the task's formula, written once in the task); this module only says which
weights hold at a given env step. The reward is computed when the transition is collected, with that
step's weights, and stored: the buffer holds what the agent was paid (as Learning to Fly in Seconds
does), no terms are stored, and the critic's targets move as slowly as the replay turns over.
"""

from __future__ import annotations

from typing import Any, Callable

import jax.numpy as jnp

from robot_rl.fused.config import RewardCurriculum


def weights_at(env_steps: Any, curriculum: RewardCurriculum, final_weights: tuple[float, ...]) -> tuple[Any, Any]:
    """``(cost_weights (W,), action_weight ())`` at ``env_steps`` collected: linear from the start values
    to the final ones over ``curriculum.steps``, then constant (traceable)."""
    final = jnp.asarray(final_weights, jnp.float32)
    if curriculum.start_weights and len(curriculum.start_weights) != len(final_weights):
        raise ValueError(f"the curriculum's start_weights {curriculum.start_weights} must be as many as the task's "
                         f"cost weights {tuple(final_weights)} (quad_hover: pos, vel, tilt, rate)")
    start = jnp.asarray(curriculum.start_weights, jnp.float32) if curriculum.start_weights else final
    frac = jnp.minimum(jnp.asarray(env_steps, jnp.float32) / curriculum.steps, 1.0)
    # At frac == 1 exactly the final values (not start + 1 * (final - start), which may round differently).
    weights = jnp.where(frac >= 1.0, final, start + frac * (final - start))
    a0, a1 = curriculum.action_weight_start, curriculum.action_weight_final
    return weights, jnp.where(frac >= 1.0, a1, a0 + frac * (a1 - a0))


def curriculum_reward(terms: Any, action: Any, env_steps: Any, curriculum: RewardCurriculum,
                      final_weights: tuple[float, ...], reward_from_terms: Callable) -> tuple[Any, Any, dict[str, Any]]:
    """``(reward at this step's weights, the task's reward, metrics)`` of a batch of transitions whose
    reward terms are ``terms (N, T)`` and executed actions ``action (N, A)``."""
    weights, action_weight = weights_at(env_steps, curriculum, final_weights)
    task_reward = reward_from_terms(terms, jnp.asarray(final_weights, jnp.float32))
    extra = action_weight * jnp.sum(jnp.square(action), axis=-1) if curriculum.action_weight_start or \
        curriculum.action_weight_final else None
    reward = reward_from_terms(terms, weights, extra_cost=extra)
    metrics = {"train/curriculum_reward": jnp.mean(reward), "train/action_weight": action_weight,
               **{f"train/cost_weight_{i}": weights[i] for i in range(len(final_weights))}}
    return reward, task_reward, metrics
