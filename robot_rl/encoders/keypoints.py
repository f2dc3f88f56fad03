"""A small conv encoder worth freezing: camera frame -> spatial-softmax keypoints and channel means.

``KeypointEncoder`` maps uint8 ``(B, H, W, 3)`` frames to ``(B, 3C)`` features: for each of its
``C`` last-layer channels the expected image position ``(x, y)`` in ``[-1, 1]`` of the channel's
spatial softmax (a keypoint, Finn et al. 2016, "Deep Spatial Autoencoders for Visuomotor
Learning") and the channel's mean activation (how strongly it fires). Pre-trained here
(:mod:`robot_rl.encoders.pretrain`) and then frozen, its features are small enough to cache per
stored frame (:mod:`robot_rl.data.feature_replay`).

Files are plain torch pickles of tensors and numbers (``torch.load(weights_only=True)``), written
atomically; nothing is ever downloaded.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.agents.networks import SpatialSoftmax, image_to_float
from robot_rl.train.checkpoint import save_checkpoint

FILE_FORMAT = "robot_rl.keypoint_encoder"
FILE_VERSION = 1
DEFAULT_WIDTHS = (16, 32, 32, 32)
DEFAULT_STRIDES = (2, 2, 2, 1)


class KeypointEncoder(nn.Module):
    """3x3 convs (``widths``, ``strides``, ReLU between) -> spatial softmax keypoints + channel means.

    The default widths and strides turn a 128x128 frame into 32 maps of 16x16 (~11M multiply-adds),
    i.e. 96 features. The last conv has no ReLU: its maps are softmax logits.
    """

    def __init__(self, widths: Sequence[int] = DEFAULT_WIDTHS, strides: Sequence[int] = DEFAULT_STRIDES):
        super().__init__()
        self.widths, self.strides = tuple(int(w) for w in widths), tuple(int(s) for s in strides)
        if not self.widths or len(self.widths) != len(self.strides) or min(self.widths + self.strides) < 1:
            raise ValueError(f"KeypointEncoder needs as many widths as strides, all >= 1; got {widths}, {strides}")
        channels = [3, *self.widths]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, s, padding=1) for a, b, s in zip(channels[:-1], channels[1:], self.strides))
        self.out_dim = 3 * self.widths[-1]
        self._softmax: dict[tuple, SpatialSoftmax] = {}  # per map shape and device; position grids only

    def feature_maps(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, H, W, 3)`` -> the last conv's maps ``(B, C, H', W')`` (softmax logits)."""
        x = image_to_float(images)
        for conv in self.convs[:-1]:
            x = F.relu(conv(x))
        return self.convs[-1](x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, H, W, 3)`` -> float ``(B, 3C)``: keypoint x (C), keypoint y (C), channel means (C)."""
        maps = self.feature_maps(images)
        return torch.cat([self._keypoints(maps), maps.mean(dim=(2, 3))], dim=-1)

    def _keypoints(self, maps: torch.Tensor) -> torch.Tensor:
        key = (*maps.shape[1:], str(maps.device))
        if key not in self._softmax:
            self._softmax[key] = SpatialSoftmax(*maps.shape[1:]).to(maps.device)
        return self._softmax[key](maps)

    def config(self) -> dict[str, list[int]]:
        return {"widths": list(self.widths), "strides": list(self.strides)}


def save_encoder(path: str | os.PathLike, encoder: KeypointEncoder, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write the encoder (architecture, weights, and how it was trained) to ``path``, atomically."""
    payload = {"format": FILE_FORMAT, "version": FILE_VERSION, "config": encoder.config(),
               "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
               "metadata": dict(metadata or {})}
    path = Path(path)
    save_checkpoint(path, payload)
    return path


def read_encoder_file(path: str | os.PathLike) -> tuple[KeypointEncoder, dict[str, Any]]:
    """A frozen :class:`KeypointEncoder` (eval mode, no gradients) and its metadata, from a local file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"frozen image encoder file not found: {path} (make one with `robot-rl pretrain-encoder "
                                "--episodes DIR --out FILE`; nothing is downloaded)")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, Mapping) or payload.get("format") != FILE_FORMAT:
        raise ValueError(f"{path} is not a robot_rl keypoint encoder file (format {FILE_FORMAT!r})")
    if payload.get("version") != FILE_VERSION:
        raise ValueError(f"{path}: keypoint encoder file version {payload.get('version')!r}, this code reads {FILE_VERSION}")
    encoder = KeypointEncoder(**payload["config"])
    try:
        encoder.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise ValueError(f"{path} does not match KeypointEncoder{payload['config']}: {error}") from None
    encoder.requires_grad_(False)
    return encoder.eval(), dict(payload["metadata"])


@functools.lru_cache(maxsize=4)
def _cached_load(resolved: str, mtime_ns: int) -> KeypointEncoder:
    return read_encoder_file(resolved)[0]


def load_encoder(path: str | os.PathLike) -> KeypointEncoder:
    """The frozen encoder of ``path``, loaded once per process (the agent and the replay buffers share it)."""
    path = Path(path)
    if not path.is_file():
        read_encoder_file(path)  # raises the clear FileNotFoundError
    return _cached_load(str(path.resolve()), path.stat().st_mtime_ns)
