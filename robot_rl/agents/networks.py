"""Networks shared by the agents: MLPs, image encoders, the observation encoder (critic ensembles: ensemble.py).

Images stay channels-last ``uint8 (B, H, W, 3)`` until the first layer of an image network, which
permutes them and scales them to float ``[-0.5, 0.5]``. The observation encoder turns one canonical
observation dict (:class:`robot_rl.data.schema.ObsSpec`) into a flat feature vector: per camera a
conv trunk (or one frozen pretrained backbone shared by all cameras) and a trainable pooling head,
concatenated with the ``state`` vector.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.agents.base import IMAGE_ENCODERS, POOLINGS
from robot_rl.data.schema import STATE, Batch, ObsSpec



def mlp(in_dim: int, hidden_dims: Sequence[int], out_dim: int | None = None) -> nn.Sequential:
    """Hidden layers of Linear + LayerNorm + ReLU, then a plain Linear to ``out_dim`` if given."""
    layers: list[nn.Module] = []
    for width in hidden_dims:
        layers += [nn.Linear(in_dim, width), nn.LayerNorm(width), nn.ReLU()]
        in_dim = width
    if out_dim is not None:
        layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- images


def image_to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` -> float ``(B, 3, H, W)`` in ``[-0.5, 0.5]`` (channels-last memory)."""
    return images.permute(0, 3, 1, 2).float().div_(255.0).sub_(0.5)


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """DrQ augmentation: replicate-pad by ``pad`` and crop back at a random offset, per sample.

    Works on uint8 ``(B, H, W, 3)`` directly: padding by replication and cropping at offset ``o``
    is reading pixel ``clamp(i + o - pad)``, so it is one gather with clamped indices.
    """
    if pad <= 0:
        return images
    batch, height, width, _ = images.shape
    device = images.device
    shift = torch.randint(0, 2 * pad + 1, (batch, 2), generator=generator, device=device) - pad
    rows = (torch.arange(height, device=device) + shift[:, :1]).clamp_(0, height - 1)
    cols = (torch.arange(width, device=device) + shift[:, 1:]).clamp_(0, width - 1)
    index = torch.arange(batch, device=device)[:, None, None]
    return images[index, rows[:, :, None], cols[:, None, :]]


def augment(obs: Mapping[str, torch.Tensor], pad: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random-shift every camera image of a batched observation; ``state`` and cached camera features
    (float, already shifted when cached: robot_rl.data.feature_replay) pass unchanged."""
    return {k: v if k == STATE or v.dtype != torch.uint8 else random_shift(v, pad, generator) for k, v in obs.items()}


class ConvTrunk(nn.Module):
    """Conv layers (3x3, ``channels`` wide, first stride 2, ReLU): uint8 (B,H,W,3) -> (B,C,H',W')."""

    def __init__(self, channels: int = 32, num_layers: int = 4):
        super().__init__()
        convs = [nn.Conv2d(3, channels, 3, stride=2)]
        convs += [nn.Conv2d(channels, channels, 3) for _ in range(num_layers - 1)]
        self.convs = nn.ModuleList(convs)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = image_to_float(images)
        for conv in self.convs:
            x = F.relu(conv(x), inplace=True)
        return x


class ResidualBlock(nn.Module):
    """Two 3x3 convs with GroupNorm and a (projected when needed) skip connection."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        groups = math.gcd(8, out_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        reshape = stride != 1 or in_channels != out_channels
        self.skip = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False) if reshape else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(y)) + self.skip(x))


class ResNetBackbone(nn.Module):
    """A small ResNet: a stride-2 stem, then one residual block per width (stride 2 after the first).

    No batch norm, so train and eval mode compute the same thing. 128x128 input with the default
    widths gives (128, 16, 16) feature maps.
    """

    def __init__(self, widths: Sequence[int] = (32, 64, 128)):
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        self.stem = nn.Conv2d(3, self.widths[0], 3, stride=2, padding=1)
        blocks, channels = [], self.widths[0]
        for i, width in enumerate(self.widths):
            blocks.append(ResidualBlock(channels, width, stride=1 if i == 0 else 2))
            channels = width
        self.stages = nn.ModuleList(blocks)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(image_to_float(images)))
        for block in self.stages:
            x = block(x)
        return x


def save_backbone(path: str | os.PathLike, widths: Sequence[int] = (32, 64, 128), seed: int = 0) -> Path:
    """Write a (randomly initialized, seeded) :class:`ResNetBackbone` state_dict to ``path``, atomically."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = ResNetBackbone(widths)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(backbone.state_dict(), tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_backbone(path: str | os.PathLike) -> ResNetBackbone:
    """Load a local :class:`ResNetBackbone` state_dict (widths read from it), frozen and in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained image encoder weights not found: {path} (image_encoder='pretrained' needs a local "
            "torch state_dict of robot_rl.agents.networks.ResNetBackbone; nothing is downloaded; "
            "save_backbone() writes one)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    widths = []
    while isinstance(state, Mapping) and f"stages.{len(widths)}.conv1.weight" in state:
        widths.append(int(state[f"stages.{len(widths)}.conv1.weight"].shape[0]))
    if not widths:
        raise ValueError(f"{path} is not a ResNetBackbone state_dict (no 'stages.0.conv1.weight')")
    backbone = ResNetBackbone(widths)
    try:
        backbone.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{path} does not match ResNetBackbone{tuple(widths)}: {error}") from None
    backbone.requires_grad_(False)
    return backbone.eval()


# ---------------------------------------------------------------- pooling heads


class SpatialEmbedding(nn.Module):
    """Learned spatial weights: (B, C, H, W) -> (B, C * K), each channel reduced by K weight maps."""

    def __init__(self, channels: int, height: int, width: int, num_keypoints: int = 8):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(channels, height, width, num_keypoints) / math.sqrt(height * width))
        self.out_dim = channels * num_keypoints

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        # contiguous first: einsum on channels-last conv output takes a much slower copy path
        return torch.einsum("bchw,chwk->bck", maps.contiguous(), self.kernel).flatten(1)


class SpatialSoftmax(nn.Module):
    """Expected (x, y) image position in ``[-1, 1]`` of each channel's softmax: (B,C,H,W) -> (B, 2C)."""

    def __init__(self, channels: int, height: int, width: int):
        super().__init__()
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
        self.register_buffer("pos_x", xs.reshape(-1), persistent=False)
        self.register_buffer("pos_y", ys.reshape(-1), persistent=False)
        self.out_dim = 2 * channels

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        probs = maps.flatten(2).softmax(dim=-1)
        return torch.cat([probs @ self.pos_x, probs @ self.pos_y], dim=-1)


class PoolingHead(nn.Module):
    """Feature maps -> spatial pooling -> Linear to ``features`` -> LayerNorm -> tanh."""

    def __init__(self, pooling: str, map_shape: Sequence[int], features: int):
        super().__init__()
        channels, height, width = map_shape
        if pooling == "spatial_embedding":
            self.pool: nn.Module = SpatialEmbedding(channels, height, width)
        elif pooling == "spatial_softmax":
            self.pool = SpatialSoftmax(channels, height, width)
        else:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.project = nn.Sequential(nn.Linear(self.pool.out_dim, features), nn.LayerNorm(features), nn.Tanh())

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.project(self.pool(maps))


# ---------------------------------------------------------------- observation encoder


class ObservationEncoder(nn.Module):
    """Canonical observation (batched tensors) -> ``(B, out_dim)`` features: cameras, then state.

    ``image_encoder="conv"``: one trainable :class:`ConvTrunk` per camera. ``"pretrained"``: one
    frozen :class:`ResNetBackbone` (``backbone``), shared by the cameras and always run under
    ``torch.no_grad``. Either way each camera has its own trainable :class:`PoolingHead`.
    """

    def __init__(self, obs_spec: ObsSpec, image_encoder: str = "conv", pooling: str = "spatial_embedding",
                 features: int = 64, pretrained_path: str | os.PathLike | None = None):
        super().__init__()
        if image_encoder not in IMAGE_ENCODERS:
            raise ValueError(f"image_encoder must be one of {IMAGE_ENCODERS}, got {image_encoder!r}")
        self.cameras = tuple(obs_spec.images)
        self.state_dim = obs_spec.state_dim
        self.backbone: ResNetBackbone | None = None
        self.trunks = nn.ModuleList()
        if self.cameras and image_encoder == "pretrained":
            if pretrained_path is None:
                raise ValueError("image_encoder='pretrained' needs pretrained_path (a local state_dict file)")
            self.backbone = load_backbone(pretrained_path)
        elif self.cameras:
            self.trunks.extend(ConvTrunk() for _ in self.cameras)
        self.heads = nn.ModuleList()
        for i, camera in enumerate(self.cameras):
            with torch.no_grad():
                probe = torch.zeros((1, *obs_spec.images[camera]), dtype=torch.uint8)
                map_shape = self.feature_maps(i, probe).shape[1:]
            self.heads.append(PoolingHead(pooling, map_shape, features))
        self.out_dim = self.state_dim + features * len(self.cameras)
        if self.out_dim == 0:
            raise ValueError("the observation has neither a state vector nor cameras")

    def feature_maps(self, index: int, images: torch.Tensor) -> torch.Tensor:
        """Camera ``index``'s uint8 images -> conv feature maps (no gradient for the frozen backbone)."""
        if self.backbone is None:
            return self.trunks[index](images)
        with torch.no_grad():
            return self.backbone(images)

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        parts = [head(self.feature_maps(i, obs[cam])) for i, (cam, head) in enumerate(zip(self.cameras, self.heads))]
        if self.state_dim:
            parts.append(obs[STATE])
        return torch.cat(parts, dim=-1)

    def train(self, mode: bool = True) -> "ObservationEncoder":
        super().train(mode)
        if self.backbone is not None:
            self.backbone.eval()  # frozen: always eval mode
        return self

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The state_dict without the frozen backbone (which actors load from their own file)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def load_trainable_state_dict(self, state: Mapping[str, Any]) -> None:
        full = {k: v for k, v in self.state_dict().items() if k.startswith("backbone.")}
        full.update({k: torch.as_tensor(v) for k, v in state.items()})
        self.load_state_dict(full)


def build_encoder(obs_spec: ObsSpec, config: Any) -> nn.Module:
    """The encoder described by a config's ``image_encoder``/``pooling``/``encoder_features``/``pretrained_path``."""
    if config.image_encoder == "frozen" and obs_spec.images:
        from robot_rl.encoders.cached import CachedFeatureEncoder  # the frozen path imports this module

        return CachedFeatureEncoder(obs_spec, config.pretrained_path, config.encoder_features)
    return ObservationEncoder(obs_spec, config.image_encoder, config.pooling, config.encoder_features, config.pretrained_path)


# ---------------------------------------------------------------- inputs


def observation_to_tensors(obs: Mapping[str, Any], obs_spec: ObsSpec, device: torch.device) -> dict[str, torch.Tensor]:
    """A batch of canonical observations (leading axis N) -> tensors on ``device``."""
    state = np.asarray(obs[STATE], dtype=np.float32) if STATE in obs else None
    images = {camera: np.asarray(obs[camera], dtype=np.uint8) for camera in obs_spec.images}
    n = state.shape[0] if state is not None else next(iter(images.values())).shape[0]
    out = {STATE: torch.as_tensor(state if state is not None else np.zeros((n, 0), np.float32), device=device).reshape(n, -1)}
    for camera, image in images.items():
        if image.shape != (n, *obs_spec.images[camera]):
            raise ValueError(f"observation {camera!r} must be uint8 of shape {(n, *obs_spec.images[camera])}, got {image.shape}")
        out[camera] = torch.as_tensor(image, device=device)
    return out


def one_observation(obs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """One canonical observation as a batch of one (leading axis 1)."""
    return {key: np.asarray(value)[None] for key, value in obs.items()}


def batch_to_tensors(batch: Batch, device: torch.device) -> Batch:
    """A numpy or torch Batch -> tensors on ``device``: float32 except uint8 images, 1-D reward/terminated."""
    batch = batch.to_torch(device)

    def obs(d: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v if v.dtype == torch.uint8 else v.float() for k, v in d.items()}

    demo = None if batch.demo is None else batch.demo.float().reshape(-1)
    discount = None if batch.discount is None else batch.discount.float().reshape(-1)
    return Batch(obs(batch.obs), batch.action.float(), batch.reward.float().reshape(-1), obs(batch.next_obs),
                 batch.terminated.float().reshape(-1), demo, discount)


def check_action_dim(batch: Batch, action_dim: int) -> None:
    """Raise ``ValueError`` unless the batch's actions are ``(B, action_dim)``."""
    if tuple(batch.action.shape[1:]) != (action_dim,):
        raise ValueError(f"batch actions have shape {tuple(batch.action.shape)}, the agent expects (B, {action_dim})")


def split_batch(batch: Batch, num: int) -> list[Batch]:
    """``num`` equal consecutive minibatches (the batch length must be a multiple of ``num``)."""
    if len(batch) % num:
        raise ValueError(f"batch of {len(batch)} transitions does not split into {num} equal minibatches (utd_ratio)")
    size = len(batch) // num

    def part(i: int) -> Batch:
        s = slice(i * size, (i + 1) * size)
        return Batch({k: v[s] for k, v in batch.obs.items()}, batch.action[s], batch.reward[s],
                     {k: v[s] for k, v in batch.next_obs.items()}, batch.terminated[s],
                     None if batch.demo is None else batch.demo[s], None if batch.discount is None else batch.discount[s])

    return [part(i) for i in range(num)]
