"""Env steps and TD3 updates fused under one ``jax.jit``: the whole training loop in JAX.

One *iteration* steps all ``num_envs`` envs of a natively batched JAX env once with the actor's
action plus Gaussian exploration noise, writes the ``num_envs`` transitions into a replay ring
buffer held in JAX arrays, and makes ``updates_per_step`` TD3 updates (once the buffer holds
``learning_starts`` transitions). ``chunk_steps`` iterations run as one ``lax.scan`` inside one
jitted call (:func:`make_chunk`); the host only sees the chunk's metrics, for the progress line
and TensorBoard (:func:`train`). Nothing leaves JAX while it learns.

The env is any :class:`FusedEnv`: the jitted ``reset(key) -> (batch, key, obs)`` and ``step(batch,
key, actions) -> (batch, key, (obs, reward, terminated, truncated, success, executed_action,
action_clipped, final_obs))`` of robot_rl's JAX vector envs (their ``functional``), plus an
optional ``privileged(batch)`` for the asymmetric critic (the quadrotor's
:attr:`sim.quad.jax_env.QuadVectorEnv.privileged`) and an optional ``expert(batch)`` (the task's
scripted expert on the true state, :attr:`~sim.quad.jax_env.QuadVectorEnv.expert`) whose action is
stored with each transition for TD3+BC's term (:mod:`robot_rl.fused.td3`). An episode that ends restarts in the same step
(SAME_STEP): the transition's next observation is its ``final_obs``; its next privileged state is
taken from the batch after the step, i.e. the new episode's (the dynamics drawn for it), an
approximation that only touches the bootstrapped value of truncated steps (terminated ones do not
bootstrap). With a curriculum on reward weights (:mod:`robot_rl.fused.curriculum`) the env's step
returns the reward's terms instead of its reward (``fused_env(..., reward_terms=True)``) and each
transition is paid the reward at the weights of the step that collected it.
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from robot_rl.fused.networks import actor_mean
from robot_rl.fused.config import FusedConfig
from robot_rl.fused.curriculum import curriculum_reward
from robot_rl.fused.td3 import TD3State, Transitions, init_td3, update


class FusedEnv(NamedTuple):
    """A batched JAX env as the fused loop needs it (see the module docstring)."""

    reset: Callable
    step: Callable
    privileged: Callable
    expert: Callable
    obs_dim: int
    privileged_dim: int
    action_dim: int
    has_expert: bool = True
    reward_from_terms: Callable | None = None
    cost_weights: tuple[float, ...] = ()


def fused_env(vector_env: Any, reward_terms: bool = False) -> FusedEnv:
    """The :class:`FusedEnv` of a robot_rl JAX vector env (one with ``functional``); without a
    ``privileged`` function the critic sees what the actor sees. ``reward_terms``: its step returns
    the reward's terms (``functional_reward_terms``), for a curriculum on the reward weights."""
    if not hasattr(vector_env, "functional"):
        raise ValueError(f"{type(vector_env).__name__} has no jitted reset/step (`functional`): fused training needs "
                         "a natively batched JAX backend (e.g. --backend jax)")
    if reward_terms and not hasattr(vector_env, "functional_reward_terms"):
        raise ValueError(f"{type(vector_env).__name__} cannot return its reward's terms (`functional_reward_terms`): "
                         "no curriculum on reward weights with it")
    reset, step = vector_env.functional_reward_terms if reward_terms else vector_env.functional
    privileged, expert = getattr(vector_env, "privileged", None), getattr(vector_env, "expert", None)
    batch, _, obs = jax.eval_shape(reset, jax.random.key(0))  # shapes only (reset compiles once, in init_loop)
    action_dim = int(np.prod(vector_env.single_action_space.shape))
    if privileged is None:
        privileged = lambda batch: jnp.zeros((obs.shape[0], 0), jnp.float32)  # noqa: E731
    if expert is None:
        expert = lambda batch: jnp.full((obs.shape[0], action_dim), jnp.nan, jnp.float32)  # noqa: E731
    terms = (vector_env.reward_from_terms, tuple(vector_env.cost_weights)) if reward_terms else (None, ())
    return FusedEnv(reset, step, privileged, expert, int(obs.shape[-1]), int(jax.eval_shape(privileged, batch).shape[-1]), action_dim,
                    getattr(vector_env, "expert", None) is not None, *terms)


class LoopState(NamedTuple):
    agent: TD3State
    env: Any
    env_key: Any
    obs: Any
    replay: Transitions
    size: Any
    ptr: Any
    key: Any
    episode_return: Any
    env_steps: Any


def init_loop(env: FusedEnv, config: FusedConfig) -> LoopState:
    key = jax.random.key(config.seed)
    k_agent, k_env, key = jax.random.split(key, 3)
    del k_agent  # the networks are drawn on the host (init_td3), from the seed; the env's keys stay as they were
    agent = jax.device_put(init_td3(np.random.default_rng(config.seed), env.obs_dim, env.privileged_dim, env.action_dim, config.td3))
    batch, env_key, obs = env.reset(k_env)
    cap, f32 = config.capacity, jnp.float32
    replay = Transitions(jnp.zeros((cap, env.obs_dim), f32), jnp.zeros((cap, env.privileged_dim), f32),
                         jnp.zeros((cap, env.action_dim), f32), jnp.zeros((cap,), f32), jnp.zeros((cap, env.obs_dim), f32),
                         jnp.zeros((cap, env.privileged_dim), f32), jnp.zeros((cap,), f32), jnp.zeros((cap, env.action_dim), f32))
    size, ptr = jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32)
    return LoopState(agent, batch, env_key, obs, replay, size, ptr, key, jnp.zeros((config.num_envs,), f32),
                     jnp.zeros((), jnp.int32))


def _collect(state: LoopState, env: FusedEnv, config: FusedConfig) -> tuple[LoopState, dict[str, Any]]:
    """One batched env step with exploration noise; its transitions go into the ring buffer."""
    key, k_noise = jax.random.split(state.key)
    action = actor_mean(state.agent.actor, state.obs)
    action = jnp.clip(action + config.exploration_noise * jax.random.normal(k_noise, action.shape), -1.0, 1.0)
    batch, env_key, out = env.step(state.env, state.env_key, action)
    obs, reward, terminated, truncated, success, executed, _, final_obs = out
    paid, curriculum = reward, {}
    if env.reward_from_terms is not None:  # the step returned the reward's terms
        paid, reward, curriculum = curriculum_reward(reward, executed, state.env_steps, config.curriculum,
                                                     env.cost_weights, env.reward_from_terms)
    done = terminated | truncated
    new = Transitions(state.obs, env.privileged(state.env), executed, paid.astype(jnp.float32),
                      jnp.where(done[:, None], final_obs, obs), env.privileged(batch), terminated.astype(jnp.float32),
                      env.expert(state.env))
    replay = jax.tree.map(lambda buf, x: jax.lax.dynamic_update_slice_in_dim(buf, x, state.ptr, axis=0), state.replay, new)
    episode_return = state.episode_return + reward
    stats = {"episodes": jnp.sum(done), "return_sum": jnp.sum(jnp.where(done, episode_return, 0.0)),
             "crashes": jnp.sum(terminated), "final_success": jnp.sum(done & success), "reward": jnp.mean(reward),
             **curriculum}
    n = config.num_envs
    state = state._replace(env=batch, env_key=env_key, obs=obs, replay=replay, key=key,
                           size=jnp.minimum(state.size + n, config.capacity), ptr=(state.ptr + n) % config.capacity,
                           episode_return=jnp.where(done, 0.0, episode_return), env_steps=state.env_steps + n)
    return state, stats


def _sample(replay: Transitions, size: Any, key: Any, shape: tuple[int, ...]) -> Transitions:
    index = jax.random.randint(key, shape, 0, jnp.maximum(size, 1))
    return jax.tree.map(lambda buf: buf[index], replay)


def _learn(state: LoopState, config: FusedConfig) -> tuple[LoopState, dict[str, Any]]:
    """``updates_per_step`` TD3 updates on uniform replay samples."""
    cfg = config.td3

    def one(agent_key: tuple, _: Any) -> tuple[tuple, dict]:
        agent, key = agent_key
        key, k_sample, k_update = jax.random.split(key, 3)
        batches = _sample(state.replay, state.size, k_sample, (cfg.policy_delay, cfg.batch_size))
        agent, metrics = update(agent, batches, k_update, cfg)
        return (agent, key), metrics

    (agent, key), metrics = jax.lax.scan(one, (state.agent, state.key), None, length=config.updates_per_step)
    return state._replace(agent=agent, key=key), jax.tree.map(jnp.mean, metrics)


def _iteration(state: LoopState, env: FusedEnv, config: FusedConfig) -> tuple[LoopState, dict[str, Any]]:
    state, stats = _collect(state, env, config)
    empty = {f"train/{k}": jnp.nan for k in ("critic_loss", "q_mean", "actor_loss", "expert_mse", "bc_weight")}
    learning = state.size >= config.learning_starts
    state, metrics = jax.lax.cond(learning, lambda s: _learn(s, config),
                                  lambda s: (s, jax.tree.map(jnp.float32, empty)), state)
    return state, {**stats, **metrics, "updates": learning.astype(jnp.int32) * config.updates_per_step}


def make_chunk(env: FusedEnv, config: FusedConfig) -> Callable[[LoopState], tuple[LoopState, dict[str, Any]]]:
    """The jitted ``chunk(state) -> (state, metrics)``: ``chunk_steps`` iterations under ``lax.scan``
    (the input state's buffers are donated: reuse only the returned state)."""

    def chunk(state: LoopState) -> tuple[LoopState, dict[str, Any]]:
        state, per_step = jax.lax.scan(lambda s, _: _iteration(s, env, config), state, None, length=config.chunk_steps)
        sums = {k: jnp.sum(per_step[k]) for k in ("episodes", "return_sum", "crashes", "final_success", "updates")}
        means = {k: jnp.nanmean(v) for k, v in per_step.items() if k.startswith("train/") or k == "reward"}
        return state, {**sums, **means}

    return jax.jit(chunk, donate_argnums=0)


def chunk_summary(metrics: dict[str, Any]) -> dict[str, float]:
    """A chunk's metrics as namespaced floats: train/*, env/* (episodes ended in the chunk)."""
    m = {k: float(v) for k, v in jax.device_get(metrics).items()}
    out = {k: v for k, v in m.items() if k.startswith("train/") and np.isfinite(v)}
    out["env/step_reward"] = m["reward"]
    if m["episodes"]:
        out.update({"env/episode_return": m["return_sum"] / m["episodes"], "env/crash_rate": m["crashes"] / m["episodes"],
                    "env/final_success_rate": m["final_success"] / m["episodes"]})
    return out


def train(env: FusedEnv, config: FusedConfig,
          report: Callable[[int, int, dict[str, float], float], None] | None = None) -> tuple[LoopState, float]:
    """Run the fused loop; ``report(env_steps, updates, summary, elapsed_s)`` after every chunk.
    Returns the final state and the wall time including compilation [s]."""
    if (config.td3.bc_weight or config.td3.bc_final_weight) and not env.has_expert:
        raise ValueError("the TD3+BC term (bc_weight > 0) needs an env with a scripted expert (`expert`); "
                         "set bc_weight = bc_final_weight = 0 for plain TD3")
    if config.curriculum.enabled and env.reward_from_terms is None:
        raise ValueError("a curriculum on reward weights needs an env that returns its reward's terms: build it with "
                         "fused_env(vector_env, reward_terms=True)")
    start = time.perf_counter()
    state = init_loop(env, config)
    chunk = make_chunk(env, config)
    steps = updates = 0
    for _ in range(config.chunks):
        state, metrics = chunk(state)
        steps += config.chunk_steps * config.num_envs
        summary = chunk_summary(metrics)
        updates += int(metrics["updates"])
        if report is not None:
            report(steps, updates, summary, time.perf_counter() - start)
    jax.block_until_ready(state.agent.actor)
    return state, time.perf_counter() - start
