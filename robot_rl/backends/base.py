"""The contract every robot backend keeps, whatever its family (arm, car, quadrotor, ...).

A backend is a thin adapter behind a Protocol (STYLE.md 3): it says what it observes and accepts
(its ``spec``, cameras included) while no device is connected, it is opened explicitly
(``connect()`` or a ``with`` block) and closed always, and ``command()`` returns what was really
sent after the backend's safety limits, so the data we store is what the robot executed.
``stop()`` brings the robot to its safe state *now* (an arm holds its pose, a car brakes, a
quadrotor lands or cuts its motors); a real backend also does it on its own when no fresh command
came for its watchdog period.

Each family module (:mod:`robot_rl.backends.arm`, :mod:`~robot_rl.backends.car`,
:mod:`~robot_rl.backends.quadrotor`) adds the typed state it reads and the commands it accepts,
with units and frames in names and docstrings. A family outside robot_rl declares its own in the
same shape; the registry (:mod:`robot_rl.registry`) matches backends to tasks by ``family``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np


@dataclasses.dataclass(frozen=True)
class CameraSpec:
    """One camera's image structure: ``uint8`` frames of shape ``(height, width, 3)``, RGB."""

    name: str
    height: int
    width: int

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"camera {self.name!r}: size must be positive, got {self.height}x{self.width}")
        if self.name == "state":
            raise ValueError("a camera may not be called 'state': that key holds the proprioceptive vector")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, 3)


@runtime_checkable
class BackendSpec(Protocol):
    """What every family's spec declares besides its own fields.

    Attributes:
        cameras: the cameras whose frames are part of the observation (``obs="pixels"``), by name.
        render_cameras: every camera ``render()`` can produce (a simulator can film the scene from
            viewpoints that are not observed); empty means the same as ``cameras``.
    """

    cameras: Mapping[str, CameraSpec]
    render_cameras: tuple[str, ...]


@runtime_checkable
class Backend(Protocol):
    """One robot, simulated or real.

    Attributes:
        family: the robot family whose contract it keeps (``"arm"``, ``"car"``, ``"quadrotor"``...);
            a task runs on any backend of its family.

    ``spec`` is available before ``connect()``. ``command()`` applies the backend's safety limits
    and returns the command it really sent. ``sync(period_s)`` ends one control period: a
    simulator advances physics by ``period_s``, a real robot waits until ``period_s`` has passed
    since the previous ``sync`` (:class:`robot_rl.rate.Rate`).
    """

    family: str

    @property
    def spec(self) -> BackendSpec: ...

    @property
    def connected(self) -> bool: ...

    def connect(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> None: ...

    def read_state(self) -> Any: ...

    def command(self, command: Any) -> Any: ...

    def sync(self, period_s: float) -> None: ...

    def stop(self) -> None:
        """Bring the robot to its safe state now (hold, brake, land); commands resume it."""
        ...

    def render(self, camera: str, height: int | None = None, width: int | None = None) -> np.ndarray:
        """The newest ``uint8 (H, W, 3)`` frame of ``camera`` (spec size unless given)."""
        ...


class ConnectOnEnter:
    """``with backend:`` = ``connect()`` ... ``close()`` (mix into a backend class)."""

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def render_camera_names(spec: BackendSpec) -> tuple[str, ...]:
    """Every camera a backend of this spec can render: ``render_cameras``, else the observed ones."""
    return tuple(getattr(spec, "render_cameras", ()) or spec.cameras)
