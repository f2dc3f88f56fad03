"""A scripted pure-pursuit driver, as an ``xp`` array function (demos, baseline, simulated human).

Steering: pure pursuit (Coulter, "Implementation of the Pure Pursuit Path Tracking Algorithm",
CMU-RI-TR-92-01, 1992) toward the centreline point a speed-dependent look-ahead distance ahead:
the arc through the rear axle that reaches the target has curvature ``2 y / (x^2 + y^2)`` (target
in the body frame), and the bicycle angle for it is ``atan(wheelbase * curvature)``. Speed: the
fastest that keeps the lateral acceleration on the tightest centreline curve of the next
``preview_m`` within ``lateral_accel_m_s2``, capped at ``max_speed_m_s``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sim.car.dynamics import speed_controller_arrays
from tasks.car.base import DriveMapping
from tasks.car.track_arrays import TrackArrays, ahead_indices_arrays, to_body_arrays

PREVIEW_POINTS = 8


@dataclasses.dataclass(frozen=True)
class PurePursuit:
    """The expert's settings.

    Attributes:
        max_speed_m_s: speed cap on straights.
        lateral_accel_m_s2: curve speed limit ``sqrt(lateral_accel / curvature)``.
        lookahead_m, lookahead_s: look-ahead distance ``lookahead_m + lookahead_s * speed``.
        preview_m: how far ahead the tightest curve is looked for.
        throttle_gain_per_m_s, free_speed_m_s: in throttle mode the expert runs its own speed loop
            (:func:`sim.car.dynamics.speed_controller_arrays`) with this gain and feed-forward speed.
    """

    max_speed_m_s: float = 3.0
    lateral_accel_m_s2: float = 4.0
    lookahead_m: float = 0.5
    lookahead_s: float = 0.25
    preview_m: float = 2.5
    throttle_gain_per_m_s: float = 1.0
    free_speed_m_s: float = 10.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if not getattr(self, field.name) > 0:
                raise ValueError(f"PurePursuit.{field.name} must be > 0, got {getattr(self, field.name)!r}")


def pure_pursuit_arrays(expert: PurePursuit, mapping: DriveMapping, track: TrackArrays, index: Any, pos_m: Any,
                        yaw_rad: Any, speed_m_s: Any, wheelbase_m: float, max_steering_rad: float, xp: Any) -> Any:
    """The expert's normalized action ``(..., 2)`` for cars at ``pos_m`` (rear axle), ``yaw_rad``,
    forward speed ``speed_m_s``, tracked at segment ``index``."""
    distance = expert.lookahead_m + expert.lookahead_s * xp.abs(speed_m_s)
    target_index = ahead_indices_arrays(track, index, distance[..., None], xp)
    target = to_body_arrays(track.table[target_index][..., 0:2], pos_m, yaw_rad, xp)[..., 0, :]
    curvature = 2.0 * target[..., 1] / xp.maximum(xp.sum(target * target, axis=-1), 1e-6)
    steering = xp.arctan(wheelbase_m * curvature) / max_steering_rad
    preview = xp.linspace(0.0, expert.preview_m, PREVIEW_POINTS)
    tightest = xp.max(xp.abs(track.table[ahead_indices_arrays(track, index, preview, xp)][..., 6]), axis=-1)
    speed = xp.minimum(expert.max_speed_m_s, xp.sqrt(expert.lateral_accel_m_s2 / xp.maximum(tightest, 1e-3)))
    speed = xp.minimum(speed, mapping.max_speed_m_s)
    if mapping.drive == "speed":
        drive = mapping.to_action(speed, xp)
    else:
        drive = speed_controller_arrays(speed, speed_m_s, expert.free_speed_m_s, expert.throttle_gain_per_m_s, xp)
    return xp.clip(xp.stack([drive, steering], axis=-1), -1.0, 1.0)
