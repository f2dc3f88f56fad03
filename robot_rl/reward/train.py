"""Train a :class:`~robot_rl.reward.model.RewardClassifier` on a label directory.

Frames are split into training and held-out sets by EPISODE (frames of one episode are nearly
identical, so a frame split would leak), stratified so both sets have episodes with success
frames. Batches are class-balanced (each class equally likely, sampled with replacement), images
get a DrQ random shift and a small brightness/contrast jitter, and the loss is binary
cross-entropy (cross-entropy over stages with K > 2 classes).

Threshold: ``"f1"`` picks the success-probability threshold that maximizes F1 on the held-out
episodes (the middle of the best range on a 0.01..0.99 grid); the held-out numbers at that
threshold are therefore slightly optimistic, and ``benchmarks/reward_classifier.py`` measures on
fresh episodes instead. A number fixes the threshold.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import time
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from robot_rl.agents.base import POOLINGS
from robot_rl.agents.networks import load_backbone, random_shift
from robot_rl.reward.dataset import LabelSet, read_labels
from robot_rl.reward.model import ClassifierSpec, RewardClassifier, save_classifier


@dataclasses.dataclass
class RewardTrainConfig:
    """Train a reward classifier on labelled frames (from `robot-rl record-labels`)."""

    data: pathlib.Path = pathlib.Path("runs/labels")
    """Label directory (labels.json + chunk_*.npz)."""
    out: pathlib.Path = pathlib.Path("runs/reward_classifier.pt")
    """Classifier file to write; the confusion matrix goes next to it (<out>.confusion.png)."""
    cameras: str = ""
    """Comma-separated cameras to use, e.g. front,wrist (empty: every camera in the data)."""
    epochs: int = 10
    """Passes over the training frames (class-balanced batches, with replacement)."""
    batch_size: int = 64
    """Frames per gradient step."""
    batches_per_epoch: int = 0
    """Gradient steps per epoch (0: training frames / batch size)."""
    lr: float = 3e-4
    """AdamW learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    heldout_fraction: float = 0.2
    """Fraction of episodes held out for the metrics (stratified: with and without success frames)."""
    threshold: str = "f1"
    """'f1' (maximize held-out F1) or a success probability in (0, 1), e.g. 0.5."""
    seed: int = 0
    """Seed of the split, the initialization, sampling and augmentation."""
    device: str = "cpu"
    """Torch device: cpu or cuda."""
    drq_pad: int = 4
    """Random-shift augmentation padding in pixels (0: off)."""
    jitter: float = 0.1
    """Brightness and contrast jitter strength (0: off)."""
    crop: tuple[str, ...] = ()
    """Per-camera crops CAMERA=TOP,LEFT,HEIGHT,WIDTH in pixels, e.g. front=0,16,96,96."""
    resize: int = 0
    """Resize every (cropped) image to RESIZE x RESIZE pixels (0: keep the size)."""
    backbone_weights: pathlib.Path | None = None
    """Local ResNetBackbone state_dict (see agents.networks.save_backbone) used frozen; default: a
    trainable conv encoder per camera. Nothing is downloaded."""
    channels: int = 32
    """Conv encoder width."""
    layers: int = 4
    """Conv encoder depth (3x3 convs, the first with stride 2)."""
    pooling: str = "spatial_embedding"
    """Pooling of the feature maps: spatial_embedding or spatial_softmax."""
    features: int = 64
    """Features per camera."""
    hidden: tuple[int, ...] = (256,)
    """Hidden widths of the MLP on the concatenated camera features."""
    dropout: float = 0.1
    """Dropout on the MLP input."""

    def __post_init__(self) -> None:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "channels": self.channels,
                    "layers": self.layers, "features": self.features}
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError(f"--heldout-fraction must be in (0, 1), got {self.heldout_fraction}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"--pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if min(self.batches_per_epoch, self.drq_pad, self.resize) < 0 or self.jitter < 0 or not 0 <= self.dropout < 1:
            raise ValueError("--batches-per-epoch, --drq-pad, --resize and --jitter must be >= 0, --dropout in [0, 1)")
        if self.threshold != "f1" and not 0.0 < _float_or_nan(self.threshold) < 1.0:
            raise ValueError(f"--threshold must be 'f1' or a number in (0, 1), got {self.threshold!r}")
        self.crops()  # validates the syntax

    def camera_list(self) -> list[str] | None:
        names = [c.strip() for c in self.cameras.split(",") if c.strip()]
        return names or None

    def crops(self) -> dict[str, tuple[int, int, int, int]]:
        """``crop`` items as camera -> (top, left, height, width)."""
        out = {}
        for item in self.crop:
            cam, sep, numbers = item.partition("=")
            try:
                box = tuple(int(n) for n in numbers.split(","))
            except ValueError:
                box = ()
            if not sep or not cam or len(box) != 4:
                raise ValueError(f"--crop items look like CAMERA=TOP,LEFT,HEIGHT,WIDTH, got {item!r}")
            out[cam] = box
        return out


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


@dataclasses.dataclass
class TrainResult:
    model: RewardClassifier
    metadata: dict
    path: pathlib.Path
    confusion_png: pathlib.Path


def train_classifier(config: RewardTrainConfig) -> TrainResult:
    """Read, split, train, choose the threshold, save the classifier and its confusion matrix."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    data = read_labels(config.data, config.camera_list())
    check_classes(data, config.data)
    train_set, heldout = split_by_episode(data, config.heldout_fraction, rng)
    print(f"train: {len(train_set)} frames of {len(np.unique(train_set.episodes))} episodes {train_set.class_counts()}; "
          f"held out: {len(heldout)} frames of {len(np.unique(heldout.episodes))} episodes {heldout.class_counts()}", flush=True)
    model = build_classifier(config, data)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=config.weight_decay)
    generator = torch.Generator(device=config.device).manual_seed(config.seed)
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        loss = train_epoch(model, optimizer, train_set, config, rng, generator)
        probs = predict(model, heldout, config.device)
        m = binary_metrics(probs, is_success(heldout), 0.5)
        print(f"epoch {epoch}/{config.epochs} | train/loss {loss:.4f} | heldout@0.5 acc {m['accuracy']:.3f} "
              f"prec {m['precision']:.3f} rec {m['recall']:.3f} f1 {m['f1']:.3f} | {time.perf_counter() - start:.1f} s", flush=True)
    truth = is_success(heldout)
    threshold = choose_threshold(probs, truth) if config.threshold == "f1" else float(config.threshold)
    metrics = binary_metrics(probs, truth, threshold)
    metadata = classifier_metadata(config, data, train_set, heldout, threshold, metrics, binary_metrics(probs, truth, 0.5))
    path = save_classifier(config.out, model, metadata)
    png = plot_confusion(metrics, config.out.with_name(config.out.name + ".confusion.png"),
                         f"held-out episodes, threshold {threshold:.2f}")
    print(f"threshold {threshold:.2f} ({'max held-out F1' if config.threshold == 'f1' else 'fixed'}): heldout "
          f"acc {metrics['accuracy']:.3f} prec {metrics['precision']:.3f} rec {metrics['recall']:.3f} f1 {metrics['f1']:.3f} "
          f"(tp {metrics['tp']} fp {metrics['fp']} tn {metrics['tn']} fn {metrics['fn']})", flush=True)
    print(f"wrote {path} and {png}", flush=True)
    return TrainResult(model, metadata, path, png)


# ---------------------------------------------------------------- steps


def check_classes(data: LabelSet, where: Any) -> None:
    counts = data.class_counts()
    present = [name for name, n in counts.items() if n > 0]
    if len(present) < 2:
        raise ValueError(f"the labels at {where} hold only {present} frames ({counts}); a classifier needs "
                         "both success and failure frames")
    if counts[data.class_names[-1]] == 0:
        raise ValueError(f"the labels at {where} hold no {data.class_names[-1]!r} frames ({counts})")


def is_success(data: LabelSet) -> np.ndarray:
    return data.labels == len(data.class_names) - 1


def split_by_episode(data: LabelSet, fraction: float, rng: np.random.Generator) -> tuple[LabelSet, LabelSet]:
    """Hold out ``fraction`` of the episodes with success frames and of those without (at least one
    with success frames), so no episode has frames on both sides."""
    with_success = np.unique(data.episodes[is_success(data)])
    without = np.setdiff1d(np.unique(data.episodes), with_success)
    if len(with_success) < 2:
        raise ValueError(f"success frames come from {len(with_success)} episode(s); holding episodes out needs "
                         "them in at least 2 (record more episodes)")
    held = []
    for group in (with_success, without):
        count = min(max(1, round(fraction * len(group))), len(group) - 1) if len(group) >= 2 else 0
        held.extend(rng.permutation(group)[:count].tolist())
    mask = np.isin(data.episodes, held)
    train_set, heldout = data.subset(np.flatnonzero(~mask)), data.subset(np.flatnonzero(mask))
    for name, part in (("training", train_set), ("held-out", heldout)):
        if len(np.unique(part.labels)) < 2:
            raise ValueError(f"the {name} episodes hold only one class ({part.class_counts()}); record more episodes")
    return train_set, heldout


def build_classifier(config: RewardTrainConfig, data: LabelSet) -> RewardClassifier:
    """A fresh classifier for the data's cameras (with the frozen local backbone, if one is given)."""
    backbone = None if config.backbone_weights is None else load_backbone(config.backbone_weights)
    spec = ClassifierSpec(
        image_shapes={cam: tuple(data.metadata["image_shapes"][cam]) for cam in data.images},
        class_names=data.class_names, crop=config.crops(), resize=(config.resize,) * 2 if config.resize else None,
        channels=config.channels, layers=config.layers, backbone_widths=None if backbone is None else backbone.widths,
        pooling=config.pooling, features=config.features, hidden=tuple(config.hidden), dropout=config.dropout,
    )
    model = RewardClassifier(spec)
    if backbone is not None:
        model.backbone.load_state_dict(backbone.state_dict())
    return model.to(config.device)


def balanced_indices(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` indices, each class present in ``labels`` equally likely (with replacement)."""
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    which = rng.integers(len(groups), size=size)
    return np.array([groups[k][rng.integers(len(groups[k]))] for k in which], dtype=np.int64)


def jitter(images: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Per-image brightness (+-strength*255) and contrast (x(1 +- strength)) on uint8 (B, H, W, 3)."""
    if strength <= 0:
        return images
    shape = (images.shape[0], 1, 1, 1)
    contrast = 1.0 + strength * (2 * torch.rand(shape, generator=generator, device=images.device) - 1)
    brightness = 255.0 * strength * (2 * torch.rand(shape, generator=generator, device=images.device) - 1)
    x = images.float()
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast + mean + brightness).round_().clamp_(0, 255).to(torch.uint8)


def train_epoch(model: RewardClassifier, optimizer: torch.optim.Optimizer, data: LabelSet, config: RewardTrainConfig,
                rng: np.random.Generator, generator: torch.Generator) -> float:
    """One epoch of class-balanced, augmented batches; returns the mean loss."""
    model.train()
    batches = config.batches_per_epoch or max(1, len(data) // config.batch_size)
    total = 0.0
    for _ in range(batches):
        index = balanced_indices(data.labels, config.batch_size, rng)
        images = {}
        for cam, frames in data.images.items():
            x = model.prepare(cam, torch.from_numpy(frames[index]).to(config.device))
            images[cam] = jitter(random_shift(x, config.drq_pad, generator), config.jitter, generator)
        labels = torch.from_numpy(data.labels[index]).to(config.device)
        loss = classification_loss(model.logits_of_prepared(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach())
    return total / batches


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], labels.float())
    return F.cross_entropy(logits, labels.long())


@torch.no_grad()
def predict(model: RewardClassifier, data: LabelSet, device: str = "cpu", batch_size: int = 256) -> np.ndarray:
    """Success probability of every frame (eval mode, no augmentation)."""
    model.eval()
    out = []
    for start in range(0, len(data), batch_size):
        images = {cam: torch.from_numpy(frames[start:start + batch_size]).to(device) for cam, frames in data.images.items()}
        out.append(model.success_probability(model(images)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def binary_metrics(probs: np.ndarray, truth: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and the confusion counts of ``probs >= threshold`` (0 when undefined)."""
    pred = probs >= threshold
    tp, fp = int(np.sum(pred & truth)), int(np.sum(pred & ~truth))
    fn, tn = int(np.sum(~pred & truth)), int(np.sum(~pred & ~truth))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": (tp + tn) / max(len(truth), 1), "precision": precision, "recall": recall, "f1": f1,
            "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def choose_threshold(probs: np.ndarray, truth: np.ndarray, grid: Sequence[float] = tuple(np.linspace(0.01, 0.99, 99))) -> float:
    """The middle of the grid thresholds that maximize F1."""
    scores = np.array([binary_metrics(probs, truth, t)["f1"] for t in grid])
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    return float(round(grid[best[len(best) // 2]], 4))


def classifier_metadata(config: RewardTrainConfig, data: LabelSet, train_set: LabelSet, heldout: LabelSet,
                        threshold: float, metrics: dict, metrics_at_half: dict) -> dict:
    """What the classifier file records besides its spec: threshold, provenance, training stats."""
    return {
        "task": data.metadata.get("task"), "cameras": list(data.images), "class_names": list(data.class_names),
        "image_shapes": {cam: list(data.metadata["image_shapes"][cam]) for cam in data.images},
        "crop": {cam: list(box) for cam, box in config.crops().items()}, "resize": config.resize or None,
        "threshold": threshold, "threshold_rule": "max held-out F1" if config.threshold == "f1" else "fixed",
        "label_source": data.metadata.get("source"), "env": data.metadata.get("env", {}),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "training": {
            "data": str(config.data), "epochs": config.epochs, "seed": config.seed,
            "backbone_weights": None if config.backbone_weights is None else str(config.backbone_weights),
            "train_frames": len(train_set), "train_episodes": int(len(np.unique(train_set.episodes))),
            "train_class_counts": train_set.class_counts(), "heldout_frames": len(heldout),
            "heldout_episodes": int(len(np.unique(heldout.episodes))), "heldout_class_counts": heldout.class_counts(),
            "heldout": metrics, "heldout_at_0.5": metrics_at_half,
        },
    }


def plot_confusion(metrics: dict, png: pathlib.Path, title: str) -> pathlib.Path:
    """A 2x2 success/failure confusion matrix: counts, shaded by share of the true class; written atomically."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.array([[metrics["tn"], metrics["fp"]], [metrics["fn"], metrics["tp"]]])
    fig, ax = plt.subplots(figsize=(4, 3.6), dpi=100)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (row, col), n in np.ndenumerate(counts):
        ax.text(col, row, str(n), ha="center", va="center", fontsize=14, color="white" if share[row, col] > 0.5 else "black")
    ax.set_xticks([0, 1], ["not success", "success"])
    ax.set_yticks([0, 1], ["not success", "success"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\nacc {metrics['accuracy']:.3f} prec {metrics['precision']:.3f} rec {metrics['recall']:.3f}", fontsize=9)
    fig.tight_layout()
    tmp = png.with_name(f".{png.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, png)
    return png
