"""pick_cube: grasp a cube from the table and lift it at least 5 cm.

Reset: cube at a random position and yaw in front of the robot, TCP at a random position above
the table, gripper open. Sparse reward by default (1 on success, which terminates the episode);
dense shaping as an option. 100 control steps (10 s at 10 Hz) then truncation.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from robot_rl.backends.arm import ArmBackend, ArmSpec, ArmState, ArmTarget, ObjectSpec, SceneControl
from tasks.arm.actions import TOP_DOWN_QUAT_WXYZ, EndEffectorDeltaActions
from tasks.arm.base import ArmTask


@dataclasses.dataclass(frozen=True)
class PickCubeConfig:
    """Every field can be overridden through ``robot_rl.make("pick_cube", field=value)``.

    Attributes:
        dense_reward: add shaping (reach, grasp, lift) to the sparse success reward.
        lift_height_m: how far above its resting height the cube must be held.
        max_episode_steps: time limit in control steps (truncation).
        cube_half_size_m: half edge of the cube.
        cube_mass_kg: cube mass.
        cube_low_m, cube_high_m: (x, y) range of the cube's initial position, base frame.
        cube_max_yaw_rad: the cube's initial yaw is uniform in [-max, max].
        start_low_m, start_high_m: range of the initial TCP position, base frame.
        actions: the end-effector delta action mapping.
        terminate_on_success: end the episode (terminated) at success. False runs every episode to
            the time limit, for training on a learned reward whose wrapper decides termination
            (``info["success"]`` still reports the truth).
    """

    dense_reward: bool = False
    terminate_on_success: bool = True
    lift_height_m: float = 0.05
    max_episode_steps: int = 100
    cube_half_size_m: float = 0.025
    cube_mass_kg: float = 0.05
    cube_low_m: tuple[float, float] = (0.4, -0.15)
    cube_high_m: tuple[float, float] = (0.6, 0.15)
    cube_max_yaw_rad: float = np.pi / 4
    start_low_m: tuple[float, float, float] = (0.35, -0.15, 0.2)
    start_high_m: tuple[float, float, float] = (0.55, 0.15, 0.35)
    actions: EndEffectorDeltaActions = EndEffectorDeltaActions()

    def __post_init__(self) -> None:
        if self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")
        if not 0 < self.cube_half_size_m < 0.035:
            raise ValueError(f"cube_half_size_m must be in (0, 0.035) to fit the 8 cm gripper, got {self.cube_half_size_m}")
        if self.lift_height_m <= 0:
            raise ValueError(f"lift_height_m must be positive, got {self.lift_height_m}")


class PickCube(ArmTask):
    """Backend-agnostic pick-cube task for any :class:`ArmBackend`.

    The state observation holds the cube's pose, which only a simulator (or an external tracker)
    knows; the ``pixels`` observation holds proprioception only and lets the images show the cube.
    Resets start at the arm's ready pose (``spec.home_joint_pos_rad``) and settle at a random TCP
    target.
    """

    name = "pick_cube"

    def __init__(self, config: PickCubeConfig | None = None) -> None:
        self.config = config or PickCubeConfig()
        self.max_episode_steps = self.config.max_episode_steps
        self.actions = self.config.actions
        half = self.config.cube_half_size_m
        self.objects = (ObjectSpec("cube", (half, half, half), mass_kg=self.config.cube_mass_kg),)

    # ------------------------------------------------------------------ spaces
    def state_layout(self, spec: ArmSpec, obs_mode: str) -> dict[str, int]:
        layout = {"tcp_pos_m": 3, "tcp_linvel_m_s": 3, "gripper_width_m": 1}
        if obs_mode == "state":
            layout.update({"cube_pos_m": 3, "cube_minus_tcp_m": 3})
        return layout

    # ------------------------------------------------------------------ episode
    def reset(self, backend: ArmBackend, rng: np.random.Generator) -> ArmState:
        cfg = self.config
        start = ArmTarget(
            tcp_pos_m=rng.uniform(cfg.start_low_m, cfg.start_high_m),
            tcp_quat_wxyz=np.asarray(TOP_DOWN_QUAT_WXYZ, dtype=np.float64),
            gripper_width_m=backend.spec.gripper_max_width_m,
        )
        xy = rng.uniform(cfg.cube_low_m, cfg.cube_high_m)
        yaw = rng.uniform(-cfg.cube_max_yaw_rad, cfg.cube_max_yaw_rad)
        if backend.spec.home_joint_pos_rad is None:
            raise ValueError(f"pick_cube resets from the arm's ready pose; {type(backend).__name__}'s spec has no home_joint_pos_rad")
        state = backend.reset(np.asarray(backend.spec.home_joint_pos_rad, dtype=np.float64), start)
        if isinstance(backend, SceneControl):  # on a robot, the person places the cube
            quat = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
            backend.set_object_pose("cube", np.array([xy[0], xy[1], cfg.cube_half_size_m]), quat)
            state = backend.read_state()
        return state

    def observe(self, state: ArmState, obs_mode: str) -> np.ndarray:
        parts = [state.tcp_pos_m, state.tcp_linvel_m_s, [state.gripper_width_m]]
        if obs_mode == "state":
            cube = self._cube_pos(state)
            parts += [cube, cube - state.tcp_pos_m]
        return np.concatenate(parts).astype(np.float32)

    def _cube_pos(self, state: ArmState) -> np.ndarray:
        if "cube" not in state.objects:
            raise RuntimeError(
                "pick_cube's state observation and reward need the cube pose, which this backend does "
                "not report; on a real robot use obs='pixels' with a reward classifier"
            )
        return state.objects["cube"][:3]

    def _lift_m(self, state: ArmState) -> float:
        return float(self._cube_pos(state)[2] - self.config.cube_half_size_m)

    def _grasped(self, state: ArmState) -> bool:
        """The cube sits between fingers closed on it (not open, not closed on nothing)."""
        cube = self._cube_pos(state)
        edge = 2 * self.config.cube_half_size_m
        # Fingers touch a yawed cube anywhere between its edge and its diagonal.
        closed_on_cube = 0.5 * edge < state.gripper_width_m < edge * np.sqrt(2.0) + 0.004
        return bool(closed_on_cube and np.linalg.norm(cube - state.tcp_pos_m) < 0.03)

    def success(self, state: ArmState) -> bool:
        return self._lift_m(state) >= self.config.lift_height_m and self._grasped(state)

    def terminated(self, state: ArmState) -> bool:
        cube = self._cube_pos(state)
        fell_off = cube[2] < -0.05 or abs(cube[1]) > 0.8 or not 0.0 < cube[0] < 1.2
        return (self.config.terminate_on_success and self.success(state)) or bool(fell_off)

    def reward(self, state: ArmState) -> float:
        if self.success(state):
            return 1.0
        if not self.config.dense_reward:
            return 0.0
        reach = 1.0 - np.tanh(10.0 * np.linalg.norm(self._cube_pos(state) - state.tcp_pos_m))
        lift = np.clip(self._lift_m(state) / self.config.lift_height_m, 0.0, 1.0) if self._grasped(state) else 0.0
        return float(0.25 * reach + 0.5 * lift)

    # ------------------------------------------------------------------ expert
    def expert(self, state: ArmState) -> np.ndarray:
        """Hover over the cube, descend, close, lift; a function of the current state only."""
        cube = self._cube_pos(state)
        tcp = state.tcp_pos_m
        half = self.config.cube_half_size_m
        xy_err = float(np.linalg.norm(cube[:2] - tcp[:2]))
        if self._grasped(state):
            goal, close = np.array([cube[0], cube[1], half + self.config.lift_height_m + 0.05]), True
        elif xy_err > 0.012:
            goal, close = np.array([cube[0], cube[1], max(cube[2] + 0.07, tcp[2])]), False
            if tcp[2] > cube[2] + 0.04:
                goal[2] = cube[2] + 0.07
        else:
            goal, close = cube.copy(), abs(tcp[2] - cube[2]) < 0.008
        delta = np.clip((goal - tcp) / self.config.actions.step_m, -1.0, 1.0)
        action = np.zeros(self.config.actions.dim, dtype=np.float32)
        action[:3] = delta
        action[-1] = -1.0 if close else 1.0
        return action


def make_task(**options) -> PickCube:
    """Registry entry point: options are :class:`PickCubeConfig` fields."""
    return PickCube(PickCubeConfig(**options))
