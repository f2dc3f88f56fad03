"""The arm family's contract: a 6/7-DoF arm with a parallel gripper, simulated or real.

The generic part (spec known without a device, connect/close, ``command()`` returning what was
really sent, ``stop()``) is :class:`robot_rl.backends.base.Backend`; this module adds what an arm
reads (:class:`ArmState`), accepts (:class:`ArmTarget`) and declares (:class:`ArmSpec`), the
safety limits every arm backend applies (:func:`clip_target`) and what a simulator can place
(:class:`ObjectSpec`, :class:`SceneControl`).

Conventions for every quantity below:

* positions in metres, angles in radians, forces in newtons, torques in newton-metres;
* "base frame" is the robot base: x forward, y left, z up (right-handed);
* quaternions are ``(w, x, y, z)``, unit norm, rotating the named frame into the base frame.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Protocol, runtime_checkable

import numpy as np

from robot_rl.backends.base import CameraSpec
from robot_rl.geometry import limit_rotation

FAMILY = "arm"


@dataclasses.dataclass(frozen=True)
class ArmSpec:
    """What an arm backend reads and accepts, known without a connected device.

    Attributes:
        dof: number of arm joints (the gripper is separate).
        joint_limits_rad: ``(dof, 2)`` lower/upper joint position limits.
        workspace_low_m, workspace_high_m: the TCP target box in the base frame; targets outside
            it are clipped by ``command()``.
        gripper_max_width_m: fully open finger distance.
        cameras: the cameras this backend can render/capture, by name.
        max_step_m: the largest TCP translation one command may ask for, relative to the current
            TCP position (targets further away are clipped toward it).
        max_step_rad: the largest TCP rotation one command may ask for.
        home_joint_pos_rad: ``(dof,)`` the arm's ready pose: resets start there.
        render_cameras: every camera ``render()`` can produce (empty: the observed ``cameras``).
    """

    dof: int
    joint_limits_rad: np.ndarray
    workspace_low_m: np.ndarray
    workspace_high_m: np.ndarray
    gripper_max_width_m: float
    cameras: Mapping[str, CameraSpec]
    max_step_m: float = 0.05
    max_step_rad: float = 0.3
    home_joint_pos_rad: np.ndarray | None = None
    render_cameras: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        limits = np.asarray(self.joint_limits_rad, dtype=np.float64)
        if limits.shape != (self.dof, 2) or np.any(limits[:, 0] >= limits[:, 1]):
            raise ValueError(f"joint_limits_rad must be ({self.dof}, 2) lower < upper, got {limits.tolist()}")
        if self.home_joint_pos_rad is not None:
            home = np.asarray(self.home_joint_pos_rad, dtype=np.float64)
            if home.shape != (self.dof,) or np.any(home < limits[:, 0]) or np.any(home > limits[:, 1]):
                raise ValueError(f"home_joint_pos_rad must be {self.dof} joint positions inside joint_limits_rad, "
                                 f"got {home.tolist()}")


@dataclasses.dataclass(frozen=True)
class ArmState:
    """One reading of an arm.

    Attributes:
        time_s: backend clock (sim time, or monotonic time on a robot).
        tcp_pos_m: ``(3,)`` tool centre point position, base frame.
        tcp_quat_wxyz: ``(4,)`` TCP orientation, base frame.
        tcp_linvel_m_s: ``(3,)`` TCP linear velocity, base frame.
        tcp_angvel_rad_s: ``(3,)`` TCP angular velocity, base frame.
        joint_pos_rad: ``(dof,)`` joint positions.
        joint_vel_rad_s: ``(dof,)`` joint velocities.
        gripper_width_m: distance between the fingers.
        ext_wrench_n_nm: ``(6,)`` estimated external wrench at the TCP, base frame,
            ``[fx, fy, fz, tx, ty, tz]`` (force the environment applies to the robot).
        objects: privileged object poses by name, ``(7,)`` = position [m] + quaternion (w, x, y, z),
            base frame. Filled by simulators; empty on a real robot.
    """

    time_s: float
    tcp_pos_m: np.ndarray
    tcp_quat_wxyz: np.ndarray
    tcp_linvel_m_s: np.ndarray
    tcp_angvel_rad_s: np.ndarray
    joint_pos_rad: np.ndarray
    joint_vel_rad_s: np.ndarray
    gripper_width_m: float
    ext_wrench_n_nm: np.ndarray
    objects: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ArmTarget:
    """A TCP pose target plus a gripper opening.

    Attributes:
        tcp_pos_m: ``(3,)`` target TCP position, base frame.
        tcp_quat_wxyz: ``(4,)`` target TCP orientation, base frame.
        gripper_width_m: target finger distance, ``0`` (closed) to the spec's max width.
    """

    tcp_pos_m: np.ndarray
    tcp_quat_wxyz: np.ndarray
    gripper_width_m: float


@dataclasses.dataclass(frozen=True)
class ObjectSpec:
    """A rigid object a task needs in the scene (simulators add it; on a robot it is real): one
    box, or several boxes rigidly joined (``parts``).

    Attributes:
        name: object name; its pose appears in ``ArmState.objects[name]``.
        half_size_m: ``(3,)`` box half extents (with ``parts``: the half extents of the whole
            object, which rests on the table at ``z = half_size_m[2]``).
        mass_kg: mass; ignored when ``fixed`` or ``held_offset_m`` is set.
        rgba: colour for rendering.
        fixed: a static obstacle (contact does not move it; ``SceneControl.set_object_pose`` places it).
        friction: sliding friction coefficient.
        parts: boxes making up the object, each ``(offset_m, half_size_m)`` in the object's frame;
            empty: one box of ``half_size_m`` at the object's origin.
        held_offset_m: the object is held in the gripper, rigidly, its origin at this offset from
            the TCP in the TCP frame (axes aligned with the TCP's). Its contacts are part of the
            robot's external wrench. ``None``: not held.
    """

    name: str
    half_size_m: tuple[float, float, float]
    mass_kg: float = 0.1
    rgba: tuple[float, float, float, float] = (0.85, 0.2, 0.2, 1.0)
    fixed: bool = False
    friction: float = 1.0
    parts: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...] = ()
    held_offset_m: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.fixed and self.held_offset_m is not None:
            raise ValueError(f"object {self.name!r} cannot be both fixed and held in the gripper")
        boxes = [self.half_size_m] + [half for _, half in self.parts]
        if any(np.shape(half) != (3,) or min(half) <= 0 for half in boxes):
            raise ValueError(f"object {self.name!r}: every box needs 3 positive half extents, got {boxes}")
        offsets = [offset for offset, _ in self.parts] + ([self.held_offset_m] if self.held_offset_m is not None else [])
        if any(np.shape(offset) != (3,) for offset in offsets):
            raise ValueError(f"object {self.name!r}: offsets must be (x, y, z) in metres, got {offsets}")


@runtime_checkable
class ArmBackend(Protocol):
    """A 7-DoF-class arm with a parallel gripper, simulated or real (``family == "arm"``).

    ``spec`` is available before ``connect()``. ``command()`` applies the backend's safety limits
    (workspace box, per-command step limit, gripper range: :func:`clip_target`) and returns the
    target it really sent. ``sync(period_s)`` ends one control period: a simulator advances
    physics by ``period_s``, a real robot waits until ``period_s`` has passed since the previous
    ``sync``. ``stop()`` holds the current pose (zero motion, gripper as it is).
    """

    family: str

    @property
    def spec(self) -> ArmSpec: ...

    @property
    def connected(self) -> bool: ...

    def connect(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> "ArmBackend": ...

    def __exit__(self, *exc: object) -> None: ...

    def read_state(self) -> ArmState: ...

    def command(self, target: ArmTarget) -> ArmTarget: ...

    def sync(self, period_s: float) -> None: ...

    def stop(self) -> None:
        """Hold the current TCP pose now; the next ``command()`` moves again."""
        ...

    def reset(self, joint_pos_rad: np.ndarray, target: ArmTarget | None = None) -> ArmState:
        """Move to a joint configuration (then, if given, settle at ``target``); return the state."""
        ...

    def render(self, camera: str, height: int | None = None, width: int | None = None) -> np.ndarray:
        """The newest ``uint8 (H, W, 3)`` frame of ``camera`` (spec size unless given)."""
        ...


@runtime_checkable
class SceneControl(Protocol):
    """Simulators can also place objects; tasks use this for their reset distribution."""

    def set_object_pose(self, name: str, pos_m: np.ndarray, quat_wxyz: np.ndarray) -> None: ...


def clip_target(target: ArmTarget, spec: ArmSpec, state: ArmState) -> ArmTarget:
    """Apply an arm spec's safety limits to a target: step limits, workspace box, gripper range.

    The translation and rotation of the target relative to the current TCP pose are limited to
    ``spec.max_step_m`` / ``spec.max_step_rad``, then the position is clipped to the workspace box.
    Shared by every arm backend so sim and real clip identically.
    """
    pos = np.asarray(target.tcp_pos_m, dtype=np.float64)
    step = pos - state.tcp_pos_m
    norm = float(np.linalg.norm(step))
    if norm > spec.max_step_m:
        pos = state.tcp_pos_m + step * (spec.max_step_m / norm)
    pos = np.clip(pos, spec.workspace_low_m, spec.workspace_high_m)
    quat = limit_rotation(state.tcp_quat_wxyz, np.asarray(target.tcp_quat_wxyz, dtype=np.float64), spec.max_step_rad)
    width = float(np.clip(target.gripper_width_m, 0.0, spec.gripper_max_width_m))
    return ArmTarget(tcp_pos_m=pos, tcp_quat_wxyz=quat, gripper_width_m=width)
