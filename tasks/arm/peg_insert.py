"""peg_insert: push a square peg held in the gripper into a hole with a small clearance.

Scene: a 2 cm square peg, 7 cm long, held rigidly in the gripper (pointing down, its tip 5 cm beyond
the TCP); a fixed block on the table with a square hole 2.5 cm deep, 2 mm wider than the peg
(1 mm each side), made of four walls (the table is its bottom).
Reset: the hole at a random position in front of the robot (axes aligned with the peg), the peg's
tip at a random offset above it, orientation pointing down. Success = the peg's tip is inside the
hole at least ``insert_depth_m`` below its top; sparse reward 1 on success (terminating) by
default, dense shaping as an option. 100 control steps (10 s at 10 Hz) then truncation.

Actions: ``[dx, dy, dz]`` (:class:`~tasks.arm.held_actions.HeldToolActions`; 1 = 4 mm per step,
the gripper keeps holding the peg). The controller's reference limiting bounds the sustained
contact force by stiffness x clip whatever is commanded; the small action step keeps the policy's
impacts on the rim under that bound too (tests/tasks/arm/test_peg_insert.py).

Every rule is an array function over ``xp`` (numpy or ``jax.numpy``): ``peg_tip_arrays``,
``observe_arrays``, ``success_arrays``, ``reward_arrays``, ``expert_arrays``, ``start_arrays``;
:class:`PegInsert` calls them with numpy on one state.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from robot_rl.backends.arm import ArmBackend, ArmSpec, ArmState, ArmTarget, ObjectSpec, SceneControl
from tasks.arm.actions import TOP_DOWN_QUAT_WXYZ
from tasks.arm.base import ArmTask
from tasks.arm.held_actions import HeldToolActions


# ---------------------------------------------------------------------- array functions (xp)
def peg_tip_arrays(peg_pose: Any, half_length_m: float, xp: Any) -> Any:
    """The peg's tip ``(..., 3)`` from its pose ``(..., 7)`` (position + quaternion wxyz): the
    centre of its end face along the peg's +z axis (the TCP's approach axis)."""
    w, x, y, z = (peg_pose[..., i] for i in range(3, 7))
    axis_z = xp.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], axis=-1)
    return peg_pose[..., :3] + half_length_m * axis_z


def observe_arrays(tcp_pos_m: Any, tcp_linvel_m_s: Any, hole_top_m: Any, peg_tip_m: Any, xp: Any) -> Any:
    """``[tcp_pos_m, tcp_linvel_m_s, hole_top_m, peg_tip_minus_hole_top_cm]`` on the last axis,
    ``(..., 12)``. The offset that decides the insertion is in centimetres, so the millimetres that
    matter (the play is 1 mm a side) are not lost in a network's unnormalized inputs."""
    return xp.concatenate([tcp_pos_m, tcp_linvel_m_s, hole_top_m, 100.0 * (peg_tip_m - hole_top_m)], axis=-1)


def success_arrays(tip_minus_top_m: Any, insert_depth_m: float, opening_half_m: float, xp: Any) -> Any:
    """The tip is within the opening (square, axis-aligned) and ``insert_depth_m`` below the top."""
    lateral = xp.maximum(xp.abs(tip_minus_top_m[..., 0]), xp.abs(tip_minus_top_m[..., 1]))
    return (lateral <= opening_half_m) & (-tip_minus_top_m[..., 2] >= insert_depth_m)


def reward_arrays(tip_minus_top_m: Any, success: Any, insert_depth_m: float, dense: bool, xp: Any) -> Any:
    """1 on success; else 0, or with ``dense`` ``0.5 (1 - tanh(10 d))``, d = distance [m] from the
    tip to the point ``insert_depth_m`` below the hole's top centre."""
    if not dense:
        return xp.where(success, 1.0, 0.0)
    goal = xp.asarray([0.0, 0.0, -insert_depth_m], dtype=tip_minus_top_m.dtype)
    distance = xp.sqrt(xp.sum((tip_minus_top_m - goal) ** 2, axis=-1))
    return xp.where(success, 1.0, 0.5 * (1.0 - xp.tanh(10.0 * distance)))


def expert_arrays(tip_minus_top_m: Any, opening_half_m: float, align_tol_m: float, hover_m: float, insert_depth_m: float,
                  step_m: float, xp: Any, descend: float = 0.5, gain_xy: float = 2.0) -> Any:
    """Scripted ``[dx, dy, dz]`` in [-1, 1]: move the tip over the hole at ``hover_m`` above its
    top; once within ``align_tol_m`` laterally (or already in the hole) push it down past
    ``insert_depth_m`` at ``descend`` of full speed, centring all the way (gain ``gain_xy``: the
    arm lags its target while it moves)."""
    lateral = xp.maximum(xp.abs(tip_minus_top_m[..., 0]), xp.abs(tip_minus_top_m[..., 1]))
    in_hole = (lateral <= opening_half_m) & (tip_minus_top_m[..., 2] < 0.0)
    aligned = (lateral <= align_tol_m) | in_hole
    # Not over the hole: go to (or back up to) the hover height while centring.
    dz_hover = xp.clip((hover_m - tip_minus_top_m[..., 2]) / step_m, -1.0, 1.0)
    dz_down = xp.clip((-(insert_depth_m + 0.01) - tip_minus_top_m[..., 2]) / step_m, -descend, descend)
    dxy = xp.clip(-gain_xy * tip_minus_top_m[..., :2] / step_m, -1.0, 1.0)
    return xp.concatenate([dxy, xp.where(aligned, dz_down, dz_hover)[..., None]], axis=-1)


def start_arrays(uniform: Any, hole_low_m: tuple, hole_high_m: tuple, offset_low_m: tuple, offset_high_m: tuple,
                 xp: Any) -> tuple[Any, Any]:
    """Map uniform ``[0, 1)`` samples ``(..., 5)`` to (hole centre xy ``(..., 2)``, peg tip offset
    from the hole's top centre ``(..., 3)``)."""
    low, high = xp.asarray(hole_low_m, dtype=uniform.dtype), xp.asarray(hole_high_m, dtype=uniform.dtype)
    off_low, off_high = xp.asarray(offset_low_m, dtype=uniform.dtype), xp.asarray(offset_high_m, dtype=uniform.dtype)
    return low + uniform[..., :2] * (high - low), off_low + uniform[..., 2:5] * (off_high - off_low)


# ---------------------------------------------------------------------- config and task
@dataclasses.dataclass(frozen=True)
class PegInsertConfig:
    """Every field can be overridden through ``robot_rl.make("peg_insert", field=value)``.

    Attributes:
        dense_reward: shape the sparse success reward by the tip's distance to the goal depth.
        terminate_on_success: end the episode (terminated) at success.
        max_episode_steps: time limit in control steps (truncation).
        peg_half_width_m: half the peg's square cross-section.
        peg_half_length_m: half the peg's length.
        peg_grasp_m: the peg's centre lies this far beyond the TCP along the approach axis.
        peg_mass_kg: peg mass.
        clearance_m: hole width minus peg width (the play, both sides together).
        hole_depth_m: depth of the hole (= height of the block; the table is its bottom).
        hole_wall_m: thickness of the block's walls around the hole.
        insert_depth_m: success depth of the tip below the hole's top.
        hole_low_m, hole_high_m: (x, y) range of the hole's centre, base frame.
        start_low_m, start_high_m: range of the peg tip's start offset from the hole's top centre.
        expert_align_m: the expert descends into the hole once this close laterally.
        expert_hover_m: the expert's approach height of the tip above the hole.
        actions: the held-tool action mapping (the gripper width is set to the peg's).
    """

    dense_reward: bool = False
    terminate_on_success: bool = True
    max_episode_steps: int = 100
    peg_half_width_m: float = 0.01
    peg_half_length_m: float = 0.035
    peg_grasp_m: float = 0.015
    peg_mass_kg: float = 0.05
    clearance_m: float = 0.002
    hole_depth_m: float = 0.025
    hole_wall_m: float = 0.015
    insert_depth_m: float = 0.02
    hole_low_m: tuple[float, float] = (0.45, -0.1)
    hole_high_m: tuple[float, float] = (0.6, 0.1)
    start_low_m: tuple[float, float, float] = (-0.05, -0.05, 0.03)
    start_high_m: tuple[float, float, float] = (0.05, 0.05, 0.08)
    expert_align_m: float = 0.0008
    expert_hover_m: float = 0.01
    actions: HeldToolActions = HeldToolActions(step_m=0.004)

    def __post_init__(self) -> None:
        if self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")
        if not 0 < self.peg_half_width_m < 0.035:
            raise ValueError(f"peg_half_width_m must be in (0, 0.035) to fit the 8 cm gripper, got {self.peg_half_width_m}")
        if not 0 < self.clearance_m < 2 * self.peg_half_width_m:
            raise ValueError(f"clearance_m must be in (0, peg width), got {self.clearance_m}")
        if not 0 < self.insert_depth_m <= self.hole_depth_m:
            raise ValueError(f"insert_depth_m must be in (0, hole_depth_m={self.hole_depth_m}], got {self.insert_depth_m}")
        if self.peg_half_length_m + self.peg_grasp_m - 0.02 <= self.hole_depth_m:
            raise ValueError("the peg must reach deeper than the hole below the fingertips (2 cm beyond the TCP): "
                             f"peg_half_length_m + peg_grasp_m - 0.02 > hole_depth_m, got {self.peg_half_length_m}, "
                             f"{self.peg_grasp_m}, {self.hole_depth_m}")
        if not isinstance(self.actions, HeldToolActions):
            raise ValueError(f"peg_insert needs HeldToolActions (no gripper dimension), got {type(self.actions).__name__}")
        if self.start_low_m[2] <= 0:
            raise ValueError(f"the peg must start above the hole: start_low_m z > 0, got {self.start_low_m}")

    @property
    def opening_half_m(self) -> float:
        return self.peg_half_width_m + self.clearance_m / 2

    @property
    def tip_below_tcp_m(self) -> float:
        return self.peg_grasp_m + self.peg_half_length_m


def hole_object(cfg: PegInsertConfig) -> ObjectSpec:
    """Four walls around a square opening, origin at the block's centre (half its height up)."""
    a, t, h = cfg.opening_half_m, cfg.hole_wall_m, cfg.hole_depth_m / 2
    outer = a + t
    parts = tuple(
        ((sx * (a + t / 2), 0.0, 0.0), (t / 2, outer, h)) for sx in (-1.0, 1.0)
    ) + tuple(((0.0, sy * (a + t / 2), 0.0), (a, t / 2, h)) for sy in (-1.0, 1.0))
    return ObjectSpec("hole", (outer, outer, h), fixed=True, parts=parts, rgba=(0.3, 0.45, 0.8, 1.0))


class PegInsert(ArmTask):
    """Backend-agnostic peg insertion for any :class:`ArmBackend`.

    The state observation holds the hole's pose, which a simulator knows (on a robot: a fixture at
    a measured pose, or ``obs="pixels"``); the peg's pose follows from the TCP's.
    """

    name = "peg_insert"

    def __init__(self, config: PegInsertConfig | None = None) -> None:
        self.config = cfg = config or PegInsertConfig()
        self.max_episode_steps = cfg.max_episode_steps
        self.actions = cfg.actions.holding(2 * cfg.peg_half_width_m)
        half = cfg.peg_half_width_m
        peg = ObjectSpec("peg", (half, half, cfg.peg_half_length_m), mass_kg=cfg.peg_mass_kg,
                         held_offset_m=(0.0, 0.0, cfg.peg_grasp_m), rgba=(0.85, 0.6, 0.2, 1.0))
        self.objects = (peg, hole_object(cfg))

    def state_layout(self, spec: ArmSpec, obs_mode: str) -> dict[str, int]:
        layout = {"tcp_pos_m": 3, "tcp_linvel_m_s": 3}
        if obs_mode == "state":
            layout.update({"hole_top_m": 3, "peg_tip_minus_hole_top_cm": 3})
        return layout

    def hold_action(self, spec: ArmSpec) -> np.ndarray:
        return np.zeros(self.actions.dim, dtype=np.float32)

    # ------------------------------------------------------------------ episode
    def reset(self, backend: ArmBackend, rng: np.random.Generator) -> ArmState:
        cfg = self.config
        hole_xy, tip_offset = start_arrays(rng.uniform(size=5), cfg.hole_low_m, cfg.hole_high_m, cfg.start_low_m,
                                           cfg.start_high_m, np)
        top = np.array([hole_xy[0], hole_xy[1], cfg.hole_depth_m])
        start = ArmTarget(
            tcp_pos_m=top + tip_offset + np.array([0.0, 0.0, cfg.tip_below_tcp_m]),
            tcp_quat_wxyz=np.asarray(TOP_DOWN_QUAT_WXYZ, dtype=np.float64),
            gripper_width_m=self.actions.gripper_width_m,
        )
        if backend.spec.home_joint_pos_rad is None:
            raise ValueError(f"peg_insert resets from the arm's ready pose; {type(backend).__name__}'s spec has no home_joint_pos_rad")
        state = backend.reset(np.asarray(backend.spec.home_joint_pos_rad, dtype=np.float64), start)
        if isinstance(backend, SceneControl):  # on a robot, the fixture is where it is
            backend.set_object_pose("hole", top - np.array([0.0, 0.0, cfg.hole_depth_m / 2]), np.array([1.0, 0.0, 0.0, 0.0]))
            state = backend.read_state()
        return state

    def _hole_top(self, state: ArmState) -> np.ndarray:
        if "hole" not in state.objects or "peg" not in state.objects:
            raise RuntimeError("peg_insert's state observation, reward and success need the hole and peg poses, which this "
                               "backend does not report; on a real robot use obs='pixels' with a reward classifier")
        return state.objects["hole"][:3] + np.array([0.0, 0.0, self.config.hole_depth_m / 2])

    def _tip_minus_top(self, state: ArmState) -> np.ndarray:
        return peg_tip_arrays(state.objects["peg"], self.config.peg_half_length_m, np) - self._hole_top(state)

    def observe(self, state: ArmState, obs_mode: str) -> np.ndarray:
        if obs_mode != "state":
            return np.concatenate([state.tcp_pos_m, state.tcp_linvel_m_s]).astype(np.float32)
        top = self._hole_top(state)
        tip = peg_tip_arrays(state.objects["peg"], self.config.peg_half_length_m, np)
        return observe_arrays(state.tcp_pos_m, state.tcp_linvel_m_s, top, tip, np).astype(np.float32)

    def success(self, state: ArmState) -> bool:
        cfg = self.config
        return bool(success_arrays(self._tip_minus_top(state), cfg.insert_depth_m, cfg.opening_half_m, np))

    def terminated(self, state: ArmState) -> bool:
        return self.config.terminate_on_success and self.success(state)

    def reward(self, state: ArmState) -> float:
        cfg = self.config
        return float(reward_arrays(self._tip_minus_top(state), self.success(state), cfg.insert_depth_m, cfg.dense_reward, np))

    def expert(self, state: ArmState) -> np.ndarray:
        """Over the hole, then down into it (:func:`expert_arrays`); a function of the state only."""
        cfg = self.config
        action = expert_arrays(self._tip_minus_top(state), cfg.opening_half_m, cfg.expert_align_m, cfg.expert_hover_m,
                               cfg.insert_depth_m, self.actions.step_m, np)
        full = np.zeros(self.actions.dim, dtype=np.float32)  # rotation dimensions (if any) hold still
        full[:3] = action
        return full


def make_task(**options) -> PegInsert:
    """Registry entry point: options are :class:`PegInsertConfig` fields."""
    return PegInsert(PegInsertConfig(**options))
