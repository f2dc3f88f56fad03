"""A teleop device whose mapped axes are a human *command*, turned into the env's action at each poll.

The arm's bindings map device axes linearly onto its action (:class:`~robot_rl.human.teleop.AxisMap`).
A car or a quadrotor is driven at a level a person can handle -- steering, throttle and brake; a
velocity and a yaw rate -- that is not its action: the car's speed action is an affine map of a
set-point, the quadrotor's action is thrust and body rates (a residual on its hover fallback) that
depends on the measured state. :class:`CommandTeleop` runs a device (a gamepad, a keyboard) whose axis
map yields that command vector, and converts every intervening event's command with ``to_action``;
everything else (buttons, connection, intervention) passes through unchanged.

The family bindings (:mod:`drivers.teleop.car_bindings`, :mod:`drivers.teleop.quad_bindings`) build
one per env with ``for_env(env)``, which :func:`robot_rl.human.devices.open_device` calls.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from robot_rl.human.teleop import TeleopDevice, TeleopEvent


class CommandTeleop:
    """``device`` (command vectors as its actions) as a device producing the env's actions.

    Args:
        device: the inner teleop device; its ``action_shape`` is the command's shape.
        to_action: command (float array) -> the env's action (shape ``action_shape``), evaluated at
            poll time (a state-dependent conversion reads the env's current state then).
        action_shape: the env's action shape.
        what: appended to the device's name, e.g. ``"driving a car"``.

    Attributes:
        config: the inner device's config (``config.axis_map.gripper`` tells the recorder whether
            the action ends in a gripper command: for these devices it does not).
    """

    def __init__(self, device: TeleopDevice, to_action: Callable[[np.ndarray], np.ndarray],
                 action_shape: tuple[int, ...], what: str) -> None:
        self.device = device
        self.config: Any = getattr(device, "config", None)
        self.action_shape = tuple(action_shape)
        self._to_action = to_action
        self._what = what

    @property
    def name(self) -> str:
        return f"{self.device.name} {self._what}"

    def connect(self) -> None:
        self.device.connect()

    def close(self) -> None:
        self.device.close()

    def __enter__(self) -> CommandTeleop:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def new_episode(self) -> None:
        self.device.new_episode()

    def poll(self, policy_action: np.ndarray | None = None) -> TeleopEvent:
        """The inner device's event, its command converted to the env's action while intervening."""
        event = self.device.poll(policy_action)
        if event.action is None:
            return event
        action = np.asarray(self._to_action(np.asarray(event.action, dtype=np.float64)), dtype=np.float32)
        if action.shape != self.action_shape:
            raise ValueError(f"{self.name}: the command converted to shape {action.shape}, "
                             f"expected {self.action_shape}")
        return dataclasses.replace(event, action=action)
