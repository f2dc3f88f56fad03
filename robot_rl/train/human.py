"""The human in the training loop: a teleop device (or the simulated human) that can take over.

``--hil simulated`` wraps the training env in :class:`InterveneWithTeleop` with a
:class:`~robot_rl.hil.SimulatedHuman` driven by the task's scripted expert; ``--hil spacemouse``
(``gamepad``, ``keyboard``) opens that device from ``drivers.teleop`` (found by import string:
``robot_rl`` never imports ``drivers`` directly). Evaluation envs are never wrapped.
"""

from __future__ import annotations

import contextlib
from typing import Any

import gymnasium as gym

from robot_rl.registry import load

TELEOP_DEVICES = {
    "spacemouse": "drivers.teleop:SpaceMouse",
    "gamepad": "drivers.teleop:Gamepad",
    "keyboard": "drivers.teleop:TerminalKeyboard",
}


def open_device(name: str, env: gym.Env, stack: contextlib.ExitStack, sim_config: Any = None) -> Any:
    """A connected teleop device for ``env`` (closed when ``stack`` closes)."""
    if name == "simulated":
        from robot_rl.hil import SimulatedHuman

        if not hasattr(env.unwrapped, "task") or not hasattr(env.unwrapped.task, "expert"):
            raise ValueError("--hil simulated needs a robot_rl task with a scripted expert (see `robot-rl envs`)")
        device = SimulatedHuman.for_env(env, sim_config)
    elif name in TELEOP_DEVICES:
        device = load(TELEOP_DEVICES[name])()
    else:
        raise ValueError(f"unknown teleop device {name!r}; choose one of {['simulated', *TELEOP_DEVICES]}")
    device.connect()
    stack.callback(device.close)
    return device


def with_human(env: gym.Env, hil: str, stack: contextlib.ExitStack, sim_config: Any = None) -> gym.Env:
    """``env`` wrapped so that the human of ``hil`` can take over (``hil == "none"``: unchanged)."""
    if hil == "none":
        return env
    from robot_rl.wrappers.intervention import InterveneWithTeleop

    return InterveneWithTeleop(env, open_device(hil, env, stack, sim_config))
