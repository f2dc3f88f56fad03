"""What every agent shares: the read-only properties the trainer and actors use, weight grouping."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch

from robot_rl.data.schema import ObsSpec


IMAGE_ENCODERS = ("conv", "pretrained")
POOLINGS = ("spatial_embedding", "spatial_softmax")


@dataclasses.dataclass
class EncoderConfig:
    """How camera images become features (shared by every agent's config)."""

    image_encoder: str = "conv"
    """'conv': a conv trunk per camera trained by the agent's loss; 'pretrained': a frozen local ResNetBackbone."""
    pretrained_path: str | None = None
    """Local state_dict file of the pretrained backbone (see networks.save_backbone); never downloaded."""
    pooling: str = "spatial_embedding"
    """Spatial pooling head on the feature maps: 'spatial_embedding' or 'spatial_softmax'."""
    encoder_features: int = 64
    """Features per camera after pooling, projection, LayerNorm and tanh."""
    drq_pad: int = 4
    """DrQ random-shift padding in pixels during updates; 0 disables."""

    def encoder_problems(self) -> list[str]:
        """What is wrong with the encoder fields (empty when valid)."""
        checks = [
            (self.image_encoder in IMAGE_ENCODERS, f"image_encoder must be one of {IMAGE_ENCODERS}"),
            (self.image_encoder != "pretrained" or self.pretrained_path is not None, "image_encoder='pretrained' needs pretrained_path"),
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
