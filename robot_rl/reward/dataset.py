"""Labelled camera frames for reward classifiers: an open on-disk format and its reader.

A label directory holds ``labels.json`` and ``chunk_000000.npz``, ``chunk_000001.npz``... Each
chunk is readable with ``np.load(path, allow_pickle=False)`` and holds, for its N frames:

    <camera>  uint8 (N, H, W, 3)  one array per camera (RGB)
    label     uint8 (N,)          class index into ``class_names`` (0 failure, 1 success)
    episode   int32 (N,)          episode id, unique within the directory
    step      int32 (N,)          observation index in its episode (0: the reset observation)

``labels.json``: ``format`` ("robot_rl.labels"), ``version``, ``task``, ``cameras``,
``image_shapes`` (camera -> [H, W, 3]), ``class_names`` (the last class is "success"),
``source``, running counts (``frames``, ``class_counts``, ``episodes``, ``chunks``) and ``env``
(options the env was made with). Chunks and metadata are written atomically (temp file, fsync,
rename): a crashed writer loses at most the frames not yet flushed. Recording again into the same
directory appends, with episode ids continuing, if task, cameras, shapes and classes match.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from robot_rl.files import atomic_write

FORMAT = "robot_rl.labels"
VERSION = 1
METADATA_FILE = "labels.json"
BINARY_CLASSES = ("failure", "success")
_CHUNK = "chunk_{:06d}.npz"
_PER_FRAME = {"label": np.uint8, "episode": np.int32, "step": np.int32}


@dataclasses.dataclass
class LabelSet:
    """Every frame of a label directory, in memory (see the module docstring for shapes)."""

    images: dict[str, np.ndarray]
    labels: np.ndarray
    episodes: np.ndarray
    steps: np.ndarray
    metadata: dict

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.metadata["class_names"])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, counts)}

    def subset(self, index: np.ndarray) -> "LabelSet":
        return LabelSet({k: v[index] for k, v in self.images.items()}, self.labels[index], self.episodes[index],
                        self.steps[index], self.metadata)


class LabelWriter:
    """Appends labelled frames to a label directory, one chunk file per ``chunk_frames`` frames.

    Use as a context manager (or call :meth:`close`) so the last partial chunk is written.
    """

    def __init__(self, directory: str | os.PathLike, task: str, image_shapes: Mapping[str, Sequence[int]],
                 source: str, class_names: Sequence[str] = BINARY_CLASSES, chunk_frames: int = 256,
                 env_options: Mapping[str, Any] | None = None):
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        if not image_shapes:
            raise ValueError("a label directory needs at least one camera")
        self.directory = Path(directory)
        self.chunk_frames = chunk_frames
        wanted = {
            "format": FORMAT, "version": VERSION, "task": task, "cameras": list(image_shapes),
            "image_shapes": {cam: [int(n) for n in shape] for cam, shape in image_shapes.items()},
            "class_names": list(class_names), "source": source, "env": dict(env_options or {}),
            "frames": 0, "class_counts": [0] * len(class_names), "episodes": 0, "chunks": 0,
        }
        self.metadata = _continue_metadata(self.directory, wanted)
        self._buffer: dict[str, list] = {key: [] for key in (*self.metadata["cameras"], *_PER_FRAME)}

    @property
    def class_counts(self) -> list[int]:
        """Frames per class so far, flushed or not."""
        counts = list(self.metadata["class_counts"])
        for label in self._buffer["label"]:
            counts[label] += 1
        return counts

    def new_episode(self) -> int:
        """A fresh episode id."""
        self.metadata["episodes"] += 1
        return self.metadata["episodes"] - 1

    def add(self, images: Mapping[str, np.ndarray], label: int, episode: int, step: int) -> None:
        """Buffer one frame (every camera of the directory); writes a chunk when the buffer is full."""
        if not 0 <= label < len(self.metadata["class_names"]):
            raise ValueError(f"label must be a class index in [0, {len(self.metadata['class_names'])}), got {label}")
        for cam in self.metadata["cameras"]:
            if cam not in images:
                raise ValueError(f"frame has no camera {cam!r}; it has {sorted(images)}")
            image = np.asarray(images[cam])
            shape = tuple(self.metadata["image_shapes"][cam])
            if image.shape != shape or image.dtype != np.uint8:
                raise ValueError(f"camera {cam!r}: expected uint8 {shape}, got {image.dtype} {image.shape}")
            self._buffer[cam].append(image.copy())
        for key, value in (("label", label), ("episode", episode), ("step", step)):
            self._buffer[key].append(value)
        if len(self._buffer["label"]) >= self.chunk_frames:
            self.flush()

    def flush(self) -> Path | None:
        """Write the buffered frames as one chunk, then the updated metadata; return the chunk path."""
        if not self._buffer["label"]:
            _write_json(self.directory / METADATA_FILE, self.metadata)
            return None
        arrays = {cam: np.stack(self._buffer[cam]) for cam in self.metadata["cameras"]}
        arrays.update({key: np.asarray(self._buffer[key], dtype=dtype) for key, dtype in _PER_FRAME.items()})
        path = self.directory / _CHUNK.format(self.metadata["chunks"])
        atomic_write(path, lambda file: np.savez(file, **arrays))
        self.metadata["chunks"] += 1
        self.metadata["frames"] += len(arrays["label"])
        self.metadata["class_counts"] = self.class_counts
        self._buffer = {key: [] for key in self._buffer}
        _write_json(self.directory / METADATA_FILE, self.metadata)
        return path

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> "LabelWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_labels(directory: str | os.PathLike, cameras: Sequence[str] | None = None) -> LabelSet:
    """Load every chunk of a label directory (only ``cameras``, default all), with clear errors:
    no such directory / no ``labels.json`` (``FileNotFoundError``), no frames, a camera the data
    lacks or a chunk that does not match the metadata (``ValueError``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"label directory {directory} does not exist")
    meta_path = directory / METADATA_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{directory} has no {METADATA_FILE}: not a label directory "
                                "(write one with `robot-rl record-labels`)")
    metadata = _read_metadata(meta_path)
    cameras = list(metadata["cameras"] if cameras is None else cameras)
    missing = [cam for cam in cameras if cam not in metadata["cameras"]]
    if missing or not cameras:
        raise ValueError(f"cameras {missing or cameras} are not in the labels at {directory}; "
                         f"it has cameras {metadata['cameras']}")
    paths = sorted(directory.glob("chunk_*.npz"))
    if not paths:
        raise ValueError(f"label directory {directory} holds no frames (no chunk_*.npz files)")
    chunks = [_read_chunk(path, metadata, cameras) for path in paths]
    return LabelSet(
        images={cam: np.concatenate([c[cam] for c in chunks]) for cam in cameras},
        labels=np.concatenate([c["label"] for c in chunks]),
        episodes=np.concatenate([c["episode"] for c in chunks]),
        steps=np.concatenate([c["step"] for c in chunks]),
        metadata={**metadata, "cameras": cameras},
    )


def _read_metadata(path: Path) -> dict:
    try:
        metadata = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not robot_rl label metadata (format must be {FORMAT!r})")
    if metadata.get("version") != VERSION:
        raise ValueError(f"{path} has label format version {metadata.get('version')!r}; this robot_rl reads {VERSION}")
    return metadata


def _read_chunk(path: Path, metadata: Mapping, cameras: Sequence[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in (*cameras, *_PER_FRAME) if key in archive.files}
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"label chunk {path} is not a readable .npz file: {err}") from err
    missing = [key for key in (*cameras, *_PER_FRAME) if key not in arrays]
    if missing:
        raise ValueError(f"label chunk {path} is missing arrays {missing}")
    frames = len(arrays["label"])
    expected = {cam: ((frames, *metadata["image_shapes"][cam]), np.uint8) for cam in cameras}
    expected.update({key: ((frames,), dtype) for key, dtype in _PER_FRAME.items()})
    for key, (shape, dtype) in expected.items():
        if arrays[key].shape != shape or arrays[key].dtype != dtype:
            raise ValueError(f"label chunk {path}: {key!r} is {arrays[key].dtype} {arrays[key].shape}, "
                             f"expected {np.dtype(dtype)} {shape}")
    if frames and arrays["label"].max() >= len(metadata["class_names"]):
        raise ValueError(f"label chunk {path} has labels >= {len(metadata['class_names'])} classes")
    return arrays


def _continue_metadata(directory: Path, wanted: dict) -> dict:
    """``wanted`` for a new directory; the existing metadata when it describes the same data."""
    path = directory / METADATA_FILE
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        _write_json(path, wanted)
        return wanted
    existing = _read_metadata(path)
    for key in ("task", "cameras", "image_shapes", "class_names"):
        if existing.get(key) != wanted[key]:
            raise ValueError(f"{directory} already holds labels with {key} {existing.get(key)!r}, not "
                             f"{wanted[key]!r}; use another directory")
    return existing


def _write_json(path: Path, value: Any) -> None:
    text = json.dumps(value, indent=1)
    atomic_write(path, lambda file: file.write(text.encode()))


# ---------------------------------------------------------------- sources

Policy = Callable[[Any], np.ndarray]  # the unwrapped env -> an action


@dataclasses.dataclass
class CollectSummary:
    """What a label source wrote."""

    episodes: int = 0
    successful_episodes: int = 0
    frames: int = 0
    positives: int = 0
    dropped_positives: int = 0


def image_shapes(observation_space: Any, cameras: Sequence[str] | None = None) -> dict[str, tuple[int, ...]]:
    """Camera -> (H, W, 3) of a pixel env's Dict observation space (``cameras``: a subset, default all)."""
    spaces = getattr(observation_space, "spaces", None)
    if not isinstance(spaces, Mapping):
        raise ValueError("labelling frames needs a pixel env (a Dict observation with cameras); use obs='pixels'")
    images = {k: tuple(s.shape) for k, s in spaces.items() if s.dtype == np.uint8 and len(s.shape) == 3}
    cameras = list(images if cameras is None else cameras)
    missing = [cam for cam in cameras if cam not in images]
    if missing or not cameras:
        raise ValueError(f"cameras {missing or cameras} are not observed by the env; it has cameras {sorted(images)}")
    return {cam: images[cam] for cam in cameras}


def noisy_expert(noise_std: float, rng: np.random.Generator) -> Policy:
    """The task's scripted expert plus Gaussian action noise (std in normalized action units)."""

    def act(env: Any) -> np.ndarray:
        action = env.task.expert(env.state)
        return np.clip(action + rng.normal(0.0, noise_std, size=action.shape), -1.0, 1.0).astype(np.float32)

    return act


def random_policy(rng: np.random.Generator) -> Policy:
    """Uniform random actions: frames of failures far from success."""
    return lambda env: rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)


def collect_from_env(env: Any, writer: LabelWriter, episodes: int, seed: int, noise: float = 1.0,
                     random_fraction: float = 0.1, hold_steps: int = 5, max_positives: int = 200) -> CollectSummary:
    """Label every observed frame by the task's own success (``info["success"]``) at that step.

    Episode ``i`` (seed ``seed + i``) is driven by uniform random actions with probability
    ``random_fraction``, else by the scripted expert with Gaussian noise whose std is drawn
    uniformly from ``[0, noise]``, so there are both successes and failures. After the first
    success the episode runs ``hold_steps`` more steps (past the task's termination, which the
    bare env allows) so positives show a range of success states. Positive frames past
    ``max_positives`` are dropped; negatives are always kept.
    """
    env = env.unwrapped
    rng = np.random.default_rng(seed)
    summary = CollectSummary()
    for i in range(episodes):
        if rng.random() < random_fraction:
            policy = random_policy(rng)
        else:
            policy = noisy_expert(noise * rng.random(), rng)
        succeeded = _labelled_episode(env, policy, seed + i, hold_steps, writer, max_positives, summary)
        summary.episodes += 1
        summary.successful_episodes += succeeded
        print(f"label episode {i + 1}/{episodes}: {'success' if succeeded else 'failure'}; "
              f"{summary.frames} frames, {summary.positives} positive", flush=True)
    return summary


def _labelled_episode(env: Any, policy: Policy, seed: int, hold_steps: int, writer: LabelWriter,
                      max_positives: int, summary: CollectSummary) -> bool:
    episode = writer.new_episode()
    obs, info = env.reset(seed=seed)
    _emit(writer, obs, bool(info["success"]), episode, 0, max_positives, summary)
    step, first_success = 0, None
    while True:
        obs, _, terminated, truncated, info = env.step(policy(env))
        step += 1
        _emit(writer, obs, bool(info["success"]), episode, step, max_positives, summary)
        if info["success"] and first_success is None:
            first_success = step
        if first_success is not None and step - first_success >= hold_steps:
            return True
        if first_success is None and (terminated or truncated):
            return False
        if step >= env.max_episode_steps + hold_steps:  # safeguard for an env without a time limit
            return first_success is not None


def _emit(writer: LabelWriter, obs: Mapping, success: bool, episode: int, step: int, max_positives: int,
          summary: CollectSummary) -> None:
    if success and summary.positives >= max_positives:
        summary.dropped_positives += 1
        return
    writer.add(obs, int(success), episode, step)
    summary.frames += 1
    summary.positives += success


def collect_from_teleop(env: Any, device: Any, writer: LabelWriter, episodes: int, seed: int,
                        max_positives: int) -> CollectSummary:
    """Record ``episodes`` episodes labelled by hand (re-recorded ones not counted) into ``writer``:
    a person drives with the connected teleop ``device`` and presses success and failure (see
    :mod:`robot_rl.human.labels`). Episode ``i`` uses seed ``seed + i``; a re-recorded one keeps it."""
    from robot_rl.human.labels import HandLabeller

    labeller, summary = HandLabeller(env, device), CollectSummary()
    while summary.episodes < episodes:
        frames = labeller.episode(seed + summary.episodes)
        if frames is None:
            print(f"episode {summary.episodes + 1}/{episodes}: re-record (frames discarded)", flush=True)
            continue
        episode, positives_before = writer.new_episode(), summary.positives
        for step, (obs, success) in enumerate(frames):
            _emit(writer, obs, success, episode, step, max_positives, summary)
        summary.episodes += 1
        summary.successful_episodes += int(summary.positives > positives_before)
        print(f"episode {summary.episodes}/{episodes}: {len(frames)} frames, "
              f"{sum(s for _, s in frames)} labelled success", flush=True)
    return summary


def collect_from_episodes(episodes: Sequence[Any], writer: LabelWriter, label_from: str = "final",
                          success_reward: float = 1.0, max_positives: int = 200) -> CollectSummary:
    """Label the frames of recorded episodes (:class:`robot_rl.data.Episode`).

    Episode files store per-step rewards and the episode's outcome, not per-step success, so:
    ``label_from="final"``: the last observation is positive iff the episode succeeded
    (``Episode.success``; in pick_cube success terminates the episode, so it is the only success
    frame), every other frame negative. ``"reward"``: observation ``t + 1`` is positive iff the
    reward of step ``t`` is ``>= success_reward`` (sparse tasks that keep running after success).
    """
    if label_from not in ("final", "reward"):
        raise ValueError(f"label_from must be 'final' or 'reward', got {label_from!r}")
    summary = CollectSummary()
    for ep in episodes:
        missing = [cam for cam in writer.metadata["cameras"] if cam not in ep.observations]
        if missing:
            raise ValueError(f"episode (seed {ep.metadata.get('seed')}) has no camera {missing}; it holds "
                             f"observations {sorted(ep.observations)} (record with --obs pixels)")
        positive = np.zeros(len(ep) + 1, dtype=bool)
        if label_from == "final":
            positive[-1] = ep.success
        else:
            positive[1:] = ep.rewards >= success_reward
        episode = writer.new_episode()
        for t in range(len(ep) + 1):
            _emit(writer, {cam: ep.observations[cam][t] for cam in writer.metadata["cameras"]}, bool(positive[t]),
                  episode, t, max_positives, summary)
        summary.episodes += 1
        summary.successful_episodes += bool(positive.any())
    return summary
