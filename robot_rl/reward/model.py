"""RewardClassifier: camera images -> the probability that the task has succeeded.

One encoder per camera (a trainable :class:`~robot_rl.agents.networks.ConvTrunk`, or one frozen
local :class:`~robot_rl.agents.networks.ResNetBackbone` shared by the cameras) with its own
:class:`~robot_rl.agents.networks.PoolingHead`; the camera features are concatenated and an MLP
gives one logit (success vs failure, sigmoid) or K logits (K > 2 stages, softmax; the last stage
is success). Inputs are ``uint8 (B, H, W, 3)`` images exactly as the env gives them; an optional
crop and resize, part of the :class:`ClassifierSpec`, happen inside the model so that training
and use can never disagree about them.

A classifier file is a ``torch.save`` of plain tensors and JSON strings (``spec``, ``metadata``),
loaded with ``weights_only=True``; it holds the frozen backbone's weights too, so it is
self-contained.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.agents.base import POOLINGS
from robot_rl.agents.networks import ConvTrunk, PoolingHead, ResNetBackbone, mlp
from robot_rl.files import atomic_write
from robot_rl.reward.dataset import BINARY_CLASSES

FILE_FORMAT = "robot_rl.reward_classifier"
FILE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ClassifierSpec:
    """A classifier's architecture and input contract (stored in its file).

    Attributes:
        image_shapes: camera -> ``(H, W, 3)`` of the images it takes (as the env gives them).
        class_names: at least two; the last is success. Two: one logit; K > 2: K stage logits.
        crop: camera -> ``(top, left, height, width)`` in pixels, cut before anything else.
        resize: ``(height, width)`` every (cropped) image is resized to (bilinear), or None.
        channels, layers: width and depth of each camera's ConvTrunk (unused with a backbone).
        backbone_widths: widths of a frozen local ResNetBackbone shared by the cameras, or None.
        pooling: ``spatial_embedding`` or ``spatial_softmax``; features: per camera after pooling.
        hidden, dropout: hidden widths of the MLP on the camera features, dropout on its input.
    """

    image_shapes: Mapping[str, tuple[int, int, int]]
    class_names: tuple[str, ...] = BINARY_CLASSES
    crop: Mapping[str, tuple[int, int, int, int]] = dataclasses.field(default_factory=dict)
    resize: tuple[int, int] | None = None
    channels: int = 32
    layers: int = 4
    backbone_widths: tuple[int, ...] | None = None
    pooling: str = "spatial_embedding"
    features: int = 64
    hidden: tuple[int, ...] = (256,)
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if not self.image_shapes:
            raise ValueError("a reward classifier needs at least one camera")
        if len(self.class_names) < 2:
            raise ValueError(f"class_names needs at least 2 classes, got {list(self.class_names)}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        for cam, (top, left, height, width) in self.crop.items():
            if cam not in self.image_shapes:
                raise ValueError(f"crop names camera {cam!r}, which is not one of {list(self.image_shapes)}")
            full_h, full_w = self.image_shapes[cam][:2]
            if top < 0 or left < 0 or height < 1 or width < 1 or top + height > full_h or left + width > full_w:
                raise ValueError(f"crop {cam!r} (top {top}, left {left}, {height}x{width}) does not fit in "
                                 f"its {full_h}x{full_w} image")

    @property
    def cameras(self) -> tuple[str, ...]:
        return tuple(self.image_shapes)

    @property
    def num_logits(self) -> int:
        return 1 if len(self.class_names) == 2 else len(self.class_names)

    def network_shape(self, camera: str) -> tuple[int, int, int]:
        """``(h, w, 3)`` of the camera's image after crop and resize."""
        if self.resize is not None:
            return (*self.resize, 3)
        if camera in self.crop:
            return (*self.crop[camera][2:], 3)
        return tuple(self.image_shapes[camera])

    def check_inputs(self, shapes: Mapping[str, Sequence[int]], source: str = "the env") -> None:
        """Raise ``ValueError`` naming the first camera that ``source`` lacks or gives in another shape."""
        for cam, shape in self.image_shapes.items():
            if cam not in shapes:
                raise ValueError(f"the reward classifier was trained on camera {cam!r} ({_size(shape)}); "
                                 f"{source} has no such camera (it has {sorted(shapes)})")
            if tuple(shapes[cam]) != tuple(shape):
                crop = f", cropped to {self.crop[cam]}" if cam in self.crop else ""
                raise ValueError(f"the reward classifier was trained on {cam!r} {_size(shape)}{crop}; "
                                 f"{source} gives {cam!r} {_size(shapes[cam])}")

    def to_json(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ClassifierSpec":
        def tup(value):
            return None if value is None else tuple(value)

        return cls(
            image_shapes={k: tuple(v) for k, v in data["image_shapes"].items()},
            class_names=tuple(data["class_names"]), crop={k: tuple(v) for k, v in data["crop"].items()},
            resize=tup(data["resize"]), channels=data["channels"], layers=data["layers"],
            backbone_widths=tup(data["backbone_widths"]), pooling=data["pooling"], features=data["features"],
            hidden=tuple(data["hidden"]), dropout=data["dropout"],
        )


def _size(shape: Sequence[int]) -> str:
    return "x".join(str(n) for n in shape[:2]) if len(shape) == 3 and shape[2] == 3 else str(tuple(shape))


class RewardClassifier(nn.Module):
    """``{camera: uint8 (B, H, W, 3)}`` -> logits ``(B, spec.num_logits)``."""

    def __init__(self, spec: ClassifierSpec):
        super().__init__()
        self.spec = spec
        self.backbone: ResNetBackbone | None = None
        self.trunks = nn.ModuleList()
        if spec.backbone_widths is not None:
            self.backbone = ResNetBackbone(spec.backbone_widths).requires_grad_(False).eval()
        else:
            self.trunks.extend(ConvTrunk(spec.channels, spec.layers) for _ in spec.cameras)
        self.heads = nn.ModuleList()
        for i, cam in enumerate(spec.cameras):
            with torch.no_grad():
                probe = torch.zeros((1, *spec.network_shape(cam)), dtype=torch.uint8)
                map_shape = self._feature_maps(i, probe).shape[1:]
            self.heads.append(PoolingHead(spec.pooling, map_shape, spec.features))
        self.mlp = nn.Sequential(nn.Dropout(spec.dropout), mlp(spec.features * len(spec.cameras), spec.hidden, spec.num_logits))

    def prepare(self, camera: str, images: torch.Tensor) -> torch.Tensor:
        """Crop and resize one camera's uint8 ``(B, H, W, 3)`` images to the network's input (uint8)."""
        if camera in self.spec.crop:
            top, left, height, width = self.spec.crop[camera]
            images = images[:, top:top + height, left:left + width]
        if self.spec.resize is not None and tuple(images.shape[1:3]) != tuple(self.spec.resize):
            x = images.permute(0, 3, 1, 2).float()
            x = F.interpolate(x, size=tuple(self.spec.resize), mode="bilinear", align_corners=False, antialias=True)
            images = x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        return images

    def _feature_maps(self, index: int, images: torch.Tensor) -> torch.Tensor:
        if self.backbone is None:
            return self.trunks[index](images)
        with torch.no_grad():
            return self.backbone(images)

    def logits_of_prepared(self, images: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Logits of images already passed through :meth:`prepare` (and perhaps augmented)."""
        features = [head(self._feature_maps(i, images[cam])) for i, (cam, head) in enumerate(zip(self.spec.cameras, self.heads))]
        return self.mlp(torch.cat(features, dim=-1))

    def forward(self, images: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.logits_of_prepared({cam: self.prepare(cam, images[cam]) for cam in self.spec.cameras})

    def success_probability(self, logits: torch.Tensor) -> torch.Tensor:
        """``(B,)`` probability of the last class (success): sigmoid of one logit or softmax of K."""
        if self.spec.num_logits == 1:
            return torch.sigmoid(logits[:, 0])
        return torch.softmax(logits, dim=-1)[:, -1]

    def train(self, mode: bool = True) -> "RewardClassifier":
        super().train(mode)
        if self.backbone is not None:
            self.backbone.eval()  # frozen: always eval mode
        return self


def save_classifier(path: str | os.PathLike, model: RewardClassifier, metadata: Mapping[str, Any]) -> Path:
    """Write the classifier (weights, spec, JSON-able ``metadata``) to ``path`` atomically."""
    try:
        metadata_json = json.dumps(dict(metadata), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"classifier metadata must be JSON-able with finite numbers: {err}") from err
    payload = {
        "format": FILE_FORMAT, "version": FILE_VERSION, "spec": json.dumps(model.spec.to_json()),
        "metadata": metadata_json, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    return atomic_write(Path(path), lambda file: torch.save(payload, file))


def load_classifier(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[RewardClassifier, dict]:
    """Load a classifier file (``weights_only=True``): the model in eval mode on ``device``, and its metadata."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reward classifier file {path} does not exist (train one with `robot-rl train-reward`)")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several types for a file that is not its own
        raise ValueError(f"{path} is not a readable torch file: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise ValueError(f"{path} is not a robot_rl reward classifier file")
    if payload.get("version") != FILE_VERSION:
        raise ValueError(f"{path} has classifier format version {payload.get('version')!r}; this robot_rl reads {FILE_VERSION}")
    model = RewardClassifier(ClassifierSpec.from_json(json.loads(payload["spec"])))
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), json.loads(payload["metadata"])
