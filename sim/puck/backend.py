"""MuJoCo implementation of the :class:`~sim.puck.contract.PuckBackend` contract.

The scene is :func:`sim.puck.model.mjcf`: two motors push the puck along its x and y slide
joints. ``command()`` clips the force (:func:`~sim.puck.contract.clip_command`) and holds it in
``ctrl``; ``sync(period_s)`` advances physics; ``set_goal_marker`` moves the task's goal disc so
a pixel policy can see it.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from robot_rl.backends.base import CameraSpec
from sim.puck.contract import PuckCommand, PuckState, clip_command
from sim.puck.model import CAMERAS, PuckPhysics, mjcf
from sim.rendering import OffscreenCameras, observed_cameras
from sim.scene import MujocoScene


@dataclasses.dataclass(frozen=True)
class MujocoPuckConfig(PuckPhysics):
    """Simulated puck settings: the physics (:class:`~sim.puck.model.PuckPhysics` fields) plus
    the cameras.

    Attributes:
        cameras: cameras observed with ``obs="pixels"`` (subset of ``top``).
        image_height, image_width: camera image size in pixels.
    """

    cameras: tuple[str, ...] = CAMERAS
    image_height: int = 64
    image_width: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = set(self.cameras) - set(CAMERAS)
        if unknown:
            raise ValueError(f"unknown cameras {sorted(unknown)}; the sim puck has {list(CAMERAS)}")
        if self.image_height <= 0 or self.image_width <= 0:
            raise ValueError(f"image size must be positive, got {self.image_height}x{self.image_width}")


class MujocoPuck(MujocoScene):
    """The simulated puck. Nothing happens in ``__init__``; ``connect()`` compiles the model."""

    family = "puck"

    def __init__(self, config: MujocoPuckConfig | None = None) -> None:
        self.config = config or MujocoPuckConfig()
        cameras = {c: CameraSpec(c, self.config.image_height, self.config.image_width) for c in self.config.cameras}
        super().__init__(self.config.spec(cameras),
                         OffscreenCameras(CAMERAS, "the sim puck", (self.config.image_height, self.config.image_width)))

    # ------------------------------------------------------------------ lifecycle
    def _compile(self) -> mujoco.MjModel:
        return mujoco.MjModel.from_xml_string(mjcf(self.config, self.config.image_height, self.config.image_width))

    def _bind(self) -> None:
        m = self.model
        self._qpos = [m.jnt_qposadr[m.joint(j).id] for j in ("x", "y")]
        self._qvel = [m.jnt_dofadr[m.joint(j).id] for j in ("x", "y")]
        self._ctrl = [m.actuator(a).id for a in ("fx", "fy")]
        self._goal_mocap = m.body_mocapid[m.body("goal").id]
        mujoco.mj_forward(m, self.data)

    # ------------------------------------------------------------------ control
    def read_state(self) -> PuckState:
        _, d = self._require()
        return PuckState(time_s=float(d.time), pos_m=d.qpos[self._qpos], vel_m_s=d.qvel[self._qvel])

    def command(self, command: PuckCommand) -> PuckCommand:
        """Clip to the force limit, hold it until the next command, return what was applied."""
        _, d = self._require()
        executed = clip_command(command, self._spec)
        d.ctrl[self._ctrl] = executed.force_n
        return executed

    def stop(self) -> None:
        """Zero the force now; the joint damping then brings the puck to rest."""
        _, d = self._require()
        d.ctrl[self._ctrl] = 0.0

    def sync(self, period_s: float) -> None:
        """Advance physics by ``period_s`` (rounded to whole physics steps, at least one)."""
        m, d = self._require()
        mujoco.mj_step(m, d, nstep=self.config.substeps(period_s))
        if not np.all(np.isfinite(d.qpos)):
            raise FloatingPointError("puck simulation diverged (non-finite position)")

    def reset(self, pos_m: np.ndarray, vel_m_s: np.ndarray) -> PuckState:
        """Put the puck at ``pos_m`` (inside the walls, else ValueError) with ``vel_m_s``, force zero."""
        m, d = self._require()
        pos, vel = np.asarray(pos_m, dtype=np.float64), np.asarray(vel_m_s, dtype=np.float64)
        if pos.shape != (2,) or vel.shape != (2,) or not np.all(np.isfinite(np.concatenate([pos, vel]))):
            raise ValueError(f"reset needs finite pos_m (2,) and vel_m_s (2,), got {pos_m!r}, {vel_m_s!r}")
        if np.any(np.abs(pos) > self._spec.reach_m):
            raise ValueError(f"reset pos_m {pos.tolist()} is outside the walls: |x|, |y| must be <= {self._spec.reach_m} m")
        goal = d.mocap_pos[self._goal_mocap].copy()
        mujoco.mj_resetData(m, d)
        d.mocap_pos[self._goal_mocap] = goal
        d.qpos[self._qpos] = pos
        d.qvel[self._qvel] = vel
        mujoco.mj_forward(m, d)
        return self.read_state()

    def set_goal_marker(self, pos_m: np.ndarray) -> None:
        """Move the (contact-free) goal disc to ``pos_m`` ``(2,)``, table frame."""
        m, d = self._require()
        d.mocap_pos[self._goal_mocap, :2] = np.asarray(pos_m, dtype=np.float64)
        mujoco.mj_forward(m, d)


def make_backend(task, obs: str, **options) -> MujocoPuck:
    """Registry entry point: the sim puck. Options are :class:`MujocoPuckConfig` fields; with
    ``obs="state"`` no camera is rendered per step unless ``cameras`` is given (``render()`` still
    films any camera)."""
    return MujocoPuck(observed_cameras(MujocoPuckConfig(**options), obs, options))
