"""A course from one slow demonstration lap (FastRLAP's checkpoints): car_lap on a real car, where no
track was generated.

A real car has no :class:`~sim.car.track.Track` in its scene. Instead it is driven once around the
course, slowly (by a person with the gamepad, or by any ``driver(state) -> CarCommand``), while its
pose is recorded (:func:`record_poses`: ``(T, 3)`` rows ``[x_m, y_m, yaw_rad]``, world frame, rear
axle, from the backend's ``read_state()``; or poses from elsewhere, e.g. an odometry bag). Then
:func:`course_from_poses`:

1. takes the point car_lap locates (the footprint centre, ``ahead_m`` in front of the rear axle);
2. finds where the lap closes: the first time the path, after leaving the start by more than twice
   ``close_tol_m``, comes back within ``close_tol_m`` of it, at the closest approach there (a
   ``ValueError`` saying how close it came if it never does);
3. leaves out up to ``restart_m`` of the start where the path goes on past the closing point (the
   car starting from rest, perhaps off the line: the lap then runs from there to where the second
   pass comes nearest), joins the end to the start, smooths the loop (a moving average over ``smooth_m`` of arc length,
   so odometry noise does not become curvature) and resamples it ``spacing_m`` apart;
4. returns it as a :class:`~sim.car.track.Track` (``seed = -1``): its points are car_lap's
   checkpoints, in driving order, its tangents the track direction (used by the heading error, the
   observation and the recovery). ``half_width_m`` is the corridor around the driven line that
   car_lap treats as the walls: on a real car a geofence, so choose it inside the real walls.

:func:`save_course`/:func:`load_course` keep a course in a small ``.npz`` file (``points_m``,
``half_width_m``, metadata as JSON); ``robot_rl.make("car_lap", course="course.npz", ...)`` runs
car_lap on it (:class:`tasks.car.lap.CarLap`).

car_lap also needs the car's pose at every step (progress, collisions, the recovery): a backend
whose ``pos_m`` is ``nan`` (a VESC car alone) cannot run it (:func:`check_pose_source`).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from typing import Callable

import numpy as np

from robot_rl.backends.car import CarBackend, CarCommand, CarState
from sim.car.track import Track, closed_path_curvature, resample_closed_path, segments_intersect, track_from_centreline

COURSE_FORMAT = "robot_rl.car_course/1"
COURSE_SEED = -1  # Track.seed of a course: it was driven, not generated
_FINE_SPACING_M = 0.02  # the loop is smoothed at this spacing before the final resampling
POSE_SOURCES = (
    "a ROS 2 localization publishing nav_msgs/Odometry, through the `ros_car` backend "
    "(drivers/ros2); motion capture (OptiTrack, Vicon) or a UWB/RTK fix fused with the wheel speed, "
    "through a backend that fills CarState.pos_m and yaw_rad in the course's frame; in sim, the MuJoCo car"
)


def check_pose_source(backend: object, state: CarState) -> None:
    """Raise ``ValueError`` if ``state`` has no pose (``pos_m``/``yaw_rad`` not finite), naming pose sources."""
    if not (np.all(np.isfinite(state.pos_m)) and math.isfinite(state.yaw_rad)):
        raise ValueError(
            f"car_lap needs the car's pose (CarState.pos_m, yaw_rad) at every step, to measure progress along "
            f"the course, detect collisions and turn the car after one, but {type(backend).__name__} reports "
            f"pos_m={state.pos_m.tolist()}, yaw_rad={state.yaw_rad} (no localization). Give it a pose source: "
            f"{POSE_SOURCES}")


def record_poses(backend: CarBackend, driver: Callable[[CarState], CarCommand], period_s: float, max_s: float,
                 close_tol_m: float = 0.5, past_close_m: float = 1.0) -> np.ndarray:
    """Drive one lap with ``driver`` at ``period_s`` (``command``/``sync``), recording ``[x_m, y_m,
    yaw_rad]`` every step, until the path closed (:func:`closing_index`) and went ``past_close_m``
    further, then ``stop()``. Raises ``ValueError`` without a pose, ``RuntimeError`` after ``max_s``."""
    state = backend.read_state()
    check_pose_source(backend, state)
    poses = [(*state.pos_m, state.yaw_rad)]
    try:
        for _ in range(math.ceil(max_s / period_s)):
            backend.command(driver(state))
            backend.sync(period_s)
            state = backend.read_state()
            poses.append((*state.pos_m, state.yaw_rad))
            points = np.asarray(poses)[:, :2]
            k = closing_index(points, close_tol_m)
            if k is not None and _arc_m(points[k:]) >= past_close_m:
                return np.asarray(poses)
    finally:
        backend.stop()
    raise RuntimeError(f"the demonstration lap did not close within {max_s} s: {_return_text(np.asarray(poses)[:, :2], close_tol_m)}")


def closing_index(points_m: np.ndarray, close_tol_m: float) -> int | None:
    """Where a path ``(T, 2)`` closes its lap: after first leaving its start by more than
    ``2 * close_tol_m``, the closest point to the start within the first stretch that comes back within
    ``close_tol_m`` of it; ``None`` if it has not come back."""
    distance = np.linalg.norm(points_m - points_m[0], axis=1)
    left = np.flatnonzero(distance > 2 * close_tol_m)
    if not len(left):
        return None
    back = left[0] + np.flatnonzero(distance[left[0]:] <= close_tol_m)
    if not len(back):
        return None
    gone = back[0] + np.flatnonzero(distance[back[0]:] > close_tol_m)
    stretch = slice(back[0], gone[0] if len(gone) else len(distance))
    return int(stretch.start + np.argmin(distance[stretch]))


def course_from_poses(poses: np.ndarray, half_width_m: float, ahead_m: float = 0.0, spacing_m: float = 0.1,
                      close_tol_m: float = 0.5, smooth_m: float = 0.5, restart_m: float = 1.0,
                      wall_thickness_m: float = 0.05) -> Track:
    """The course of one demonstration lap (module docstring): ``poses`` ``(T, 3)`` rows ``[x_m, y_m,
    yaw_rad]`` (rear axle, world frame, driving order), the located point ``ahead_m`` in front."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] != 3 or len(poses) < 3 or not np.all(np.isfinite(poses)):
        raise ValueError(f"poses must be a finite (T >= 3, 3) array of [x_m, y_m, yaw_rad], got shape {poses.shape}"
                         + ("" if np.all(np.isfinite(poses)) else " with nan/inf (no localization?)"))
    for name, value in (("half_width_m", half_width_m), ("spacing_m", spacing_m), ("close_tol_m", close_tol_m)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    points = poses[:, :2] + ahead_m * np.stack([np.cos(poses[:, 2]), np.sin(poses[:, 2])], axis=1)
    k = closing_index(points, close_tol_m)
    if k is None:
        raise ValueError(f"the demonstration path does not close a lap: {_return_text(points, close_tol_m)}; "
                         f"drive one whole lap, ending where it started")
    loop = _drop_repeats(_lap(points, k, restart_m))
    fine = resample_closed_path(loop, _FINE_SPACING_M)
    window = max(1, round(smooth_m / _FINE_SPACING_M)) | 1
    smooth = np.stack([np.convolve(np.concatenate([c[-(window // 2):], c, c[:window // 2]]), np.ones(window) / window,
                                   mode="valid") for c in fine.T], axis=1) if window > 1 else fine
    course = resample_closed_path(smooth, spacing_m)
    if segments_intersect(course):
        raise ValueError("the demonstration path crosses itself: a course must be a simple loop (drive one lap)")
    return track_from_centreline(COURSE_SEED, course, closed_path_curvature(course), half_width_m, wall_thickness_m)


def _lap(points_m: np.ndarray, k: int, restart_m: float) -> np.ndarray:
    """One lap of a path that closes at ``k``: if the path goes on past ``k``, the lap starts up to
    ``restart_m`` after the start (the car starting from rest, perhaps off the line, is left out) and
    ends where the second pass comes nearest that point; else ``points_m[:k]``."""
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points_m, axis=0), axis=1))])
    restart = min(restart_m, arc[-1] - arc[k])
    if restart <= 0:
        return points_m[:k]
    j = int(np.searchsorted(arc, restart))
    end = k + int(np.argmin(np.linalg.norm(points_m[k:] - points_m[j], axis=1)))
    return points_m[j:end]


def _drop_repeats(points_m: np.ndarray) -> np.ndarray:
    """The path without samples within 1 mm of the previous kept one (a car at rest repeats its pose)."""
    kept = [0]
    for i in range(1, len(points_m)):
        if np.linalg.norm(points_m[i] - points_m[kept[-1]]) > 1e-3:
            kept.append(i)
    return points_m[kept]


def _arc_m(points_m: np.ndarray) -> float:
    return float(np.sum(np.linalg.norm(np.diff(points_m, axis=0), axis=1)))


def _return_text(points_m: np.ndarray, close_tol_m: float) -> str:
    distance = np.linalg.norm(points_m - points_m[0], axis=1)
    left = np.flatnonzero(distance > 2 * close_tol_m)
    if not len(left):
        return (f"it never got more than {2 * close_tol_m:.2f} m (2 x close_tol_m) from its start "
                f"({_arc_m(points_m):.1f} m driven)")
    return (f"after leaving its start it came back to {distance[left[0]:].min():.2f} m of it at best, "
            f"not within close_tol_m={close_tol_m} m ({_arc_m(points_m):.1f} m driven)")


def save_course(track: Track, path: str | os.PathLike, **metadata: object) -> pathlib.Path:
    """Write a course to ``path`` (``.npz``, atomically: a temporary file renamed into place)."""
    path = pathlib.Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"a course file is .npz, got {path}")
    info = json.dumps({"format": COURSE_FORMAT, "length_m": track.length_m, **metadata})
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, points_m=np.asarray(track.points_m), half_width_m=np.float64(track.half_width_m),
                 wall_thickness_m=np.float64(track.wall_thickness_m), metadata=np.array(info))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_course(path: str | os.PathLike) -> Track:
    """A course written by :func:`save_course`; ``ValueError`` naming the file if it is not one."""
    path = pathlib.Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            metadata = json.loads(str(f["metadata"]))
            points, half_width, wall = f["points_m"], float(f["half_width_m"]), float(f["wall_thickness_m"])
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{path} is not a car course file (save_course writes them): {error}") from error
    if metadata.get("format") != COURSE_FORMAT:
        raise ValueError(f"{path}: course format {metadata.get('format')!r}, expected {COURSE_FORMAT!r}")
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 16 or not np.all(np.isfinite(points)):
        raise ValueError(f"{path}: points_m must be a finite (M >= 16, 2) array, got shape {points.shape}")
    return track_from_centreline(COURSE_SEED, points, closed_path_curvature(points), half_width, wall)
