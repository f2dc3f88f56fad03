"""The on-disk episode format: one ``.npz`` file per episode, readable with numpy alone.

A file holds ``obs/<key>`` arrays of shape ``(T+1, ...)`` (observations at t=0..T), ``action``
``(T, A)`` float32 (the executed action, in the env's normalized action space), ``reward``
``(T,)`` float32, ``terminated``/``truncated``/``intervention`` ``(T,)`` bool and ``metadata``, a
0-d unicode array holding a JSON object. ``np.load(path, allow_pickle=False)`` reads it.

Files are written atomically: a ``*.tmp`` file in the same directory, fsynced, then renamed into
place and the directory fsynced. A crashed writer leaves at most a ``*.tmp`` file, which readers
ignore. One directory is meant to have one writer at a time (default names are not reserved).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.metadata
import json
import logging
import os
import re
import secrets
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Mapping

import numpy as np

from robot_rl.data.episode_metadata import FORMAT_VERSION, check_metadata

logger = logging.getLogger(__name__)

# File key -> Episode field, for the per-step arrays.
_STEP_FIELDS = {
    "action": "actions", "reward": "rewards", "terminated": "terminated", "truncated": "truncated",
    "intervention": "intervention",
}
_STEP_KEYS = tuple(_STEP_FIELDS)
_DEFAULT_NAME = re.compile(r"^episode_(\d+)\.npz$")


class EpisodeFileError(ValueError):
    """An episode file that cannot be read; the message names the file and what is wrong."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"file {self.path} {problem}")

    def __reduce__(self):
        return type(self), (self.path, self.problem)


@dataclasses.dataclass
class Episode:
    """One episode of T steps. See the module docstring for shapes and dtypes."""

    observations: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    intervention: np.ndarray
    metadata: dict

    def __len__(self) -> int:
        return len(self.actions)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first thing that breaks the format."""
        check_metadata(self.metadata)
        _metadata_to_json(self.metadata)
        steps = len(self.actions)
        if steps < 1:
            raise ValueError("an episode needs at least one step, got 0 actions")
        _check_steps(self, steps)
        _check_observations(self.observations, self.metadata["observation_spec"], steps)

    @property
    def success(self) -> bool:
        """``metadata["success"]`` if recorded, else whether the episode ended in a rewarded termination."""
        if "success" in self.metadata:
            return bool(self.metadata["success"])
        return bool(self.terminated[-1] and self.rewards[-1] > 0)


class EpisodeRecorder:
    """Accumulates one episode in memory while an env runs.

    ``metadata`` is what holds for every episode (task, specs, control rate...); per-episode
    values (seed, success...) go to :meth:`finish`. ``format_version`` and ``robot_rl_version``
    are filled in when absent.
    """

    def __init__(self, metadata: Mapping[str, Any]):
        self._metadata = copy.deepcopy(dict(metadata))
        self._metadata.setdefault("format_version", FORMAT_VERSION)
        self._metadata.setdefault("robot_rl_version", _library_version())
        check_metadata(self._metadata)
        self._obs: dict[str, list[np.ndarray]] | None = None
        self._steps: dict[str, list] = {key: [] for key in _STEP_KEYS}

    def start(self, obs: np.ndarray | Mapping[str, np.ndarray]) -> None:
        """Begin a new episode at its first observation, dropping anything recorded so far."""
        self._obs = {key: [value] for key, value in self._copy_obs(obs).items()}
        self._steps = {key: [] for key in _STEP_KEYS}

    def add(self, action, reward, terminated, truncated, next_obs, intervention=False) -> None:
        """Record one step: the executed action and what followed it."""
        if self._obs is None:
            raise RuntimeError("EpisodeRecorder.add() called before start(obs)")
        if self._steps["terminated"] and (self._steps["terminated"][-1] or self._steps["truncated"][-1]):
            raise RuntimeError("the episode already ended (terminated or truncated); call finish() or start()")
        next_obs = self._copy_obs(next_obs)
        if next_obs.keys() != self._obs.keys():
            raise ValueError(f"observation keys changed: started with {sorted(self._obs)}, got {sorted(next_obs)}")
        for key, value in next_obs.items():
            self._obs[key].append(value)
        self._steps["action"].append(np.array(action, dtype=np.float32))
        self._steps["reward"].append(np.float32(reward))
        self._steps["terminated"].append(bool(terminated))
        self._steps["truncated"].append(bool(truncated))
        self._steps["intervention"].append(bool(intervention))

    def __len__(self) -> int:
        return len(self._steps["action"])

    def finish(self, **extra_metadata) -> Episode:
        """Stack what was recorded into a validated :class:`Episode`; ``start()`` may follow."""
        if self._obs is None:
            raise RuntimeError("EpisodeRecorder.finish() called before start(obs)")
        if not self._steps["action"]:
            raise ValueError("an episode needs at least one step; add() was never called")
        episode = Episode(
            observations={key: np.stack(values) for key, values in self._obs.items()},
            actions=np.stack(self._steps["action"]),
            rewards=np.array(self._steps["reward"], dtype=np.float32),
            terminated=np.array(self._steps["terminated"], dtype=bool),
            truncated=np.array(self._steps["truncated"], dtype=bool),
            intervention=np.array(self._steps["intervention"], dtype=bool),
            metadata={**copy.deepcopy(self._metadata), **extra_metadata},
        )
        episode.validate()
        self._obs = None
        self._steps = {key: [] for key in _STEP_KEYS}
        return episode

    def _copy_obs(self, obs) -> dict[str, np.ndarray]:
        """Copy ``obs`` (a flat state vector or a dict) into arrays of the spec's dtypes."""
        if not isinstance(obs, Mapping):
            obs = {"state": obs}
        spec = self._metadata["observation_spec"]
        copied = {}
        for key, value in obs.items():
            value = np.array(value)
            dtype = np.dtype(spec[key]["dtype"]) if key in spec else value.dtype
            if not np.can_cast(value.dtype, dtype, casting="same_kind"):
                raise ValueError(f"observation {key!r}: cannot store {value.dtype} as {dtype}")
            copied[key] = value.astype(dtype, copy=False)
        return copied


def write_episode(
    episode: Episode, directory: str | os.PathLike, name: str | None = None, compress: bool = False
) -> Path:
    """Validate ``episode`` and write it atomically to ``directory``; return the file's path.

    The default name is ``episode_{index:06d}.npz``, one past the largest such index already in
    the directory. An existing file is never overwritten (``FileExistsError``). If writing fails,
    the temporary file is removed and the error re-raised; other files are untouched.
    """
    episode.validate()
    if name is not None and (Path(name).name != name or not name.endswith(".npz")):
        raise ValueError(f"episode file name must be a bare '*.npz' name, got {name!r}")
    arrays = _episode_arrays(episode, _metadata_to_json(episode.metadata))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (_next_default_name(directory) if name is None else name)
    _refuse_existing(path)
    tmp = directory / f".{path.name}.{secrets.token_hex(4)}.tmp"
    file = open(tmp, "xb")  # exclusive create; unlike mkstemp, honours the umask (not 0600)
    try:
        with file:
            (np.savez_compressed if compress else np.savez)(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        _refuse_existing(path)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if os.name == "posix":  # make the rename durable; other systems cannot fsync a directory
        _fsync_directory(directory)
    return path


def read_episode(path: str | os.PathLike, task: str | None = None) -> Episode:
    """Read and validate one episode file; any problem with its content is an :class:`EpisodeFileError`.

    ``task``, when given, must match the file's ``metadata["task"]``. A missing file raises
    ``FileNotFoundError``.
    """
    path = Path(path)
    with open(path, "rb") as file:
        arrays = _load_arrays(path, file)
    metadata = _parse_metadata(path, arrays.pop("metadata"))
    episode = Episode(
        observations={key[len("obs/"):]: value for key, value in arrays.items() if key.startswith("obs/")},
        metadata=metadata,
        **{field: arrays[key] for key, field in _STEP_FIELDS.items()},
    )
    try:
        episode.validate()
    except (ValueError, TypeError) as err:
        raise EpisodeFileError(path, f"is not a valid episode: {err}") from err
    if task is not None and metadata["task"] != task:
        raise EpisodeFileError(path, f"holds task {metadata['task']!r}, expected {task!r}")
    return episode


def read_episodes(
    directory: str | os.PathLike, task: str | None = None, strict: bool = False
) -> tuple[list[Episode], list[EpisodeFileError]]:
    """Read every ``*.npz`` file in ``directory`` in name order (``*.tmp`` and other files are ignored).

    Bad files are logged and returned as errors while the rest load; ``strict=True`` raises the
    first error instead.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"episode directory {directory} does not exist or is not a directory")
    episodes, errors = [], []
    for path in sorted(p for p in directory.iterdir() if p.suffix == ".npz" and p.is_file()):
        try:
            episodes.append(read_episode(path, task=task))
        except EpisodeFileError as err:
            if strict:
                raise
            logger.warning("skipping episode: %s", err)
            errors.append(err)
    return episodes, errors


def _check_steps(episode: Episode, steps: int) -> None:
    action_dim = episode.metadata["action_spec"]["shape"][0]
    per_step = {
        "actions": (episode.actions, (steps, action_dim), np.float32),
        "rewards": (episode.rewards, (steps,), np.float32),
        "terminated": (episode.terminated, (steps,), np.bool_),
        "truncated": (episode.truncated, (steps,), np.bool_),
        "intervention": (episode.intervention, (steps,), np.bool_),
    }
    for label, (array, shape, dtype) in per_step.items():
        _check_array(label, array, shape, dtype)
    for label in ("actions", "rewards"):
        if not np.all(np.isfinite(per_step[label][0])):
            raise ValueError(f"{label} must be finite, found NaN or inf")
    for label in ("terminated", "truncated"):
        early = np.flatnonzero(per_step[label][0][:-1])
        if early.size:
            raise ValueError(f"{label} is True at step {early[0]} of {steps}; only the last step may end an episode")


def _check_observations(observations: Mapping[str, np.ndarray], spec: Mapping, steps: int) -> None:
    if not isinstance(observations, Mapping) or set(observations) != set(spec):
        keys = sorted(observations) if isinstance(observations, Mapping) else observations
        raise ValueError(f"observation keys {keys} do not match observation_spec keys {sorted(spec)}")
    for key, entry in spec.items():
        shape = (steps + 1, *entry["shape"])
        _check_array(f"observation {key!r}", observations[key], shape, np.dtype(entry["dtype"]))


def _check_array(label: str, array: Any, shape: tuple, dtype: Any) -> None:
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{label} must be a numpy array, got {type(array).__name__}")
    if array.dtype != dtype:
        raise ValueError(f"{label} must have dtype {np.dtype(dtype)}, got {array.dtype}")
    if array.shape != tuple(shape):
        raise ValueError(f"{label} must have shape {tuple(shape)}, got {array.shape}")


def _metadata_to_json(metadata: Mapping[str, Any]) -> str:
    """Serialize metadata; numpy scalars and arrays become plain JSON numbers and lists."""

    def plain(value):
        if isinstance(value, (np.generic, np.ndarray)):
            return value.tolist()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    try:
        return json.dumps(metadata, default=plain, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"metadata must be JSON serializable with finite numbers: {err}") from err


def _episode_arrays(episode: Episode, metadata_json: str) -> dict[str, np.ndarray]:
    arrays = {f"obs/{key}": value for key, value in episode.observations.items()}
    arrays.update({key: getattr(episode, field) for key, field in _STEP_FIELDS.items()})
    arrays["metadata"] = np.array(metadata_json)  # 0-d unicode: readable without pickle
    return arrays


NPZ_READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError)
"""What ``np.load`` of a truncated, empty or corrupt ``.npz`` raises (zipfile reports damaged
headers as NotImplementedError/RuntimeError: odd method, "encrypted")."""


def _load_arrays(path: Path, file: BinaryIO) -> dict[str, np.ndarray]:
    """Every array of an open ``.npz`` file, or an :class:`EpisodeFileError`."""
    try:
        archive = np.load(file, allow_pickle=False)
        if isinstance(archive, np.lib.npyio.NpzFile):
            with archive:
                arrays = {key: archive[key] for key in archive.files}
    except NPZ_READ_ERRORS as err:
        raise EpisodeFileError(path, f"is not a readable .npz archive (truncated or corrupt?): {err}") from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise EpisodeFileError(path, "holds a single .npy array, not an .npz episode archive")
    obs_keys = [key for key in arrays if key.startswith("obs/")]
    missing = [key for key in (*_STEP_KEYS, "metadata") if key not in arrays] + ([] if obs_keys else ["obs/<key>"])
    if missing:
        raise EpisodeFileError(path, f"is missing keys {missing}")
    unknown = sorted(set(arrays) - set(_STEP_KEYS) - {"metadata"} - set(obs_keys))
    if unknown:
        raise EpisodeFileError(path, f"has unexpected keys {unknown}")
    return arrays


def _parse_metadata(path: Path, array: np.ndarray) -> dict:
    if array.ndim != 0 or array.dtype.kind != "U":
        raise EpisodeFileError(path, f"has metadata {array.dtype} {array.shape}, expected a 0-d unicode string")
    try:
        metadata = json.loads(array.item())
    except json.JSONDecodeError as err:
        raise EpisodeFileError(path, f"has metadata that is not valid JSON: {err}") from err
    if not isinstance(metadata, dict):
        raise EpisodeFileError(path, f"has metadata that is a JSON {type(metadata).__name__}, expected an object")
    version = metadata.get("format_version")
    if type(version) is int and version > FORMAT_VERSION:
        raise EpisodeFileError(path, f"has format_version {version}; this robot_rl reads up to {FORMAT_VERSION}")
    return metadata


def _next_default_name(directory: Path) -> str:
    indices = [int(match.group(1)) for p in directory.iterdir() if (match := _DEFAULT_NAME.match(p.name))]
    return f"episode_{max(indices) + 1 if indices else 0:06d}.npz"


def _refuse_existing(path: Path) -> None:
    if path.exists():
        raise FileExistsError(f"episode file {path} already exists; refusing to overwrite it")


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _library_version() -> str:
    try:
        return importlib.metadata.version("robot-rl")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
