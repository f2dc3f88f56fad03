"""A quadrotor task's reset on a vehicle that cannot be placed: fly to the start, level and at rest.

The quadrotor tasks reset through :meth:`~robot_rl.backends.quadrotor.QuadSceneControl.set_state`. A
simulator places the vehicle; a real one -- the Crazyflie backend, a quadrotor behind ROS 2 topics
(:class:`~drivers.ros2.ros_backend.RosQuadBackend`) -- flies there with the host-side position loop
(:mod:`drivers.quad.control`) and reproduces the position only. What they share is here: the start
checked against the geofence, when the vehicle has arrived, and the one-time warning about the rest.
"""

from __future__ import annotations

import logging

import numpy as np

from robot_rl.backends.quadrotor import QuadSpec, inside_geofence


def checked_start_m(spec: QuadSpec, pos_m: np.ndarray) -> np.ndarray:
    """``pos_m`` as a float64 ``(3,)`` position (world frame, ENU) inside ``spec``'s geofence, else ValueError."""
    target = np.asarray(pos_m, dtype=np.float64)
    if target.shape != (3,) or not inside_geofence(spec, target):
        raise ValueError(f"set_state: {pos_m!r} is not a position inside the geofence "
                         f"{spec.geofence_low_m.tolist()}..{spec.geofence_high_m.tolist()}")
    return target


def arrived(pos_m: np.ndarray, vel_m_s: np.ndarray, target_m: np.ndarray, tolerance_m: float,
            max_speed_m_s: float) -> bool:
    """Within ``tolerance_m`` of ``target_m`` and slower than ``max_speed_m_s`` (world frame)."""
    return bool(np.linalg.norm(pos_m - target_m) <= tolerance_m and np.linalg.norm(vel_m_s) <= max_speed_m_s)


class ResetNotice:
    """Warns once per backend that a flown reset does not reproduce the start's attitude, velocity and rates."""

    def __init__(self, log: logging.Logger, vehicle: str) -> None:
        self._log, self._vehicle, self.warned = log, vehicle, False

    def warn_once(self) -> None:
        if not self.warned:
            self.warned = True
            self._log.warning("%s: a reset flies to the start position level and at rest; the task's initial "
                              "attitude, velocity and body rates are not reproduced on a real vehicle", self._vehicle)
