"""Flying a quadrotor task (``quad_hover``) with a gamepad, at the velocity level.

The person commands a velocity and a yaw rate, never motors. quad_hover's action is thrust + body
rates (a residual on the hover-in-place fallback, :mod:`tasks.quad.base`), so each command goes
through the flight-control cascade the task itself uses (:mod:`drivers.quad.control`):

1. stick deflections (after a deadband) scale to a velocity ``(vx, vy, vz)`` [m/s] and a yaw rate
   [rad/s] (:class:`QuadPadLimits`); ``vx, vy`` are in the *heading frame* (``frame="yaw"``: stick
   up = the way the vehicle faces, rotated into world ENU by the measured heading) or in the
   *world frame* (``frame="world"``: stick up = world +x, left = world +y);
2. ``QuadController.velocity_to_thrust_rates`` (velocity loop -> tilt -> body-rate targets, the
   position controller's lower half) turns the world velocity target and yaw rate into a collective
   thrust fraction and body-rate targets for the *current* measured state (``env.unwrapped.state``);
3. ``QuadActionArrays.to_action`` expresses that command as the task's action, relative to the same
   fallback the task adds back in ``action_to_command``, so the env executes exactly the cascade's
   thrust and rates (the body-rate PID and mixer below run as always).

Gamepad (Xbox layout, raw axes as in :mod:`drivers.teleop.gamepad`), :data:`QUAD_GAMEPAD`:

===============  =========================================================================
left stick       horizontal velocity: up = forward (+x), left = +y (heading or world frame)
right stick y    up = climb (+z)
right stick x    yaw rate: right = turn right (clockwise seen from above)
RB (held)        dead-man: the human flies only while RB is held. Released (or the pad
                 unplugged): the intervention ends -- the policy flies again under ``--hil``;
                 while recording (``--teleop``) the task's hold action runs: the hover-in-place
                 fallback (level out, stop, stop turning)
Y / X            success / failure (end the episode)
Back / Start     re-record this episode / end the episode
===============  =========================================================================
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from drivers.quad.control import heading_arrays
from drivers.teleop.command_device import CommandTeleop
from drivers.teleop.gamepad import Gamepad, GamepadConfig
from robot_rl.human.teleop import AxisMap, ButtonMap

FRAMES = ("yaw", "world")

#: Pad command ``[vx, vy, vz, yaw rate]`` in [-1, 1] from the pad's first 5 raw axes.
QUAD_PAD_COMMAND = AxisMap.from_axes([(1, -1.0), (0, -1.0), (4, -1.0), (3, -1.0)], device_dim=5, deadband=0.1,
                                     gripper=False)
QUAD_PAD_BUTTONS = ButtonMap(intervene=5, success=3, failure=2, rerecord=6, end_episode=7)
#: The quadrotor's gamepad: RB is the dead-man (hold mode; sticks alone never take over).
QUAD_GAMEPAD = GamepadConfig(axis_map=QUAD_PAD_COMMAND, buttons=QUAD_PAD_BUTTONS, intervention="hold",
                             intervene_on_axes=False)


@dataclasses.dataclass(frozen=True)
class QuadPadLimits:
    """Full stick deflection = these rates.

    Attributes:
        horizontal_m_s: ``vx``, ``vy`` [m/s].
        vertical_m_s: ``vz`` [m/s].
        yaw_rate_rad_s: yaw rate [rad/s] (world z, ENU: positive turns left).
        frame: ``"yaw"`` (heading frame) or ``"world"`` for ``vx``, ``vy``.
    """

    horizontal_m_s: float = 1.0
    vertical_m_s: float = 0.5
    yaw_rate_rad_s: float = 1.5
    frame: str = "yaw"

    def __post_init__(self) -> None:
        if self.frame not in FRAMES:
            raise ValueError(f"frame must be one of {FRAMES}, got {self.frame!r}")
        for name in ("horizontal_m_s", "vertical_m_s", "yaw_rate_rad_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"QuadPadLimits.{name} must be > 0, got {getattr(self, name)!r}")


def velocity_command_world(command: np.ndarray, quat_wxyz: np.ndarray,
                           limits: QuadPadLimits) -> tuple[np.ndarray, float]:
    """``(world velocity target (3,) [m/s], yaw rate [rad/s])`` for a normalized ``[vx, vy, vz, yaw]``."""
    vx, vy = limits.horizontal_m_s * command[0], limits.horizontal_m_s * command[1]
    if limits.frame == "yaw":
        cos_yaw, sin_yaw = heading_arrays(np.asarray(quat_wxyz, dtype=np.float64), np)
        vx, vy = cos_yaw * vx - sin_yaw * vy, sin_yaw * vx + cos_yaw * vy
    return np.array([vx, vy, limits.vertical_m_s * command[2]]), float(limits.yaw_rate_rad_s * command[3])


def quad_action(command: np.ndarray, state: Any, actions: Any, limits: QuadPadLimits) -> np.ndarray:
    """The quadrotor task's action flying the velocity command from ``state`` (module docstring);
    ``actions`` is the task's :class:`tasks.quad.base.QuadActionArrays`."""
    vel_target_m_s, yaw_rate_rad_s = velocity_command_world(command, state.quat_wxyz, limits)
    collective, rates = actions.controller.velocity_to_thrust_rates(vel_target_m_s, np.float64(yaw_rate_rad_s),
                                                                    state.vel_m_s, state.quat_wxyz, np)
    return actions.to_action(np.float64(collective), rates, state.vel_m_s, state.quat_wxyz, np).astype(np.float32)


class QuadGamepad(CommandTeleop):
    """A gamepad flying a quadrotor task (module docstring); ``--teleop gamepad`` / ``--hil gamepad``."""

    @classmethod
    def for_env(cls, env: Any, config: GamepadConfig = QUAD_GAMEPAD,
                limits: QuadPadLimits = QuadPadLimits()) -> QuadGamepad:
        base = env.unwrapped
        task = getattr(base, "task", None)
        if getattr(task, "family", None) != "quadrotor" or not hasattr(task, "actions_for"):
            raise ValueError(f"the quadrotor bindings fly quadrotor tasks; {getattr(task, 'name', env)!r} is not one")

        def to_action(command: np.ndarray) -> np.ndarray:
            if base.state is None:
                raise RuntimeError("the quadrotor gamepad needs the vehicle's state: reset the env first")
            return quad_action(command, base.state, task.actions_for(base.backend.spec), limits)

        return cls(Gamepad(config), to_action, env.action_space.shape, f"flying a quadrotor ({limits.frame} frame)")
