"""The puck family's contract (``family = "puck"``): a planar point-mass puck pushed by a force.

This family lives outside robot_rl on purpose: it shows that a new robot family is only new files
(contract, backend, tasks, entry points). It has the shape of :mod:`robot_rl.backends.arm`: what
a puck backend declares (:class:`PuckSpec`), reads (:class:`PuckState`) and accepts
(:class:`PuckCommand`), and the safety limit every puck backend applies (:func:`clip_command`),
so a simulator and a real puck (say, an air-hockey puck pushed by a gantry) clip identically.

Conventions for every quantity below:

* lengths in metres, time in seconds, forces in newtons, masses in kilograms;
* "table frame": origin at the arena centre on the table surface, x forward, y left, z up
  (right-handed); the arena is the square ``|x|, |y| <= arena_half_size_m`` bounded by walls.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from robot_rl.backends.base import Backend, CameraSpec

FAMILY = "puck"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PuckSpec:
    """What a puck backend reads and accepts, known without a connected device.

    Attributes:
        arena_half_size_m: the walls' inner faces are at ``x, y = +-arena_half_size_m``.
        puck_radius_m: the puck's radius; its centre stays within ``arena_half_size_m - puck_radius_m``.
        max_force_n: per-axis force limit: ``command()`` clips each of ``force_n``'s components to
            ``[-max_force_n, max_force_n]``.
        mass_kg: the puck's (nominal) mass.
        cameras: the cameras whose frames are part of the observation (``obs="pixels"``), by name.
        render_cameras: every camera ``render()`` can produce; empty means ``cameras``.
        watchdog_s: a real backend calls ``stop()`` when no fresh command came for this long
            (:class:`robot_rl.backends.watchdog.CommandWatchdog`); simulators need none.
    """

    arena_half_size_m: float
    puck_radius_m: float
    max_force_n: float
    mass_kg: float
    cameras: Mapping[str, CameraSpec] = dataclasses.field(default_factory=dict)
    render_cameras: tuple[str, ...] = ()
    watchdog_s: float = 0.2

    def __post_init__(self) -> None:
        for name in ("arena_half_size_m", "puck_radius_m", "max_force_n", "mass_kg", "watchdog_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"PuckSpec.{name} must be a finite number > 0, got {value!r}")
        if self.puck_radius_m >= self.arena_half_size_m:
            raise ValueError(f"PuckSpec.puck_radius_m ({self.puck_radius_m}) must be below "
                             f"arena_half_size_m ({self.arena_half_size_m})")
        for key, camera in self.cameras.items():
            if not isinstance(camera, CameraSpec) or camera.name != key:
                raise ValueError(f"PuckSpec.cameras[{key!r}] must be a CameraSpec named {key!r}, got {camera!r}")
        missing = [name for name in self.cameras if self.render_cameras and name not in self.render_cameras]
        if missing:
            raise ValueError(f"PuckSpec.render_cameras must include every observed camera; missing {missing}")
        object.__setattr__(self, "cameras", types.MappingProxyType(dict(self.cameras)))
        object.__setattr__(self, "render_cameras", tuple(self.render_cameras))

    @property
    def reach_m(self) -> float:
        """How far from the centre the puck's centre can go, per axis (walls minus radius)."""
        return self.arena_half_size_m - self.puck_radius_m


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class PuckState:
    """One reading of a puck (arrays are read-only float64 copies).

    Attributes:
        time_s: backend clock (sim time, or monotonic time on a robot).
        pos_m: ``(2,)`` puck centre ``(x, y)``, table frame.
        vel_m_s: ``(2,)`` puck velocity ``(vx, vy)``, table frame.
    """

    time_s: float
    pos_m: np.ndarray
    vel_m_s: np.ndarray

    def __post_init__(self) -> None:
        for name in ("pos_m", "vel_m_s"):
            array = np.array(getattr(self, name), dtype=np.float64)
            if array.shape != (2,):
                raise ValueError(f"PuckState.{name} must have shape (2,), got {array.shape}")
            array.flags.writeable = False
            object.__setattr__(self, name, array)


@dataclasses.dataclass(frozen=True, eq=False)
class PuckCommand:
    """A planar force on the puck.

    Attributes:
        force_n: ``(2,)`` force ``(fx, fy)`` [N], table frame (finite; limits are applied by
            :func:`clip_command`, not here).
    """

    force_n: np.ndarray

    def __post_init__(self) -> None:
        force = np.array(self.force_n, dtype=np.float64)
        if force.shape != (2,) or not np.all(np.isfinite(force)):
            raise ValueError(f"PuckCommand.force_n must be 2 finite numbers [N], got {self.force_n!r}")
        force.flags.writeable = False
        object.__setattr__(self, "force_n", force)


def clip_force_arrays(force_n: Any, max_force_n: Any, xp: Any) -> Any:
    """Per-axis force limit on ``(..., 2)`` forces [N]: the one rule every puck backend applies.

    Pure array code over ``xp`` (``numpy`` or ``jax.numpy``), so the batched JAX sim clips exactly
    as :func:`clip_command` does.
    """
    return xp.clip(force_n, -max_force_n, max_force_n)


def clip_command(command: PuckCommand, spec: PuckSpec) -> PuckCommand:
    """Apply a puck spec's safety limit (each force component within ``+-max_force_n``)."""
    return PuckCommand(clip_force_arrays(command.force_n, spec.max_force_n, np))


@runtime_checkable
class PuckBackend(Backend, Protocol):
    """A planar puck, simulated or real (``family == "puck"``).

    ``command()`` applies :func:`clip_command` and returns the command it really sent; the force
    is held until the next command. ``stop()`` zeroes the force now (in sim, the puck's damping
    then brings it to rest); the next ``command()`` pushes again.
    """

    family: str

    @property
    def spec(self) -> PuckSpec: ...

    def read_state(self) -> PuckState: ...

    def command(self, command: PuckCommand) -> PuckCommand: ...

    def reset(self, pos_m: np.ndarray, vel_m_s: np.ndarray) -> PuckState:
        """Put the puck at ``pos_m`` ``(2,)`` with ``vel_m_s`` ``(2,)`` (table frame), force zero;
        return the state. A real puck is placed by hand or driven there."""
        ...


@runtime_checkable
class PuckSceneControl(Protocol):
    """Simulators can also show a task's goal (so ``obs="pixels"`` policies can see it)."""

    def set_goal_marker(self, pos_m: np.ndarray) -> None:
        """Draw the goal marker at ``pos_m`` ``(2,)``, table frame (visual only, no contact)."""
        ...


def action_to_force_arrays(action: Any, max_force_n: Any, xp: Any) -> Any:
    """``(..., 2)`` normalized actions -> the forces [N] a puck backend applies (limits included)."""
    return clip_force_arrays(xp.clip(action, -1.0, 1.0) * max_force_n, max_force_n, xp)


def force_to_action_arrays(force_n: Any, max_force_n: Any, xp: Any) -> Any:
    """Inverse of :func:`action_to_force_arrays` on forces within the limit."""
    return xp.clip(force_n / max_force_n, -1.0, 1.0)
