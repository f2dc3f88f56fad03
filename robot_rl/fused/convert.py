"""The fused learner's JAX actor as the torch agents' actor: same layers, weights converted.

:func:`actor_state_dict` gives the dict :meth:`robot_rl.agents.sac.SACAgent.actor_state_dict` gives
(``actor.trunk.<i>.*``, ``actor.head.*``; a state-only observation has no encoder weights), so
``SACAgent(spec, action_dim, SACConfig(hidden_dims=...)).load_actor_state_dict(weights)`` loads it,
and :func:`save_actor` writes it as ``actor.pt`` the way the trainer does (atomically,
:func:`robot_rl.train.checkpoint.save_checkpoint`) with ``actor.json`` beside it: the hidden widths
and the env options the actor was trained with (its observation depends on them).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from robot_rl.agents.distributions import TanhGaussianPolicy
from robot_rl.files import atomic_write
from robot_rl.train.checkpoint import save_checkpoint

TRUNK_STRIDE = 3  # robot_rl.agents.networks.mlp: Linear, LayerNorm, ReLU per hidden layer


def _tensor(array: Any) -> torch.Tensor:
    return torch.tensor(np.array(array, dtype=np.float32))


def actor_state_dict(actor: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """JAX actor parameters (:func:`robot_rl.fused.networks.init_actor` layout) -> the torch agents'
    actor weights (``actor.``-prefixed :class:`~robot_rl.agents.distributions.TanhGaussianPolicy`
    keys). JAX stores ``(in, out)`` matrices, torch ``(out, in)``: transposed here."""
    out: dict[str, torch.Tensor] = {}
    for i, layer in enumerate(actor[:-1]):
        linear, norm = f"actor.trunk.{TRUNK_STRIDE * i}", f"actor.trunk.{TRUNK_STRIDE * i + 1}"
        out[f"{linear}.weight"], out[f"{linear}.bias"] = _tensor(layer["w"]).T.contiguous(), _tensor(layer["b"])
        out[f"{norm}.weight"], out[f"{norm}.bias"] = _tensor(layer["scale"]), _tensor(layer["shift"])
    head = actor[-1]
    out["actor.head.weight"], out["actor.head.bias"] = _tensor(head["w"]).T.contiguous(), _tensor(head["b"])
    return out


def hidden_dims_of(actor: Sequence[Mapping[str, Any]]) -> tuple[int, ...]:
    return tuple(int(np.shape(layer["w"])[1]) for layer in actor[:-1])


def policy_from_weights(weights: Mapping[str, Any]) -> TanhGaussianPolicy:
    """A :class:`~robot_rl.agents.distributions.TanhGaussianPolicy` (eval mode) holding actor weights
    (``actor.``-prefixed keys, e.g. ``actor.pt``); its sizes are read from the weights' shapes."""
    arrays = {k.removeprefix("actor."): torch.as_tensor(v) for k, v in weights.items() if k.startswith("actor.")}
    if "head.weight" not in arrays:
        raise ValueError("not actor weights: no 'actor.head.weight' (expected SACAgent.actor_state_dict() keys)")
    hidden = [int(arrays[f"trunk.{i}.weight"].shape[0]) for i in range(0, 10_000, TRUNK_STRIDE) if f"trunk.{i}.weight" in arrays]
    obs_dim = int((arrays["trunk.0.weight"] if hidden else arrays["head.weight"]).shape[1])
    policy = TanhGaussianPolicy(obs_dim, hidden, int(arrays["head.weight"].shape[0]) // 2)
    policy.load_state_dict(arrays)
    return policy.eval()


def torch_actor(actor: Sequence[Mapping[str, Any]]) -> TanhGaussianPolicy:
    """The torch policy holding the converted weights of a JAX actor (eval mode)."""
    return policy_from_weights(actor_state_dict(actor))


def save_actor(run_dir: pathlib.Path, actor: Sequence[Mapping[str, Any]], metadata: Mapping[str, Any]) -> pathlib.Path:
    """Write ``run_dir/actor.pt`` (the torch actor weights) and ``run_dir/actor.json`` (``hidden_dims``,
    ``obs_dim``, ``action_dim`` and ``metadata``, e.g. the task and its env options)."""
    path = run_dir / "actor.pt"
    save_checkpoint(path, actor_state_dict(actor))
    info = {"hidden_dims": list(hidden_dims_of(actor)), "obs_dim": int(np.shape(actor[0]["w"])[0]),
            "action_dim": int(np.shape(actor[-1]["w"])[1]) // 2, **metadata}
    text = json.dumps(info, indent=1, default=str) + "\n"
    atomic_write(run_dir / "actor.json", lambda file: file.write(text.encode()))
    return path
