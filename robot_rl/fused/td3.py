"""TD3 (Fujimoto et al. 2018) with an asymmetric critic, as pure JAX functions.

The actor sees the policy's observation only; the two critics (clipped double Q) also see the
simulator's privileged state (motor thrusts, disturbances, randomized dynamics: what a real robot
cannot tell the policy). Target policy smoothing and delayed actor updates as in the paper: one
:func:`update` is ``policy_delay`` critic steps on consecutive minibatches, then one actor step
and the Polyak update of the targets. Termination stops bootstrapping; truncation does not.

With ``bc_weight > 0`` the actor loss is TD3+BC's (Fujimoto & Gu 2021), the demonstrations being a
scripted expert's action on every stored state (a simulator knows the true state the expert needs)::

    actor_loss = -alpha * mean Q1(s, pi(s)) / mean |Q1| + bc_weight * mean (pi(s) - a_expert(s))^2

``bc_weight`` decays linearly to ``bc_final_weight`` over ``bc_decay_updates`` actor steps (a
curriculum from imitation to reward). ``bc_weight = 0`` is plain TD3.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from robot_rl.fused.config import TD3Config
from robot_rl.fused.networks import (
    Adam,
    actor_mean,
    adam_init,
    adam_step,
    critic_pair,
    init_actor,
    init_mlp,
    polyak,
)


class TD3State(NamedTuple):
    actor: Any
    actor_target: Any
    critics: Any
    critic_targets: Any
    actor_opt: Adam
    critic_opt: Adam


class Transitions(NamedTuple):
    """A batch of transitions, leading axis B (or a replay buffer's storage, leading axis capacity)."""

    obs: Any
    privileged: Any
    action: Any
    reward: Any
    next_obs: Any
    next_privileged: Any
    terminated: Any
    expert_action: Any


def init_td3(rng: np.random.Generator, obs_dim: int, privileged_dim: int, action_dim: int, config: TD3Config) -> TD3State:
    """A fresh TD3 state as host (numpy) arrays (``jax.device_put`` it, or pass it to a jitted function)."""
    actor = init_actor(rng, obs_dim, config.actor_hidden_dims, action_dim, config.initial_log_std)
    critic_in = obs_dim + privileged_dim + action_dim
    critics = [init_mlp(rng, critic_in, config.critic_hidden_dims, 1) for _ in range(2)]
    copy = lambda tree: jax.tree.map(np.copy, tree)  # noqa: E731  (targets are their own buffers: donated)
    return TD3State(actor, copy(actor), critics, copy(critics), adam_init(actor), adam_init(critics))


def _critic_input(obs: Any, privileged: Any, action: Any) -> Any:
    return jnp.concatenate([obs, privileged, action], axis=-1)


def critic_loss(critics: Any, state: TD3State, batch: Transitions, key: Any, config: TD3Config) -> tuple[Any, Any]:
    """Mean squared TD error of both critics against the clipped double-Q target; returns (loss, mean Q)."""
    next_action = actor_mean(state.actor_target, batch.next_obs)
    noise = jnp.clip(config.target_noise * jax.random.normal(key, next_action.shape), -config.target_noise_clip,
                     config.target_noise_clip)
    next_action = jnp.clip(next_action + noise, -1.0, 1.0)
    next_q = critic_pair(state.critic_targets, _critic_input(batch.next_obs, batch.next_privileged, next_action))
    target = batch.reward + config.discount * (1.0 - batch.terminated) * jnp.min(next_q, axis=0)
    q = critic_pair(critics, _critic_input(batch.obs, batch.privileged, batch.action))
    return jnp.mean(jnp.square(q - jax.lax.stop_gradient(target)[None])), jnp.mean(q)


def bc_weight_at(step: Any, config: TD3Config) -> Any:
    """The expert term's weight at actor step ``step`` (linear decay, then constant)."""
    frac = jnp.minimum(step.astype(jnp.float32) / config.bc_decay_updates, 1.0)
    return config.bc_weight + frac * (config.bc_final_weight - config.bc_weight)


def actor_loss(actor: Any, critics: Any, batch: Transitions, bc_weight: Any, config: TD3Config) -> tuple[Any, Any]:
    """``-Q1(s, pi(s))`` (the first critic's, TD3's choice), or TD3+BC's loss when the expert term is
    on (module docstring). Returns (loss, mean squared distance to the expert)."""
    action = actor_mean(actor, batch.obs)
    q = critic_pair(critics[:1], _critic_input(batch.obs, batch.privileged, action))[0]
    bc = jnp.mean(jnp.square(action - batch.expert_action))
    if config.bc_weight == 0 and config.bc_final_weight == 0:
        return -jnp.mean(q), bc
    q_term = config.alpha * jnp.mean(q) / jax.lax.stop_gradient(jnp.mean(jnp.abs(q)) + 1e-6)
    return -q_term + bc_weight * bc, bc


def update(state: TD3State, batches: Transitions, key: Any, config: TD3Config) -> tuple[TD3State, dict[str, Any]]:
    """``policy_delay`` critic steps (``batches`` has a leading axis of that size), one actor step,
    the target update. Returns the new state and ``train/*`` metrics (scalars)."""

    def critic_step(carry: TD3State, inputs: tuple) -> tuple[TD3State, tuple]:
        batch, k = inputs
        (loss, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(carry.critics, carry, batch, k, config)
        critics, opt = adam_step(carry.critics, grads, carry.critic_opt, config.critic_lr)
        return carry._replace(critics=critics, critic_opt=opt), (loss, q_mean)

    keys = jax.random.split(key, config.policy_delay)
    state, (losses, q_means) = jax.lax.scan(critic_step, state, (batches, keys))
    last = jax.tree.map(lambda x: x[-1], batches)
    bc_weight = bc_weight_at(state.actor_opt.count, config)
    (a_loss, bc), grads = jax.value_and_grad(actor_loss, has_aux=True)(state.actor, state.critics, last, bc_weight, config)
    actor, actor_opt = adam_step(state.actor, grads, state.actor_opt, config.actor_lr)
    if config.critic_warmup_updates:  # the actor stays as it is until the critics had their warm-up
        warm = state.critic_opt.count > config.critic_warmup_updates * config.policy_delay
        (actor, actor_opt) = jax.tree.map(lambda new, old: jnp.where(warm, new, old), (actor, actor_opt),
                                          (state.actor, state.actor_opt))
    state = state._replace(actor=actor, actor_opt=actor_opt, actor_target=polyak(state.actor_target, actor, config.tau),
                           critic_targets=polyak(state.critic_targets, state.critics, config.tau))
    return state, {"train/critic_loss": jnp.mean(losses), "train/q_mean": jnp.mean(q_means), "train/actor_loss": a_loss,
                   "train/expert_mse": bc, "train/bc_weight": bc_weight}
