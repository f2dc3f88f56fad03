"""Pre-train the frozen keypoint encoder on camera frames the project records (``robot-rl pretrain-encoder``).

Self-supervised, as a spatial autoencoder (Finn et al. 2016; the decoder as in Jakab et al. 2018,
"Unsupervised learning of object landmarks through conditional image generation"): the keypoints
of a randomly shifted frame (:class:`~robot_rl.encoders.keypoints.KeypointEncoder`) must
reconstruct that shifted frame, downsampled to ``recon_size`` x ``recon_size`` RGB. The decoder sees
only a Gaussian blob at each keypoint and learns a static background, so it can paint what moves
(the arm, the gripper, the cube) only where the keypoints say it is: the keypoints learn to follow it. Frames come from episode files (``robot-rl record --obs pixels``, or a run's
``episodes/``) and label directories (``robot-rl record-labels``, whose noisy and random episodes
show the scene more widely than expert demos do); every camera of every frame is one training
image for the one shared encoder. A held-out tenth of the frames measures how much of the
downsampled frames' variance the features explain; that number is saved in the file's metadata.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.agents.networks import image_to_float, random_shift
from robot_rl.encoders.keypoints import DEFAULT_STRIDES, DEFAULT_WIDTHS, KeypointEncoder, save_encoder


@dataclasses.dataclass
class PretrainEncoder:
    """Pre-train a frozen image encoder (spatial autoencoder) on recorded camera frames and save it
    for `robot-rl train --obs pixels --sac.image-encoder frozen --sac.pretrained-path FILE`."""

    episodes: tuple[pathlib.Path, ...] = ()
    """Directories of episode files recorded with --obs pixels (e.g. runs/demos, runs/<run>/episodes)."""
    labels: tuple[pathlib.Path, ...] = ()
    """Label directories from `robot-rl record-labels` (their frames; the labels are not used)."""
    out: pathlib.Path = pathlib.Path("runs/encoder.pt")
    """Where to write the encoder file (atomically)."""
    updates: int = 3000
    """Gradient steps."""
    batch_size: int = 32
    """Frames per gradient step."""
    lr: float = 3e-3
    """Adam learning rate."""
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    """Channels of the encoder's 3x3 convs (the last one's count is the number of keypoints)."""
    strides: tuple[int, ...] = DEFAULT_STRIDES
    """Strides of those convs."""
    recon_size: int = 32
    """Side of the downsampled frame the decoder reconstructs."""
    pad: int = 4
    """Random-shift padding (pixels) of the training frames: use the --sac.drq-pad of the runs."""
    seed: int = 0
    threads: int = 0
    """torch CPU threads (0: torch's default)."""

    def __post_init__(self) -> None:
        if not self.episodes and not self.labels:
            raise ValueError("pretrain-encoder needs frames: --episodes DIR [DIR ...] and/or --labels DIR [DIR ...]")
        if min(self.updates, self.batch_size, self.recon_size) < 1 or self.lr <= 0 or self.pad < 0:
            raise ValueError("--updates, --batch-size and --recon-size must be >= 1, --lr > 0 and --pad >= 0")

    def run(self) -> int:
        if self.threads:
            torch.set_num_threads(self.threads)
        frames = load_frames(self.episodes, self.labels)
        print(f"pretrain-encoder: {len(frames)} frames of {frames.shape[1]}x{frames.shape[2]} from "
              f"{len(self.episodes)} episode and {len(self.labels)} label directories", flush=True)
        encoder, report = pretrain(frames, self)
        save_encoder(self.out, encoder, report)
        print(f"wrote {self.out}: {encoder.out_dim} features per frame; held-out variance explained "
              f"{report['heldout_variance_explained']:.2f} (loss {report['first_loss']:.4f} -> {report['last_loss']:.4f}, "
              f"{report['seconds']:.0f} s)", flush=True)
        return 0


def load_frames(episode_dirs: tuple[pathlib.Path, ...] = (), label_dirs: tuple[pathlib.Path, ...] = ()) -> np.ndarray:
    """Every camera frame of the episode files and label directories, uint8 ``(N, H, W, 3)`` (one size)."""
    from robot_rl.data import read_episodes
    from robot_rl.reward.dataset import read_labels

    parts = []
    for directory in episode_dirs:
        episodes, _ = read_episodes(directory)
        parts += [value for episode in episodes for key, value in episode.observations.items() if value.ndim == 4]
    for directory in label_dirs:
        parts += list(read_labels(directory).images.values())
    sizes = {part.shape[1:] for part in parts}
    if not parts:
        raise ValueError(f"no camera frames in {[str(d) for d in (*episode_dirs, *label_dirs)]} "
                         "(record episodes with --obs pixels, or labels with `robot-rl record-labels`)")
    if len(sizes) > 1:
        raise ValueError(f"frames of several sizes {sorted(sizes)}: pre-train one encoder per image size")
    return np.concatenate(parts)


class SpatialAutoencoder(nn.Module):
    """The encoder and a decoder that paints a ``size`` x ``size`` RGB frame from its keypoints alone:
    a Gaussian blob (``sigma`` in image-width units of [-1, 1]) at each keypoint, two 3x3 convs turning
    the blobs into colours, plus a learned background (the scene's static part)."""

    def __init__(self, encoder: KeypointEncoder, size: int, sigma: float = 0.1):
        super().__init__()
        self.encoder, self.size, self.sigma = encoder, size, sigma
        keypoints = encoder.widths[-1]
        self.paint = nn.Sequential(nn.Conv2d(keypoints, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 3, 3, padding=1))
        self.background = nn.Parameter(torch.zeros(1, 3, size, size))
        self.register_buffer("grid", torch.linspace(-1.0, 1.0, size), persistent=False)

    def target(self, images: torch.Tensor) -> torch.Tensor:
        """The downsampled frames the decoder must paint: float ``(B, 3, size, size)`` in [-0.5, 0.5]."""
        return F.adaptive_avg_pool2d(image_to_float(images), self.size)

    def blobs(self, features: torch.Tensor) -> torch.Tensor:
        """Keypoint features ``(B, 3C)`` -> a Gaussian blob per keypoint, ``(B, C, size, size)``."""
        count = self.encoder.widths[-1]
        x, y = features[:, :count], features[:, count:2 * count]
        gauss_x = torch.exp(-((self.grid - x[..., None]) ** 2) / (2 * self.sigma ** 2))  # (B, C, size)
        gauss_y = torch.exp(-((self.grid - y[..., None]) ** 2) / (2 * self.sigma ** 2))
        return gauss_y[..., :, None] * gauss_x[..., None, :]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.background + self.paint(self.blobs(self.encoder(images)))


def pretrain(frames: np.ndarray, cfg: PretrainEncoder) -> tuple[KeypointEncoder, dict]:
    """Train on 90% of ``frames``; returns the frozen encoder and a report (losses, held-out score)."""
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(frames))
    held = order[: max(1, len(frames) // 10)] if len(frames) >= 10 else order[:0]
    train = order[len(held):]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = SpatialAutoencoder(KeypointEncoder(cfg.widths, cfg.strides), cfg.recon_size)
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start, losses = time.perf_counter(), []
    for step in range(cfg.updates):
        images = random_shift(torch.as_tensor(frames[rng.choice(train, cfg.batch_size)]), cfg.pad, generator)
        loss = F.mse_loss(model(images), model.target(images))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if (step + 1) % max(1, cfg.updates // 10) == 0:
            print(f"  update {step + 1}/{cfg.updates}: reconstruction loss {np.mean(losses[-50:]):.5f}", flush=True)
    encoder = model.encoder.requires_grad_(False).eval()
    report = {"frames": int(len(frames)), "updates": cfg.updates, "recon_size": cfg.recon_size, "pad": cfg.pad,
              "first_loss": losses[0], "last_loss": float(np.mean(losses[-50:])), "seconds": time.perf_counter() - start,
              "heldout_variance_explained": variance_explained(model, frames[held if len(held) else train])}
    return encoder, report


@torch.no_grad()
def variance_explained(model: SpatialAutoencoder, frames: np.ndarray) -> float:
    """``1 - MSE / variance`` of the downsampled (unshifted) frames: 0 paints the mean frame, 1 is perfect."""
    errors, targets = [], []
    for start in range(0, len(frames), 64):
        images = torch.as_tensor(frames[start:start + 64])
        target = model.target(images)
        errors.append((model(images) - target).pow(2))
        targets.append(target)
    target = torch.cat(targets)
    variance = (target - target.mean(dim=0)).pow(2).mean()
    return float(1.0 - torch.cat(errors).mean() / variance.clamp_min(1e-12))
