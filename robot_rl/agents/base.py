"""The Agent contract, and what every agent shares: read-only properties, weight grouping.

An agent learns from :class:`~robot_rl.data.schema.Batch` es and acts on canonical observations
(:class:`~robot_rl.data.schema.ObsSpec`). The trainer, the distributed learner and the actors
use nothing else (STYLE.md 9, 10): actor and learner share the transition schema and
``actor_state_dict()`` -- the weights -- only. Agents are found by name in
:mod:`robot_rl.agents.registry` (``--algo``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np
import torch

from robot_rl.data.schema import Batch, ObsSpec


@runtime_checkable
class Agent(Protocol):
    """What the trainer, the learner and the actors call.

    Attributes:
        config: the agent's typed config (a dataclass).
        obs_spec: the canonical observation it acts on.
        action_dim: size of its actions, each in [-1, 1].
        num_updates: ``update()`` calls so far (restored by ``load_state_dict``).
    """

    @property
    def config(self) -> Any: ...

    @property
    def obs_spec(self) -> ObsSpec: ...

    @property
    def action_dim(self) -> int: ...

    @property
    def num_updates(self) -> int: ...

    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        """One canonical observation -> float32 action ``(A,)``."""
        ...

    def act_batch(self, obs: Mapping[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        """Canonical observations with a leading axis N (one per sub-env) -> float32 actions ``(N, A)``."""
        ...

    def update(self, batch: Batch) -> dict[str, float]:
        """One learning step (UTD-sized for off-policy agents) -> namespaced metrics (``train/...``)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything to resume bit-identically: networks, optimizers, generators, counters."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...

    def actor_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights ``act`` needs, on the CPU: what the learner publishes to actors."""
        ...

    def load_actor_state_dict(self, weights: Mapping[str, Any]) -> None: ...


IMAGE_ENCODERS = ("conv", "pretrained", "frozen")
POOLINGS = ("spatial_embedding", "spatial_softmax")


@dataclasses.dataclass
class EncoderConfig:
    """How camera images become features (shared by every agent's config)."""

    image_encoder: str = "conv"
    """'conv': a conv trunk per camera trained by the agent's loss; 'pretrained': a frozen local ResNetBackbone;
    'frozen': a frozen keypoint encoder (`robot-rl pretrain-encoder`) whose features the replay caches per
    stored frame (robot_rl.encoders.cached), so updates never touch images."""
    pretrained_path: str | None = None
    """Local file of the frozen encoder: a ResNetBackbone state_dict ('pretrained', see networks.save_backbone)
    or a keypoint encoder file ('frozen', from `robot-rl pretrain-encoder`); never downloaded."""
    pooling: str = "spatial_embedding"
    """Spatial pooling head on the feature maps: 'spatial_embedding' or 'spatial_softmax'."""
    encoder_features: int = 64
    """Features per camera after pooling, projection, LayerNorm and tanh."""
    drq_pad: int = 4
    """DrQ random-shift padding in pixels during updates; 0 disables. With 'frozen': the shifts of the cached copies."""
    cached_shifts: int = 4
    """'frozen' only: randomly shifted copies of each stored frame that the replay encodes and caches
    (sampling picks one per row)."""

    def encoder_problems(self) -> list[str]:
        """What is wrong with the encoder fields (empty when valid)."""
        checks = [
            (self.image_encoder in IMAGE_ENCODERS, f"image_encoder must be one of {IMAGE_ENCODERS}"),
            (self.image_encoder == "conv" or self.pretrained_path is not None, f"image_encoder={self.image_encoder!r} needs pretrained_path"),
            (self.cached_shifts >= 1, "cached_shifts must be >= 1"),
            (self.pooling in POOLINGS, f"pooling must be one of {POOLINGS}"),
            (self.encoder_features >= 1 and self.drq_pad >= 0, "encoder_features >= 1 and drq_pad >= 0"),
        ]
        return [message for ok, message in checks if not ok]


class AgentBase:
    """``config``, ``obs_spec``, ``action_dim`` and ``num_updates`` of an agent."""

    _config: Any
    _obs_spec: ObsSpec
    _action_dim: int
    _num_updates: int

    @property
    def config(self) -> Any:
        return self._config

    @property
    def obs_spec(self) -> ObsSpec:
        return self._obs_spec

    @property
    def action_dim(self) -> int:
        return self._action_dim

    @property
    def num_updates(self) -> int:
        """update() calls so far (restored by load_state_dict)."""
        return self._num_updates


def group_weights(weights: Mapping[str, Any], prefixes: tuple[str, ...]) -> dict[str, dict[str, torch.Tensor]]:
    """Split ``{"actor.fc.weight": w, ...}`` by prefix into per-module state dicts; unknown prefixes raise."""
    groups: dict[str, dict[str, torch.Tensor]] = {prefix: {} for prefix in prefixes}
    for key, value in weights.items():
        prefix, _, name = key.partition(".")
        if prefix not in groups:
            raise KeyError(f"unexpected actor weight {key!r}; expected prefixes {list(prefixes)}")
        groups[prefix][name] = torch.as_tensor(value)
    return groups
