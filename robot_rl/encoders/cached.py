"""The frozen-encoder path of the agents: features computed once per stored frame, heads trained on them.

``image_encoder="frozen"`` (``--sac.image-encoder frozen --sac.pretrained-path FILE``):

* the replay buffers are :class:`~robot_rl.data.feature_replay.FeatureReplayBuffer` s whose
  :class:`ShiftedFeatures` encodes every stored frame once, as ``cached_shifts`` random shifts of
  ``drq_pad`` pixels (made by :func:`replay_buffer`, which the trainer and the distributed learner
  call: in the actor/learner split the learner computes features as chunks arrive; actors send
  frames as before);
* the agent's :class:`CachedFeatureEncoder` trains one small head per camera on those features and,
  when it acts on a live frame, runs the same frozen encoder on the unshifted frame.

The frozen weights come from a local file (:mod:`robot_rl.encoders.keypoints`); actors load it from
their own copy, and the published actor weights hold only the heads.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from robot_rl.agents.networks import random_shift
from robot_rl.data.feature_replay import FeatureReplayBuffer
from robot_rl.data.replay import ReplayBuffer
from robot_rl.data.schema import STATE, ObsSpec
from robot_rl.encoders.keypoints import KeypointEncoder, load_encoder, read_encoder_file

ENCODE_CHUNK_FRAMES = 64  # frames encoded per forward pass at insertion (bounds the activations' memory)


class ShiftedFeatures:
    """uint8 frames ``(N, H, W, 3)`` -> float16 ``(N, K, F)``: the frozen encoder's features of ``K``
    random shifts (replicate-pad ``pad`` and crop, as DrQ) of each frame; seeded, so refills repeat."""

    def __init__(self, encoder: KeypointEncoder, num_shifts: int, pad: int, seed: int = 0):
        if num_shifts < 1 or pad < 0:
            raise ValueError(f"need num_shifts >= 1 and pad >= 0, got {num_shifts} and {pad}")
        self.encoder, self.num_shifts, self.pad = encoder, int(num_shifts), int(pad)
        self.feature_dim = encoder.out_dim
        self._device = next(encoder.parameters()).device
        self._generator = torch.Generator(device=self._device).manual_seed(seed)

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = np.empty((len(images), self.num_shifts, self.feature_dim), np.float16)
        for start in range(0, len(images), ENCODE_CHUNK_FRAMES):
            frames = torch.as_tensor(images[start:start + ENCODE_CHUNK_FRAMES], device=self._device)
            shifted = random_shift(frames.repeat_interleave(self.num_shifts, dim=0), self.pad, self._generator)
            features = self.encoder(shifted).reshape(len(frames), self.num_shifts, self.feature_dim)
            out[start:start + len(frames)] = features.cpu().numpy()
        return out


def uses_feature_cache(agent_config: Any, obs_spec: ObsSpec) -> bool:
    """The agent config asks for the frozen, cached encoder and the observation has cameras."""
    return getattr(agent_config, "image_encoder", None) == "frozen" and bool(obs_spec.images)


def replay_buffer(agent_config: Any, obs_spec: ObsSpec, action_dim: int, capacity: int, name: str, seed: int,
                  check_memory: bool = True) -> ReplayBuffer:
    """The replay buffer an agent with ``agent_config`` learns from: a feature cache for the frozen
    encoder (its shifts seeded by ``seed``), else the image-storing :class:`ReplayBuffer`."""
    if not uses_feature_cache(agent_config, obs_spec):
        return ReplayBuffer(obs_spec, action_dim, capacity, name=name, seed=seed, check_memory=check_memory)
    encode = ShiftedFeatures(load_encoder(agent_config.pretrained_path), agent_config.cached_shifts, agent_config.drq_pad, seed)
    return FeatureReplayBuffer(obs_spec, action_dim, capacity, encode, name=name, seed=seed, check_memory=check_memory)


class CachedFeatureEncoder(nn.Module):
    """Observation -> ``(B, out_dim)``: per camera a trainable head (Linear, LayerNorm, tanh) on the frozen
    encoder's features, then ``state``. A camera entry is either cached float features ``(B, F)`` (from a
    :class:`~robot_rl.data.feature_replay.FeatureReplayBuffer` batch) or uint8 frames ``(B, H, W, 3)``
    (acting), which the frozen encoder turns into features here, unshifted.

    The frozen encoder is not a submodule: it is in no ``state_dict`` and no optimizer (it is the file's),
    but ``.to(device)`` moves it. ``state_dict`` keeps a checksum of it, so resuming a checkpoint with a
    different encoder file fails clearly.
    """

    def __init__(self, obs_spec: ObsSpec, encoder_file: str, features: int = 64):
        super().__init__()
        object.__setattr__(self, "backbone", read_encoder_file(encoder_file)[0])
        self.cameras, self.state_dim = tuple(obs_spec.images), obs_spec.state_dim
        self.feature_dim = self.backbone.out_dim
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(self.feature_dim, features), nn.LayerNorm(features), nn.Tanh()) for _ in self.cameras)
        self.register_buffer("backbone_checksum", weights_checksum(self.backbone))
        self.out_dim = self.state_dim + features * len(self.cameras)
        if self.out_dim == 0:
            raise ValueError("the observation has neither a state vector nor cameras")

    def _apply(self, fn, recurse: bool = True):  # .to()/.cuda()/.float() also move the frozen encoder
        self.backbone._apply(fn)
        return super()._apply(fn, recurse)

    def camera_features(self, camera: str, value: torch.Tensor) -> torch.Tensor:
        """Cached features as they are, or the frozen encoder's features of uint8 frames."""
        if value.dtype == torch.uint8:
            with torch.no_grad():
                return self.backbone(value)
        if value.dim() != 2 or value.shape[1] != self.feature_dim:
            raise ValueError(f"camera {camera!r}: expected uint8 frames (B, H, W, 3) or cached features (B, {self.feature_dim}), "
                             f"got {value.dtype} of shape {tuple(value.shape)}")
        return value.float()

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        parts = [head(self.camera_features(camera, obs[camera])) for camera, head in zip(self.cameras, self.heads)]
        if self.state_dim:
            parts.append(obs[STATE])
        return torch.cat(parts, dim=-1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + "backbone_checksum")
        # rtol: the published actor weights travel as float32 (robot_rl.transport.weights)
        if saved is not None and not torch.allclose(torch.as_tensor(saved, dtype=torch.float64).cpu(),
                                                    self.backbone_checksum.cpu(), rtol=1e-5, atol=0.0):
            raise ValueError("these weights were trained on another frozen encoder file (checksum "
                             f"{float(saved[0]):.6g} vs {float(self.backbone_checksum[0]):.6g}): use the same --sac.pretrained-path")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything but the frozen encoder (which is not in the state_dict at all)."""
        return self.state_dict()

    def load_trainable_state_dict(self, state: Mapping[str, Any]) -> None:
        self.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})


def weights_checksum(module: nn.Module) -> torch.Tensor:
    """``(sum of |w|, sum of w^2)`` over all weights in float64 (both positive, so a relative
    tolerance works): tells two weight files apart."""
    flat = torch.cat([p.detach().double().reshape(-1).cpu() for p in module.parameters()])
    return torch.stack([flat.abs().sum(), flat.pow(2).sum()])
