"""Validation every family contract's dataclasses share: ranges, read-only arrays, cameras.

Errors name the owner and the field, the allowed range and the value.
"""

from __future__ import annotations

import math
import numbers
import types
from typing import Mapping

import numpy as np

from robot_rl.backends.base import CameraSpec


def check_range(owner: object, name: str, low: float = -math.inf, high: float = math.inf,
                 low_open: bool = False, high_open: bool = False) -> None:
    """Raise a ValueError naming ``owner.name``, its allowed range and its value if outside."""
    value = getattr(owner, name)
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if not isinstance(value, numbers.Real) or math.isnan(value) or below or above:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{type(owner).__name__}.{name} must be in {interval}, got {value!r}")


def frozen_array(owner: str, name: str, value: object, shape: tuple[int, ...]) -> np.ndarray:
    """A read-only float64 copy of ``value`` of exactly ``shape``, else a ValueError naming the field."""
    array = np.array(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{owner}.{name} must have shape {shape}, got {array.shape}")
    array.flags.writeable = False
    return array


def check_cameras(owner: str, cameras: Mapping[str, CameraSpec],
                   render_cameras: tuple[str, ...]) -> tuple[Mapping[str, CameraSpec], tuple[str, ...]]:
    """Check a spec's cameras (keys are the cameras' names) and that render_cameras covers them."""
    for key, camera in cameras.items():
        if not isinstance(camera, CameraSpec) or camera.name != key:
            raise ValueError(f"{owner}.cameras[{key!r}] must be a CameraSpec named {key!r}, got {camera!r}")
    render = tuple(render_cameras)
    if len(set(render)) != len(render):
        raise ValueError(f"{owner}.render_cameras has duplicates: {render}")
    missing = [name for name in cameras if render and name not in render]
    if missing:
        raise ValueError(f"{owner}.render_cameras must include every observed camera; missing {missing}")
    return types.MappingProxyType(dict(cameras)), render
