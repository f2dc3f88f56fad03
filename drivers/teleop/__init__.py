"""Teleop devices for human interventions: SpaceMouse (hidapi), gamepad (pygame), terminal keyboard.

Each is a :class:`robot_rl.human.teleop.TeleopDevice`; device libraries are imported on ``connect``.
``drivers.teleop.testing`` fakes them at the library boundary for tests and dry runs.
:data:`TELEOP_DEVICES` registers them by name (``--hil``, ``--teleop``) through the teleop entry point
in pyproject.toml (see :mod:`robot_rl.human.devices`), with the car's and the quadrotor's bindings
(:mod:`drivers.teleop.car_bindings`, :mod:`drivers.teleop.quad_bindings`) as ``"<device>@<family>"``.
"""

from drivers.teleop.gamepad import XBOX_BUTTONS, XBOX_EE_DELTA_XYZ, Gamepad, GamepadConfig
from drivers.teleop.keyboard import KEY_AXES, KEYBOARD_BUTTONS, KEYBOARD_EE_DELTA_XYZ, KeyboardConfig, TerminalKeyboard
from drivers.teleop.spacemouse import (
    SPACEMOUSE_BUTTONS,
    SPACEMOUSE_EE_DELTA_XYZ,
    SPACEMOUSE_EE_DELTA_XYZ_FACING_ROBOT,
    SpaceMouse,
    SpaceMouseConfig,
)

#: Device name -> import string of a class whose no-argument constructor returns the device.
TELEOP_DEVICES = {
    "spacemouse": "drivers.teleop:SpaceMouse",
    "gamepad": "drivers.teleop:Gamepad",
    "keyboard": "drivers.teleop:TerminalKeyboard",
    # bindings per robot family ("<device>@<family>", see robot_rl.human.devices)
    "gamepad@car": "drivers.teleop.car_bindings:CarGamepad",
    "keyboard@car": "drivers.teleop.car_bindings:CarKeyboard",
    "gamepad@quadrotor": "drivers.teleop.quad_bindings:QuadGamepad",
}

__all__ = [
    "TELEOP_DEVICES",
    "Gamepad", "GamepadConfig", "XBOX_BUTTONS", "XBOX_EE_DELTA_XYZ",
    "TerminalKeyboard", "KeyboardConfig", "KEY_AXES", "KEYBOARD_BUTTONS", "KEYBOARD_EE_DELTA_XYZ",
    "SpaceMouse", "SpaceMouseConfig", "SPACEMOUSE_BUTTONS", "SPACEMOUSE_EE_DELTA_XYZ",
    "SPACEMOUSE_EE_DELTA_XYZ_FACING_ROBOT",
]
