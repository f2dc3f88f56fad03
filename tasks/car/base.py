"""What every car task shares: the family, the control rate and the action mapping.

An action is ``[drive, steering]`` in ``[-1, 1]^2``:

* ``drive`` in ``"speed"`` mode: a speed set-point mapped linearly from ``[-1, 1]`` onto
  ``[min_speed_m_s, max_speed_m_s]`` (body x; the backend's speed controller tracks it); in
  ``"throttle"`` mode: the normalized drive effort itself;
* ``steering``: the bicycle-model front-wheel angle as a fraction of the spec's
  ``max_steering_rad`` (positive turns left).

The hold action (the conformance suite's "no progress" action) stops the car: speed 0 (or
throttle 0: the motor brakes), wheels straight. The mapping is written once over ``xp`` arrays
(:func:`action_to_drive_arrays`, :func:`drive_to_action_arrays`), so the JAX vector env maps a
batch of actions exactly as :class:`CarTask` maps one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np

from robot_rl.backends.car import SPEED, THROTTLE, CarCommand, CarSpec, CarState

ACTION_DIM = 2
DRIVE_MODES = (SPEED, THROTTLE)


@dataclasses.dataclass(frozen=True)
class DriveMapping:
    """How ``action[0]`` becomes a drive command (module docstring).

    Attributes:
        drive: ``"speed"`` or ``"throttle"`` (the backend must accept it: ``spec.command_modes``).
        min_speed_m_s, max_speed_m_s: the speed range ``action[0] = -1 .. +1`` spans (speed mode);
            it must contain 0, so the car can stop.
    """

    drive: str = SPEED
    min_speed_m_s: float = 0.0
    max_speed_m_s: float = 4.0

    def __post_init__(self) -> None:
        if self.drive not in DRIVE_MODES:
            raise ValueError(f"drive must be one of {DRIVE_MODES}, got {self.drive!r}")
        if not self.min_speed_m_s <= 0.0 < self.max_speed_m_s:
            raise ValueError(f"need min_speed_m_s <= 0 < max_speed_m_s (the car must be able to stop), got "
                             f"[{self.min_speed_m_s}, {self.max_speed_m_s}]")

    def check(self, spec: CarSpec) -> None:
        if self.drive not in spec.command_modes:
            raise ValueError(f"this task drives in {self.drive!r} mode but the backend accepts {spec.command_modes}")

    def to_drive(self, action: Any, xp: Any) -> Any:
        return action_to_drive_arrays(action, self.drive, self.min_speed_m_s, self.max_speed_m_s, xp)

    def to_action(self, drive: Any, xp: Any) -> Any:
        return drive_to_action_arrays(drive, self.drive, self.min_speed_m_s, self.max_speed_m_s, xp)

    def driving(self, drive: Any, xp: Any) -> Any:
        """Whether a drive command asks the car to move (the stuck timer runs only then)."""
        return xp.abs(drive) > (0.1 if self.drive == SPEED else 0.05)


def action_to_drive_arrays(action: Any, drive: str, min_speed_m_s: float, max_speed_m_s: float, xp: Any) -> Any:
    """``action[..., 0]`` in ``[-1, 1]`` -> speed set-point [m/s] or throttle (``drive`` mode)."""
    a = xp.clip(action, -1.0, 1.0)
    if drive == THROTTLE:
        return a
    return min_speed_m_s + 0.5 * (a + 1.0) * (max_speed_m_s - min_speed_m_s)


def drive_to_action_arrays(drive_value: Any, drive: str, min_speed_m_s: float, max_speed_m_s: float, xp: Any) -> Any:
    """Inverse of :func:`action_to_drive_arrays`, clipped to ``[-1, 1]``."""
    if drive == THROTTLE:
        return xp.clip(drive_value, -1.0, 1.0)
    return xp.clip(2.0 * (drive_value - min_speed_m_s) / (max_speed_m_s - min_speed_m_s) - 1.0, -1.0, 1.0)


class CarTask:
    """Base of the car family's tasks: subclasses set ``self.mapping`` (a :class:`DriveMapping`).

    Attributes:
        family: ``"car"``.
        control_hz: the default control rate (20 Hz).
    """

    family = "car"
    control_hz = 20.0
    mapping: DriveMapping

    def action_space(self, spec: CarSpec) -> gym.spaces.Box:
        self.mapping.check(spec)
        return gym.spaces.Box(-1.0, 1.0, shape=(ACTION_DIM,), dtype=np.float32)

    def action_to_command(self, action: np.ndarray, state: CarState, spec: CarSpec) -> CarCommand:
        action = np.asarray(action, dtype=np.float64)
        drive = float(self.mapping.to_drive(action[0], np))
        steering = float(np.clip(action[1], -1.0, 1.0)) * spec.max_steering_rad
        if self.mapping.drive == SPEED:
            return CarCommand(steering_rad=steering, speed_m_s=drive)
        return CarCommand(steering_rad=steering, throttle=drive)

    def command_to_action(self, command: CarCommand, state: CarState, spec: CarSpec) -> np.ndarray:
        drive = command.speed_m_s if command.mode == SPEED else command.throttle
        return np.array([self.mapping.to_action(drive, np), np.clip(command.steering_rad / spec.max_steering_rad, -1, 1)],
                        dtype=np.float32)

    def hold_action(self, spec: CarSpec) -> np.ndarray:
        """Stop: speed (or throttle) 0, wheels straight."""
        return np.array([self.mapping.to_action(0.0, np), 0.0], dtype=np.float32)
