"""Procedurally generated closed tracks with walls: one layout per seed, numpy only.

A track is a closed corridor of constant width around a smooth centreline, walled on both sides.
The centreline is a polar curve ``r(theta) = R (1 + sum_k a_k cos(k theta + phi_k))`` with random
harmonics ``k = 2..5`` (ovals, kidneys, rounded triangles and squares, chicanes), turned by a
random angle and driven clockwise or counter-clockwise; ``r > 0`` makes it closed and free of
self-intersections by construction. A draw is kept only if it is drivable (curvature radius
>= ``min_radius_m``, so the car -- 0.74 m turning radius at full lock -- and the inner wall fit)
and if no two parts of the corridor come closer than two half-widths plus the walls; otherwise
the seed's generator draws again, so a seed always names the same layout.

The centreline is resampled to points ``spacing_m`` apart along its length, in driving order:
**the track is that closed polyline** (``points_m`` -> ``points_m[i + 1]``, the last joins the
first). Frames: the world frame (x, y on the ground, z up). ``s_m`` is arc length from point 0.

How a task gets its track: a simulator holds the track of its config's ``track_seed`` and shows
it as the ``track`` attribute (available before ``connect()``; :class:`TrackScene`); a task reads
its centreline from there. The JAX env builds the same track from the same seed.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Protocol, runtime_checkable

import numpy as np

HARMONICS = (2, 3, 4, 5)
HARMONIC_AMPLITUDES = (0.45, 0.2, 0.1, 0.05)  # a_k ~ U(-A_k, A_k)
_DENSE_SAMPLES = 4096
_MAX_DRAWS = 200


@dataclasses.dataclass(frozen=True)
class TrackSettings:
    """Which track a simulator builds (fields shared by the MuJoCo and the JAX car configs).

    Attributes:
        track_seed: the layout; the same seed gives the same track everywhere.
        track_half_width_m: centreline to each wall's inner face.
        track_mean_radius_m: mean distance of the centreline from the track's centre (size).
        track_min_radius_m: smallest radius of curvature allowed on the centreline.
        wall_thickness_m, wall_height_m: the walls' boxes.
        track_spacing_m: distance between centreline points.
    """

    track_seed: int = 0
    track_half_width_m: float = 0.75
    track_mean_radius_m: float = 3.0
    track_min_radius_m: float = 1.2
    wall_thickness_m: float = 0.05
    wall_height_m: float = 0.2
    track_spacing_m: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.track_seed, (int, np.integer)) or self.track_seed < 0:
            raise ValueError(f"track_seed must be an int >= 0, got {self.track_seed!r}")
        for name in ("track_half_width_m", "track_mean_radius_m", "track_min_radius_m", "wall_thickness_m",
                     "wall_height_m", "track_spacing_m"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.track_min_radius_m <= self.track_half_width_m + self.wall_thickness_m:
            raise ValueError(f"track_min_radius_m ({self.track_min_radius_m}) must exceed track_half_width_m + "
                             f"wall_thickness_m ({self.track_half_width_m + self.wall_thickness_m}): the inner wall "
                             f"would fold onto itself")
        if self.track_mean_radius_m < 1.5 * self.track_min_radius_m:
            raise ValueError(f"track_mean_radius_m ({self.track_mean_radius_m}) must be >= 1.5 x track_min_radius_m")

    def track(self) -> Track:
        """This setting's track (cached: equal settings share one)."""
        return generate_track(self.track_seed, self.track_half_width_m, self.track_mean_radius_m,
                              self.track_min_radius_m, self.wall_thickness_m, self.track_spacing_m)


@dataclasses.dataclass(frozen=True, eq=False)
class Track:
    """A closed walled corridor (arrays read-only, world frame, driving order).

    Attributes:
        seed: the layout's seed.
        points_m: ``(M, 2)`` centreline points, ``spacing_m`` apart (the polyline is closed).
        tangents: ``(M, 2)`` unit direction of segment ``i`` (``points_m[i] -> points_m[i + 1]``).
        seg_len_m: ``(M,)`` segment lengths.
        s_m: ``(M,)`` arc length of each point from point 0.
        curvature_per_m: ``(M,)`` signed centreline curvature at each point (left turn positive).
        half_width_m: centreline to each wall's inner face.
        wall_thickness_m: wall box thickness.
    """

    seed: int
    points_m: np.ndarray
    tangents: np.ndarray
    seg_len_m: np.ndarray
    s_m: np.ndarray
    curvature_per_m: np.ndarray
    half_width_m: float
    wall_thickness_m: float

    def __post_init__(self) -> None:
        for name in ("points_m", "tangents", "seg_len_m", "s_m", "curvature_per_m"):
            array = np.array(getattr(self, name), dtype=np.float64)
            array.flags.writeable = False
            object.__setattr__(self, name, array)

    @property
    def num_points(self) -> int:
        return len(self.points_m)

    @property
    def length_m(self) -> float:
        return float(self.seg_len_m.sum())

    @property
    def spacing_m(self) -> float:
        return self.length_m / self.num_points

    def wall_m(self, side: str, offset_m: float = 0.0) -> np.ndarray:
        """``(M, 2)`` polyline ``half_width_m + offset_m`` to the ``"left"`` or ``"right"`` of the centreline."""
        if side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        sign = 1.0 if side == "left" else -1.0
        return self.points_m + sign * (self.half_width_m + offset_m) * point_normals(self.points_m)

    def nearest(self, pos_m: np.ndarray) -> int:
        """Index of the segment nearest to ``pos_m`` ``(2,)`` (a global search)."""
        start, delta = self.points_m, self.tangents * self.seg_len_m[:, None]
        t = np.clip(np.sum((pos_m - start) * delta, axis=1) / self.seg_len_m**2, 0.0, 1.0)
        return int(np.argmin(np.sum((start + t[:, None] * delta - pos_m) ** 2, axis=1)))

    def pose_at(self, index: int, lateral_m: float = 0.0, heading_rad: float = 0.0) -> tuple[np.ndarray, float]:
        """A pose on the track: point ``index`` moved ``lateral_m`` to the left, facing along the track
        turned by ``heading_rad``: ``(pos_m (2,), yaw_rad)``, world frame."""
        index = int(index) % self.num_points
        tangent = self.tangents[index]
        normal = np.array([-tangent[1], tangent[0]])
        yaw = math.atan2(tangent[1], tangent[0]) + heading_rad
        return self.points_m[index] + lateral_m * normal, math.atan2(math.sin(yaw), math.cos(yaw))


@runtime_checkable
class TrackScene(Protocol):
    """A simulator whose scene holds a track (``sim/car`` backends): tasks read the centreline here."""

    @property
    def track(self) -> Track: ...


def point_normals(points_m: np.ndarray) -> np.ndarray:
    """``(M, 2)`` unit left normals of a closed polyline at its points (central differences)."""
    direction = np.roll(points_m, -1, axis=0) - np.roll(points_m, 1, axis=0)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return np.stack([-direction[:, 1], direction[:, 0]], axis=1)


def segments_intersect(points_m: np.ndarray, skip: int = 1) -> bool:
    """Whether any two segments of the closed polyline ``points_m`` cross (neighbours within
    ``skip`` segments of each other are not compared)."""
    a, b = points_m, np.roll(points_m, -1, axis=0)
    n = len(a)
    i, j = np.triu_indices(n, k=skip + 1)
    keep = (j - i) < n - skip  # the closing neighbours
    i, j = i[keep], j[keep]

    def orient(p, q, r):
        return np.sign((q[:, 0] - p[:, 0]) * (r[:, 1] - p[:, 1]) - (q[:, 1] - p[:, 1]) * (r[:, 0] - p[:, 0]))

    crosses = (orient(a[i], b[i], a[j]) * orient(a[i], b[i], b[j]) < 0) & (
        orient(a[j], b[j], a[i]) * orient(a[j], b[j], b[i]) < 0)
    return bool(crosses.any())


@functools.lru_cache(maxsize=32)
def generate_track(seed: int, half_width_m: float = 0.75, mean_radius_m: float = 3.0, min_radius_m: float = 1.2,
                   wall_thickness_m: float = 0.05, spacing_m: float = 0.1) -> Track:
    """The track of ``seed`` (module docstring). Raises ValueError if no draw in 200 is drivable
    (the size settings leave no room)."""
    rng = np.random.default_rng(seed)
    clearance_m = 2 * (half_width_m + wall_thickness_m) + 0.2
    for _ in range(_MAX_DRAWS):
        dense = _draw_centreline(rng, mean_radius_m)
        points = resample_closed_path(dense, spacing_m)
        curvature = closed_path_curvature(points)
        if np.max(np.abs(curvature)) <= 1.0 / min_radius_m and not _comes_back_near(points, clearance_m):
            return track_from_centreline(seed, points, curvature, half_width_m, wall_thickness_m)
    raise ValueError(f"no drivable track in {_MAX_DRAWS} draws for seed {seed} (half width {half_width_m} m, "
                     f"mean radius {mean_radius_m} m, min radius {min_radius_m} m): make the track larger")


def _draw_centreline(rng: np.random.Generator, mean_radius_m: float) -> np.ndarray:
    theta = np.linspace(0.0, 2 * np.pi, _DENSE_SAMPLES, endpoint=False)
    amplitudes = rng.uniform(-1.0, 1.0, len(HARMONICS)) * np.asarray(HARMONIC_AMPLITUDES)
    phases = rng.uniform(0.0, 2 * np.pi, len(HARMONICS))
    radius = mean_radius_m * (1.0 + sum(a * np.cos(k * theta + p) for k, a, p in zip(HARMONICS, amplitudes, phases)))
    rotation = rng.uniform(-np.pi, np.pi)
    points = np.stack([radius * np.cos(theta + rotation), radius * np.sin(theta + rotation)], axis=1)
    return points[::-1] if rng.uniform() < 0.5 else points  # clockwise or counter-clockwise


def resample_closed_path(dense: np.ndarray, spacing_m: float) -> np.ndarray:
    """A closed path ``(N, 2)`` resampled at equal arc length, about ``spacing_m`` apart (at least 16 points)."""
    closed = np.vstack([dense, dense[:1]])
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
    count = max(16, round(s[-1] / spacing_m))
    targets = np.arange(count) * (s[-1] / count)
    return np.stack([np.interp(targets, s, closed[:, 0]), np.interp(targets, s, closed[:, 1])], axis=1)


def closed_path_curvature(points: np.ndarray) -> np.ndarray:
    """Signed curvature at each point from the turn between its two segments."""
    before = points - np.roll(points, 1, axis=0)
    after = np.roll(points, -1, axis=0) - points
    turn = np.arctan2(before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0], np.sum(before * after, axis=1))
    return turn / (0.5 * (np.linalg.norm(before, axis=1) + np.linalg.norm(after, axis=1)))


def _comes_back_near(points: np.ndarray, clearance_m: float) -> bool:
    """Whether two points far apart along the track are closer than ``clearance_m`` (walls would touch)."""
    n = len(points)
    spacing = np.linalg.norm(points[1] - points[0])
    along = np.arange(n)
    gap = np.abs(along[:, None] - along[None, :])
    arc = np.minimum(gap, n - gap) * spacing
    distance = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    return bool(np.any((arc > 0.5 * np.pi * clearance_m) & (distance < clearance_m)))


def track_from_centreline(seed: int, points: np.ndarray, curvature: np.ndarray, half_width_m: float,
                          wall_thickness_m: float) -> Track:
    """The :class:`Track` of a closed centreline ``points`` (tangents, segment lengths, arc length)."""
    delta = np.roll(points, -1, axis=0) - points
    seg_len = np.linalg.norm(delta, axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg_len)[:-1]])
    return Track(seed=int(seed), points_m=points, tangents=delta / seg_len[:, None], seg_len_m=seg_len, s_m=s,
                 curvature_per_m=curvature, half_width_m=float(half_width_m), wall_thickness_m=float(wall_thickness_m))
