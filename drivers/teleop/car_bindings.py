"""Driving a car task (``car_lap``) with a gamepad or the terminal keyboard.

A person commands steering, throttle and brake; :func:`car_action` turns that into the car task's
action ``[drive, steering]`` (:mod:`tasks.car.base`) through the task's own :class:`DriveMapping`:

- speed mode (car_lap's default): throttle ``t`` in [0, 1] asks for ``t * max_speed_m_s``; brake
  ``b`` in (0, 1] wins over the throttle and asks for ``b * min_speed_m_s`` (a reverse speed when the
  task allows one, else 0 m/s: the speed controller brakes to a standstill);
- throttle mode: drive effort ``t - b`` (negative: brake/reverse, as the motor controller defines it);
- steering: the stick's fraction of the maximum wheel angle, stick left = turn left (positive).

Gamepad (Xbox layout, raw axes as in :mod:`drivers.teleop.gamepad`), :data:`CAR_GAMEPAD`:

===============  ============================================================================
left stick x     steering (left = turn left)
right trigger    throttle
left trigger     brake / reverse
A (held)         dead-man: the human drives only while A is held (right thumb; the right
                 stick is unused). Released: the intervention ends -- the policy drives again
                 under ``--hil``; while recording (``--teleop``) the car brakes (the task's hold
                 action: speed 0, wheels straight)
Y / X            success / failure (end the episode)
Back / Start     re-record this episode / end the episode
===============  ============================================================================

Triggers are read as raw joystick axes that rest at -1 and read +1 fully pulled (the xpad driver).
Some drivers report 0 for a trigger until it is first pulled: pull both triggers once after
plugging the pad in, before holding the dead-man.

Keyboard (:data:`CAR_KEYBOARD`): ``w`` throttle, ``s`` brake/reverse, ``a`` / ``d`` steer left /
right (each key acts for ``hold_s`` after a press, kept alive by the terminal's auto-repeat; ``w``
drives at half the task's top speed); space toggles control (in control with no key pressed =
braking); Enter success, Backspace failure, ``x`` re-record, ``q`` end the episode. Arrow keys arrive
as escape sequences, which the terminal keyboard ignores: use ``wasd``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drivers.teleop.command_device import CommandTeleop
from drivers.teleop.gamepad import Gamepad, GamepadConfig
from drivers.teleop.keyboard import KeyboardConfig, TerminalKeyboard
from robot_rl.backends.car import SPEED
from robot_rl.human.teleop import AxisMap, ButtonMap

#: Pad command ``[steer, right trigger raw, left trigger raw]`` from the pad's first 6 raw axes.
CAR_PAD_COMMAND = AxisMap(
    matrix=((-1.0, 0.0, 0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0, 0.0, 1.0), (0.0, 0.0, 1.0, 0.0, 0.0, 0.0)),
    deadband=(0.1, 0.0, 0.0, 0.0, 0.0, 0.0), gripper=False,
)
CAR_PAD_BUTTONS = ButtonMap(intervene=0, success=3, failure=2, rerecord=6, end_episode=7)
#: The car's gamepad: A is the dead-man (hold mode; sticks and triggers alone never take over).
CAR_GAMEPAD = GamepadConfig(axis_map=CAR_PAD_COMMAND, buttons=CAR_PAD_BUTTONS, intervention="hold",
                            intervene_on_axes=False)

#: Keyboard command ``[drive (+w / -s), steer (+a / -d)]``.
CAR_KEY_AXES = {"w": (0, 1.0), "s": (0, -1.0), "a": (1, 1.0), "d": (1, -1.0)}
CAR_KEYBOARD = KeyboardConfig(
    key_axes=CAR_KEY_AXES, axis_map=AxisMap.from_axes([(0, 1.0), (1, 1.0)], device_dim=2, deadband=0.0, gripper=False),
    buttons=ButtonMap(intervene=" ", success="\n", failure="\x7f", rerecord="x", end_episode="q"),
)
KEYBOARD_THROTTLE = 0.5  # ``w`` asks for this fraction of the top speed


def trigger_fraction(raw: float, deadband: float = 0.05) -> float:
    """A trigger's raw axis (-1 released .. +1 pulled) as a pull fraction in [0, 1], 0 within ``deadband``."""
    pulled = float(np.clip(0.5 * (raw + 1.0), 0.0, 1.0))
    return max(pulled - deadband, 0.0) / (1.0 - deadband)


def car_action(steer: float, throttle: float, brake: float, mapping: Any) -> np.ndarray:
    """The car task's action for a steering fraction (+ left), a throttle and a brake in [0, 1]
    (module docstring); ``mapping`` is the task's :class:`tasks.car.base.DriveMapping`."""
    if not (0.0 <= throttle <= 1.0 and 0.0 <= brake <= 1.0):
        raise ValueError(f"throttle and brake must be in [0, 1], got {throttle}, {brake}")
    if mapping.drive == SPEED:
        drive = brake * mapping.min_speed_m_s if brake > 0.0 else throttle * mapping.max_speed_m_s
    else:
        drive = throttle - brake
    return np.array([mapping.to_action(drive, np), np.clip(steer, -1.0, 1.0)], dtype=np.float32)


def drive_mapping(env: Any) -> Any:
    """The :class:`DriveMapping` of a car task's env; a clear error for other envs."""
    task = getattr(env.unwrapped, "task", None)
    if getattr(task, "family", None) != "car" or not hasattr(task, "mapping"):
        raise ValueError(f"the car bindings drive car tasks; {getattr(task, 'name', env)!r} is not one")
    return task.mapping


class CarGamepad(CommandTeleop):
    """A gamepad driving a car task (module docstring); ``--teleop gamepad`` / ``--hil gamepad``."""

    @classmethod
    def for_env(cls, env: Any, config: GamepadConfig = CAR_GAMEPAD, trigger_deadband: float = 0.05) -> CarGamepad:
        mapping = drive_mapping(env)

        def to_action(command: np.ndarray) -> np.ndarray:
            throttle = trigger_fraction(command[1], trigger_deadband)
            return car_action(command[0], throttle, trigger_fraction(command[2], trigger_deadband), mapping)

        return cls(Gamepad(config), to_action, env.action_space.shape, "driving a car")


class CarKeyboard(CommandTeleop):
    """The terminal keyboard driving a car task (module docstring); ``--teleop keyboard``."""

    @classmethod
    def for_env(cls, env: Any, config: KeyboardConfig = CAR_KEYBOARD) -> CarKeyboard:
        mapping = drive_mapping(env)

        def to_action(command: np.ndarray) -> np.ndarray:
            drive = float(command[0])
            return car_action(command[1], KEYBOARD_THROTTLE * max(drive, 0.0), max(-drive, 0.0), mapping)

        return cls(TerminalKeyboard(config), to_action, env.action_space.shape, "driving a car")
