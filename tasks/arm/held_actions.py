"""End-effector delta actions for a tool held in the gripper: ``[dx, dy, dz, (drx, dry, drz)]``
in [-1, 1], no gripper dimension (the gripper keeps holding the tool at a fixed opening).

The translation and rotation mapping is :class:`~tasks.arm.actions.EndEffectorDeltaActions`'s;
only the gripper dimension is dropped (SERL's peg insertion drives its Franka the same way).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from robot_rl.backends.arm import ArmSpec, ArmState, ArmTarget
from tasks.arm.actions import EndEffectorDeltaActions


@dataclasses.dataclass(frozen=True)
class HeldToolActions(EndEffectorDeltaActions):
    """Maps normalized actions to :class:`ArmTarget` and back, gripper held at ``gripper_width_m``.

    Attributes:
        gripper_width_m: the opening every command keeps (the held tool's width); ``None`` until a
            task fills it in from its tool (:meth:`holding`).
    """

    gripper_width_m: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gripper_width_m is not None and not self.gripper_width_m >= 0:
            raise ValueError(f"gripper_width_m must be >= 0, got {self.gripper_width_m}")

    def holding(self, width_m: float) -> "HeldToolActions":
        """These actions with the gripper held at ``width_m`` unless a width was set explicitly."""
        return self if self.gripper_width_m is not None else dataclasses.replace(self, gripper_width_m=float(width_m))

    @property
    def dim(self) -> int:
        return 6 if self.rotation else 3

    def to_target(self, action: np.ndarray, state: ArmState, spec: ArmSpec) -> ArmTarget:
        if self.gripper_width_m is None:
            raise ValueError("HeldToolActions has no gripper_width_m; the task sets it with holding(width)")
        motion = np.asarray(action, dtype=np.float64)
        if motion.shape != (self.dim,):
            raise ValueError(f"expected an action of shape ({self.dim},), got {motion.shape}")
        target = super().to_target(np.append(motion, -1.0), state, spec)
        return dataclasses.replace(target, gripper_width_m=self.gripper_width_m)

    def to_action(self, target: ArmTarget, state: ArmState, spec: ArmSpec) -> np.ndarray:
        return super().to_action(target, state, spec)[:-1]
