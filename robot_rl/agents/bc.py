"""Behaviour cloning: regress demonstrated actions with a deterministic tanh policy (MSE).

Same interface as :class:`robot_rl.agents.sac.SACAgent` (act/update/state_dict/actor weights), so
the trainer and the actors treat both alike. Unlike SAC, the image encoder is trained by the BC loss.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from robot_rl.agents.networks import (
    augment,
    batch_to_tensors,
    build_encoder,
    check_action_dim,
    mlp,
    observation_to_tensors,
    one_observation,
)
from robot_rl.agents.base import AgentBase, EncoderConfig, group_weights
from robot_rl.data.schema import Batch, ObsSpec, check_finite


@dataclasses.dataclass
class BCConfig(EncoderConfig):
    """Hyperparameters of :class:`BCAgent` (the image-encoder fields come from EncoderConfig)."""

    hidden_dims: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the policy MLP."""
    lr: float = 3e-4
    """Adam learning rate (policy and image encoder)."""
    batch_size: int = 256
    """Transitions per update (what the trainer samples)."""
    grad_clip_norm: float = 10.0
    """Clip gradients to this global norm (inf disables; the metric is the pre-clip norm)."""

    def __post_init__(self) -> None:
        self.hidden_dims = tuple(int(h) for h in self.hidden_dims)
        checks = [
            (self.lr > 0 and self.batch_size >= 1, "lr must be > 0 and batch_size >= 1"),
            (self.grad_clip_norm > 0, "grad_clip_norm must be > 0 (inf disables clipping)"),
        ]
        for message in [m for ok, m in checks if not ok] + self.encoder_problems():
            raise ValueError(f"BCConfig: {message}")


class BCAgent(AgentBase):
    """Deterministic policy ``tanh(MLP(encoder(obs)))`` fitted to the batch's actions by MSE."""

    def __init__(self, obs_spec: ObsSpec, action_dim: int, config: BCConfig = BCConfig(), device: str = "cpu", seed: int = 0):
        if action_dim < 1:
            raise ValueError(f"action_dim must be >= 1, got {action_dim}")
        self._config, self._obs_spec, self._action_dim = config, obs_spec, int(action_dim)
        self._device = torch.device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.encoder = build_encoder(obs_spec, config).to(self._device)
            self._policy = mlp(self.encoder.out_dim, config.hidden_dims, action_dim).to(self._device)
        self._params = [p for p in (*self.encoder.parameters(), *self._policy.parameters()) if p.requires_grad]
        self._optimizer = torch.optim.Adam(self._params, lr=config.lr, foreach=True)
        self._generator = torch.Generator(device=self._device).manual_seed(seed)
        self._num_updates = 0

    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        """One canonical observation -> float32 action (A,) in [-1, 1]; the policy is always deterministic."""
        return self.act_batch(one_observation(obs), deterministic)[0]

    @torch.no_grad()
    def act_batch(self, obs: Mapping[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        """Canonical observations with a leading axis N -> float32 actions (N, A) in [-1, 1]."""
        features = self.encoder(observation_to_tensors(obs, self._obs_spec, self._device))
        return torch.tanh(self._policy(features)).cpu().numpy().astype(np.float32)

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step of MSE between ``tanh(policy)`` and the (clipped) batch actions."""
        check_finite(batch)
        check_action_dim(batch, self._action_dim)
        batch = batch_to_tensors(batch, self._device)
        features = self.encoder(augment(batch.obs, self._config.drq_pad, self._generator))
        loss = F.mse_loss(torch.tanh(self._policy(features)), batch.action.clamp(-1.0, 1.0))
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self._params, self._config.grad_clip_norm)
        self._optimizer.step()
        self._num_updates += 1
        return {"train/bc_loss": float(loss.detach()), "train/bc_grad_norm": float(grad_norm)}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bit-identically (a deep copy)."""
        return copy.deepcopy({
            "modules": {"encoder": self.encoder.state_dict(), "policy": self._policy.state_dict()},
            "optimizers": {"policy": self._optimizer.state_dict()},
            "generators": {"update": self._generator.get_state()},
            "num_updates": self._num_updates,
        })

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.encoder.load_state_dict(state["modules"]["encoder"])
        self._policy.load_state_dict(state["modules"]["policy"])
        self._optimizer.load_state_dict(state["optimizers"]["policy"])
        self._generator.set_state(state["generators"]["update"].cpu())
        self._num_updates = int(state["num_updates"])

    def actor_state_dict(self) -> dict[str, torch.Tensor]:
        """CPU copies of the weights act() needs (the frozen backbone excluded)."""
        out = {f"encoder.{k}": v for k, v in self.encoder.trainable_state_dict().items()}
        out.update({f"policy.{k}": v for k, v in self._policy.state_dict().items()})
        return {k: v.detach().cpu().clone() for k, v in out.items()}

    def load_actor_state_dict(self, weights: Mapping[str, Any]) -> None:
        groups = group_weights(weights, ("encoder", "policy"))
        self.encoder.load_trainable_state_dict(groups["encoder"])
        self._policy.load_state_dict(groups["policy"])
