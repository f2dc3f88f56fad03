"""Where a car is on a track, as pure ``xp`` array functions (numpy on one car, ``jax.numpy`` on N).

The track is a closed polyline (:class:`sim.car.track.Track`) handed over as :class:`TrackArrays`.
Every function takes any leading batch shape on the car's quantities (``pos_m (..., 2)``,
``yaw_rad (...)``, ``index (...)``) and the same track for all; positions in the world frame,
"body" is the car's FLU frame at the rear axle. The xp rules are those of
:mod:`tasks.puck.reach`: last-axis features, only API numpy and jax.numpy share, no in-place
writes, no Python ``if`` on values.

Locating is local: from the segment the car was on one step before, the car's position is
projected on that segment's line and the index moved by the whole segments the projection lies
ahead (or behind), ``iterations`` times (the points are evenly spaced along the track, so one
projection lands within about a segment of the answer even a few segments away); the cost does
not grow with the track's length, and no checkpoint is skipped. ``Track.nearest`` does the
global search once at a reset. Every lookup is one gather of a row of :attr:`TrackArrays.table`
(point, tangent, arc length, segment length, curvature), the fast way on a CPU under XLA.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from sim.car.track import Track


class TrackArrays(NamedTuple):
    """A track's polyline (``M`` points; see :class:`sim.car.track.Track`) as one ``(M, 7)`` table of
    rows ``[x_m, y_m, tangent_x, tangent_y, s_m, seg_len_m, curvature_per_m]``, plus its length,
    half-width and point spacing [m] as plain floats."""

    table: Any
    length_m: float
    half_width_m: float
    spacing_m: float

    @property
    def num_points(self) -> int:
        return self.table.shape[0]


def track_arrays(track: Track, xp: Any = np, dtype: Any = np.float64) -> TrackArrays:
    """``track`` as :class:`TrackArrays` of an ``xp`` table of ``dtype``."""
    table = np.concatenate([track.points_m, track.tangents, track.s_m[:, None], track.seg_len_m[:, None],
                            track.curvature_per_m[:, None]], axis=1)
    return TrackArrays(xp.asarray(table, dtype=dtype), track.length_m, track.half_width_m, track.spacing_m)


def locate_arrays(track: TrackArrays, pos_m: Any, index: Any, xp: Any,
                  iterations: int = 3) -> tuple[Any, Any, Any, Any]:
    """The segment of ``pos_m`` found from segment ``index`` (module docstring): ``(index, s_m,
    lateral_m, tangent)``, its index, the arc length of ``pos_m``'s projection on it, the signed
    distance from it (left of the driving direction positive) and its direction ``(..., 2)``."""
    count, x_m, y_m = track.num_points, pos_m[..., 0], pos_m[..., 1]
    for _ in range(iterations):
        row = track.table[index]
        along = (x_m - row[..., 0]) * row[..., 2] + (y_m - row[..., 1]) * row[..., 3]
        index = (index + xp.floor(along / row[..., 5]).astype(index.dtype)) % count
    row = track.table[index]
    rel_x, rel_y = x_m - row[..., 0], y_m - row[..., 1]
    # components, not a sum over an axis of 2: the same numbers, and XLA on a CPU fuses them
    along = xp.clip(rel_x * row[..., 2] + rel_y * row[..., 3], 0.0, row[..., 5])
    lateral = row[..., 2] * rel_y - row[..., 3] * rel_x
    return index, row[..., 4] + along, lateral, row[..., 2:4]


def wrap_arc_arrays(ds_m: Any, length_m: float, xp: Any) -> Any:
    """An arc-length difference wrapped into ``[-length/2, length/2)`` (crossing the start line)."""
    return (ds_m + 0.5 * length_m) % length_m - 0.5 * length_m


def heading_error_arrays(tangent: Any, yaw_rad: Any, xp: Any) -> tuple[Any, Any]:
    """``(sin, cos)`` of the car's heading relative to the track direction ``tangent (..., 2)`` (left positive)."""
    hx, hy = xp.cos(yaw_rad), xp.sin(yaw_rad)
    return tangent[..., 0] * hy - tangent[..., 1] * hx, tangent[..., 0] * hx + tangent[..., 1] * hy


def wall_clearance_arrays(lateral_m: Any, sin_err: Any, cos_err: Any, half_length_m: float, half_width_m: float,
                          wall_m: float, xp: Any) -> Any:
    """How far [m] the car's footprint (a rectangle, centre ``lateral_m`` from the centreline, turned by
    the heading error) stays from the nearer of two walls ``wall_m`` from the centreline; ``<= 0``: it
    reaches the wall (curvature neglected)."""
    return wall_m - (xp.abs(lateral_m) + half_length_m * xp.abs(sin_err) + half_width_m * xp.abs(cos_err))


def to_body_arrays(points_m: Any, pos_m: Any, yaw_rad: Any, xp: Any) -> Any:
    """World points ``(..., K, 2)`` in the body frame of a car at ``pos_m (..., 2)``, ``yaw_rad (...)``."""
    rel = points_m - pos_m[..., None, :]
    c, s = xp.cos(yaw_rad)[..., None], xp.sin(yaw_rad)[..., None]
    return xp.stack([c * rel[..., 0] + s * rel[..., 1], -s * rel[..., 0] + c * rel[..., 1]], axis=-1)


def ahead_indices_arrays(track: TrackArrays, index: Any, distances_m: Any, xp: Any) -> Any:
    """Indices ``(..., K)`` of the centreline points ``distances_m`` (``(K,)`` or ``(..., K)``) ahead of ``index``."""
    steps = xp.round(xp.asarray(distances_m) / track.spacing_m).astype(index.dtype)
    return (index[..., None] + steps) % track.num_points


def lookahead_arrays(track: TrackArrays, index: Any, pos_m: Any, yaw_rad: Any, distances_m: tuple[float, ...],
                     xp: Any) -> Any:
    """The centreline points ``distances_m`` ahead, body frame, flattened to ``(..., 2K)``."""
    ahead = track.table[ahead_indices_arrays(track, index, distances_m, xp)][..., 0:2]
    body = to_body_arrays(ahead, pos_m, yaw_rad, xp)
    return xp.reshape(body, body.shape[:-2] + (2 * len(distances_m),))
