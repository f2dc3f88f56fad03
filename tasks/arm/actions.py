"""End-effector delta actions for arm tasks: ``[dx, dy, dz, (drx, dry, drz,) gripper]`` in [-1, 1].

Translation deltas are scaled to metres per control step and added to the *measured* TCP
position (the controller's reference limiting does the rest); rotation deltas (optional) are a
rotation vector in the base frame, scaled to radians per step; otherwise the orientation is held
at a fixed goal (``hold_quat_wxyz``). The gripper dimension is an absolute opening: -1 closed,
+1 fully open.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np

from robot_rl.backends.arm import ArmSpec, ArmState, ArmTarget
from robot_rl.geometry import quat_conj, quat_from_axis_angle, quat_mul, quat_normalize, quat_to_axis_angle

#: TCP pointing straight down (z of the TCP along -z of the base), fingers closing along base y.
TOP_DOWN_QUAT_WXYZ = (0.0, 1.0, 0.0, 0.0)


@dataclasses.dataclass(frozen=True)
class EndEffectorDeltaActions:
    """Maps normalized actions to :class:`ArmTarget` and back.

    Attributes:
        step_m: TCP translation per control step for an action of 1.
        step_rad: TCP rotation per control step for an action of 1 (when ``rotation``).
        rotation: include 3 rotation dimensions in the action.
        hold_quat_wxyz: orientation held when ``rotation`` is False.
    """

    step_m: float = 0.02
    step_rad: float = 0.1
    rotation: bool = False
    hold_quat_wxyz: tuple[float, float, float, float] = TOP_DOWN_QUAT_WXYZ

    def __post_init__(self) -> None:
        if self.step_m <= 0 or self.step_rad <= 0:
            raise ValueError(f"step_m and step_rad must be positive, got {self.step_m}, {self.step_rad}")

    @property
    def dim(self) -> int:
        return 7 if self.rotation else 4

    def space(self) -> gym.spaces.Box:
        return gym.spaces.Box(-1.0, 1.0, shape=(self.dim,), dtype=np.float32)

    def to_target(self, action: np.ndarray, state: ArmState, spec: ArmSpec) -> ArmTarget:
        action = np.asarray(action, dtype=np.float64)
        pos = state.tcp_pos_m + self.step_m * action[:3]
        if self.rotation:
            delta = quat_from_axis_angle(self.step_rad * action[3:6])
            quat = quat_normalize(quat_mul(delta, state.tcp_quat_wxyz))
        else:
            quat = np.asarray(self.hold_quat_wxyz, dtype=np.float64)
        width = (action[-1] + 1.0) / 2.0 * spec.gripper_max_width_m
        return ArmTarget(tcp_pos_m=pos, tcp_quat_wxyz=quat, gripper_width_m=float(width))

    def to_action(self, target: ArmTarget, state: ArmState, spec: ArmSpec) -> np.ndarray:
        parts = [(target.tcp_pos_m - state.tcp_pos_m) / self.step_m]
        if self.rotation:
            rel = quat_mul(target.tcp_quat_wxyz, quat_conj(state.tcp_quat_wxyz))
            parts.append(quat_to_axis_angle(rel) / self.step_rad)
        parts.append([2.0 * target.gripper_width_m / spec.gripper_max_width_m - 1.0])
        return np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)
