"""Episode-file metadata: the one function that writes it, and its validation (what
:mod:`robot_rl.data.episodes` requires of it)."""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

FORMAT_VERSION = 1

REQUIRED_METADATA = (
    "format_version", "task", "obs_mode", "control_hz", "robot_rl_version", "observation_spec", "action_spec"
)
_OBS_DTYPES = ("float32", "uint8")


def episode_metadata(task: str, obs_mode: str, spec: Any, action_space: Any, control_hz: float, source: str, *,
                     backend: str | None = None, state_parts: Mapping[str, slice] | None = None, **extra: Any) -> dict:
    """The per-run metadata every episode file carries (recorded demos, online data, the learner's store).

    Args:
        task: the task name (a robot_rl task or a gymnasium id).
        obs_mode: ``state`` or ``pixels``.
        spec: the canonical observation's :class:`~robot_rl.data.schema.ObsSpec`.
        action_space: the env's (normalized) Box action space.
        control_hz: steps per second.
        source: who acted (``expert``, ``online``, a teleop device...).
        backend: the backend name, where known.
        state_parts: named slices of the ``state`` vector (``RobotEnv.state_layout``).
        **extra: more JSON-able keys (``teleop_device``...).
    """
    observation_spec: dict[str, dict] = {k: {"shape": list(s), "dtype": str(d)} for k, (s, d) in spec.shapes().items()}
    if state_parts:
        observation_spec["state"]["parts"] = {k: [part.start, part.stop] for k, part in state_parts.items()}
    metadata = {
        "task": task,
        "obs_mode": obs_mode,
        "control_hz": float(control_hz),
        "observation_spec": observation_spec,
        "action_spec": {"shape": list(action_space.shape), "low": action_space.low.tolist(), "high": action_space.high.tolist()},
        "source": source,
    }
    if backend is not None:
        metadata["backend"] = backend
    return {**metadata, **extra}


def check_metadata(metadata: Mapping[str, Any]) -> None:
    if not isinstance(metadata, Mapping):
        raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}")
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ValueError(f"metadata is missing required keys {missing}")
    version = metadata["format_version"]
    if type(version) is not int or version != FORMAT_VERSION:
        raise ValueError(f"metadata format_version must be {FORMAT_VERSION}, got {version!r}")
    for key in ("task", "obs_mode", "robot_rl_version"):
        if not isinstance(metadata[key], str) or not metadata[key]:
            raise ValueError(f"metadata {key!r} must be a non-empty string, got {metadata[key]!r}")
    hz = metadata["control_hz"]
    if isinstance(hz, bool) or not isinstance(hz, (int, float)) or not math.isfinite(hz) or hz <= 0:
        raise ValueError(f"metadata control_hz must be a positive number, got {hz!r}")
    _check_observation_spec(metadata["observation_spec"])
    _check_action_spec(metadata["action_spec"])


def _check_observation_spec(spec: Any) -> None:
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError(f"metadata observation_spec must be a non-empty dict, got {spec!r}")
    for key, entry in spec.items():
        if not isinstance(key, str) or not key or "/" in key:
            raise ValueError(f"observation key must be a non-empty string without '/', got {key!r}")
        if not isinstance(entry, Mapping) or entry.get("dtype") not in _OBS_DTYPES:
            raise ValueError(f"observation_spec[{key!r}] needs a dtype in {_OBS_DTYPES}, got {entry!r}")
        shape = entry.get("shape")
        if not isinstance(shape, (list, tuple)) or not all(type(n) is int and n >= 0 for n in shape):
            raise ValueError(f"observation_spec[{key!r}] shape must be a list of sizes, got {shape!r}")
        _check_parts(key, entry.get("parts", {}), shape[-1] if shape else 0)


def _check_parts(key: str, parts: Any, width: int) -> None:
    """``parts`` names slices ``[start, stop]`` of an observation's last axis."""
    if not isinstance(parts, Mapping):
        raise ValueError(f"observation_spec[{key!r}] parts must be a dict, got {parts!r}")
    for part, bounds in parts.items():
        pair = isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(type(b) is int for b in bounds)
        if not (pair and 0 <= bounds[0] < bounds[1] <= width):
            raise ValueError(f"observation_spec[{key!r}] part {part!r} must be [start, stop] in [0, {width}], "
                             f"got {bounds!r}")


def _check_action_spec(spec: Any) -> None:
    shape = spec.get("shape") if isinstance(spec, Mapping) else None
    if not isinstance(shape, (list, tuple)) or len(shape) != 1 or type(shape[0]) is not int or shape[0] < 1:
        raise ValueError(f"metadata action_spec shape must be [A] with A >= 1, got {spec!r}")
    low, high = np.asarray(spec.get("low"), dtype=float), np.asarray(spec.get("high"), dtype=float)
    if low.shape != tuple(shape) or high.shape != tuple(shape) or not np.all(low <= high):
        raise ValueError(f"metadata action_spec low/high must be {shape[0]} numbers with low <= high, got {spec!r}")
