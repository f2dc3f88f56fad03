"""The fused learner's networks and optimizer as pure JAX functions over parameter pytrees.

The MLP is the torch agents' (:func:`robot_rl.agents.networks.mlp`): hidden layers of Linear +
LayerNorm (eps 1e-5, affine) + ReLU, then a plain Linear; weights start as ``nn.Linear``'s
(uniform in +-1/sqrt(fan_in)). The actor is :class:`robot_rl.agents.distributions.TanhGaussianPolicy`'s
layout: a trunk and one head giving ``(mean, log_std)``; the deterministic action is
``tanh(mean)``. That is what lets :mod:`robot_rl.fused.convert` hand the weights to the torch actor
unchanged. Parameters are a list of layer dicts ``{"w": (in, out), "b": (out,), "scale": (out,),
"shift": (out,)}`` (the last layer without the LayerNorm entries).

Adam is written out (:func:`adam_init`, :func:`adam_step`): five lines, and no optax dependency.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default
LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0  # robot_rl.agents.distributions' clamp


def init_mlp(rng: np.random.Generator, in_dim: int, hidden_dims: Sequence[int], out_dim: int) -> list[dict[str, Any]]:
    """Parameters of an MLP ``in_dim -> hidden_dims -> out_dim`` (torch's default initialization), as
    host (numpy) arrays: drawn with ``jax.random`` they cost an XLA compilation per shape, ~3 s cold
    for TD3's networks on the 2-core VM, against microseconds here."""
    dims = [in_dim, *hidden_dims, out_dim]
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        bound = 1.0 / math.sqrt(fan_in)
        layer = {"w": rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32),
                 "b": rng.uniform(-bound, bound, (fan_out,)).astype(np.float32)}
        if i < len(dims) - 2:
            layer.update(scale=np.ones((fan_out,), np.float32), shift=np.zeros((fan_out,), np.float32))
        layers.append(layer)
    return layers


def layer_norm(x: Any, scale: Any, shift: Any) -> Any:
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + LAYER_NORM_EPS) * scale + shift


def apply_mlp(layers: Sequence[dict[str, Any]], x: Any) -> Any:
    for layer in layers[:-1]:
        x = jax.nn.relu(layer_norm(x @ layer["w"] + layer["b"], layer["scale"], layer["shift"]))
    return x @ layers[-1]["w"] + layers[-1]["b"]


def init_actor(rng: np.random.Generator, obs_dim: int, hidden_dims: Sequence[int], action_dim: int, log_std: float) -> list[dict]:
    """An actor whose head gives ``(mean, log_std)``. The mean half starts at 1/100 of the usual
    scale, so a fresh actor acts near zero (for residual actions: the task's safe fallback); the
    log-std half starts constant at ``log_std`` (TD3 never trains it; it is the spread a SAC
    fine-tuning run starts from)."""
    layers = init_mlp(rng, obs_dim, hidden_dims, 2 * action_dim)
    head = layers[-1]
    head["w"] = np.concatenate([0.01 * head["w"][:, :action_dim], np.zeros_like(head["w"][:, action_dim:])], axis=1)
    head["b"] = np.concatenate([0.01 * head["b"][:action_dim], np.full((action_dim,), log_std, np.float32)])
    return layers


def actor_mean(layers: Sequence[dict[str, Any]], obs: Any) -> Any:
    """The deterministic action ``tanh(mean)`` in (-1, 1)."""
    out = apply_mlp(layers, obs)
    return jnp.tanh(out[..., : out.shape[-1] // 2])


def critic_pair(critics: Sequence[Sequence[dict]], critic_in: Any) -> Any:
    """Both Q-functions on the same input: ``(2, B)``."""
    return jnp.stack([apply_mlp(c, critic_in)[..., 0] for c in critics])


class Adam(NamedTuple):
    """First and second moments (pytrees like the parameters) and the step count."""

    mu: Any
    nu: Any
    count: Any


def adam_init(params: Any) -> Adam:
    """Zero moments and step count, as host arrays (like the initial parameters: no compilation)."""
    zeros = lambda p: np.zeros(np.shape(p), np.float32)  # noqa: E731
    return Adam(jax.tree.map(zeros, params), jax.tree.map(zeros, params), np.zeros((), np.int32))


def adam_step(params: Any, grads: Any, state: Adam, lr: float, b1: float = 0.9, b2: float = 0.999,
              eps: float = 1e-8) -> tuple[Any, Adam]:
    """One Adam step (Kingma & Ba, bias-corrected), as ``torch.optim.Adam`` with default betas."""
    count = state.count + 1
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * jnp.square(g), state.nu, grads)
    c1, c2 = 1 - b1 ** count.astype(jnp.float32), 1 - b2 ** count.astype(jnp.float32)
    params = jax.tree.map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, mu, nu)
    return params, Adam(mu, nu, count)


def polyak(target: Any, source: Any, tau: float) -> Any:
    """``target <- (1 - tau) target + tau source``."""
    return jax.tree.map(lambda t, s: t + tau * (s - t), target, source)
