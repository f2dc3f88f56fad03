"""The UR backend's errors and pure safety logic (no robot, no client library).

* :func:`robot_stop_message`: what the robot's own safety system says (``getSafetyMode()`` and the
  stop flags), as an instruction an operator can follow;
* :func:`next_setpoint`: the servo stream's speed limit, one step toward the goal;
* :func:`import_ur_rtde`: the client library, imported only when a backend connects.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from drivers.arm import ur_constants as ur
from robot_rl.geometry import limit_rotation


class UrError(RuntimeError):
    """The UR backend cannot go on; the message says why and what to do."""


class UrConnectionLost(UrError):
    """The RTDE link is down: the robot's script stops the arm on its own; reconnect."""


class UrRobotStopped(UrError):
    """The robot's own safety system stopped the arm (protective, emergency or safeguard stop)."""


class UrSafetyStop(UrError):
    """A backend limit (external force, measured speed) stopped the arm; ``reset()`` to go on."""


def import_ur_rtde() -> Any:
    """The two ur_rtde classes the backend uses (``RTDEControlInterface``, ``RTDEReceiveInterface``)."""
    try:
        import rtde_control
        import rtde_receive
    except ImportError as err:
        raise ImportError('the UR backend needs ur_rtde: pip install -e ".[ur]" -c constraints.txt') from err
    return types.SimpleNamespace(RTDEControlInterface=rtde_control.RTDEControlInterface,
                                 RTDEReceiveInterface=rtde_receive.RTDEReceiveInterface)


def robot_stop_message(safety_mode: int, protective: bool, emergency: bool) -> str | None:
    """What stopped the arm, from ``getSafetyMode()`` and the stop flags (None: it may move)."""
    if emergency or safety_mode in ur.EMERGENCY_SAFETY_MODES:
        name = ur.SAFETY_MODES[safety_mode] if safety_mode in ur.EMERGENCY_SAFETY_MODES else "EMERGENCY_STOP"
        return (f"the UR is in an emergency stop ({name}): release the emergency stop button, power the arm on "
                "again on the teach pendant, then call reset()")
    if protective or safety_mode == 3:
        return ("the UR is in a protective stop (PROTECTIVE_STOP: a collision, a joint or force limit of the robot's "
                "safety settings): check the cell, unlock it on the teach pendant (or the dashboard's "
                "unlockProtectiveStop), then call reset()")
    if safety_mode not in ur.RUNNING_SAFETY_MODES:
        name = ur.SAFETY_MODES.get(safety_mode, f"unknown safety mode {safety_mode}")
        return f"the UR's safety system stopped the arm (safety mode {safety_mode}, {name}): clear it on the teach pendant, then call reset()"
    return None


def next_setpoint(setpoint: tuple[np.ndarray, np.ndarray], goal: tuple[np.ndarray, np.ndarray], max_step_m: float,
                  max_step_rad: float) -> tuple[np.ndarray, np.ndarray]:
    """The setpoint (position, ``wxyz`` quaternion) moved toward ``goal`` by at most ``max_step_m``
    and ``max_step_rad``: the TCP speed limits times the time since the previous setpoint went out."""
    (pos, quat), (goal_pos, goal_quat) = setpoint, goal
    step = goal_pos - pos
    norm = float(np.linalg.norm(step))
    pos = pos + (step * (max_step_m / norm) if norm > max_step_m else step)
    return pos, limit_rotation(quat, goal_quat, max_step_rad)
