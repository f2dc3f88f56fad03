"""MuJoCo implementation of the :class:`~sim.puck.contract.PuckBackend` contract.

The scene is :func:`sim.puck.model.mjcf`: two motors push the puck along its x and y slide
joints. ``command()`` clips the force (:func:`~sim.puck.contract.clip_command`) and holds it in
``ctrl``; ``sync(period_s)`` advances physics; ``set_goal_marker`` moves the task's goal disc so
a pixel policy can see it.
"""

from __future__ import annotations

import dataclasses
import os

import mujoco
import numpy as np

from robot_rl.backends.base import CameraSpec, ConnectOnEnter
from sim.puck.contract import PuckCommand, PuckSpec, PuckState, clip_command
from sim.puck.model import CAMERAS, PuckPhysics, mjcf


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


class MujocoPuck(ConnectOnEnter):
    """The simulated puck. Nothing happens in ``__init__``; ``connect()`` compiles the model."""

    family = "puck"

    def __init__(self, config: MujocoPuckConfig | None = None) -> None:
        self.config = config or MujocoPuckConfig()
        cameras = {c: CameraSpec(c, self.config.image_height, self.config.image_width) for c in self.config.cameras}
        self._spec = self.config.spec(cameras)
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}

    # ------------------------------------------------------------------ lifecycle
    @property
    def spec(self) -> PuckSpec:
        return self._spec

    @property
    def connected(self) -> bool:
        return self.data is not None

    def connect(self) -> None:
        if self.connected:
            return
        self.model = mujoco.MjModel.from_xml_string(mjcf(self.config, self.config.image_height, self.config.image_width))
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._qpos = [m.jnt_qposadr[m.joint(j).id] for j in ("x", "y")]
        self._qvel = [m.jnt_dofadr[m.joint(j).id] for j in ("x", "y")]
        self._ctrl = [m.actuator(a).id for a in ("fx", "fy")]
        self._goal_mocap = m.body_mocapid[m.body("goal").id]
        mujoco.mj_forward(m, self.data)

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        self.model = self.data = None

    def _require(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        if self.data is None:
            raise RuntimeError("MujocoPuck is not connected: call connect() or use it in a `with` block")
        return self.model, self.data

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

    # ------------------------------------------------------------------ cameras
    def render(self, camera: str, height: int | None = None, width: int | None = None) -> np.ndarray:
        """RGB ``uint8 (H, W, 3)`` image of ``camera`` (default size from the config)."""
        m, d = self._require()
        if camera not in CAMERAS:
            raise KeyError(f"unknown camera {camera!r}; the sim puck has {list(CAMERAS)}")
        size = (height or self.config.image_height, width or self.config.image_width)
        renderer = self._renderers.get(size)
        if renderer is None:
            try:
                renderer = self._renderers[size] = mujoco.Renderer(m, *size)
            except mujoco.FatalError as err:
                raise RuntimeError(
                    f"MuJoCo could not render offscreen (MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}): {err}. "
                    "Set MUJOCO_GL=egl (needs libegl1 + Mesa) or MUJOCO_GL=osmesa (needs libosmesa6) "
                    "before mujoco is first imported."
                ) from err
        renderer.update_scene(d, camera=camera)
        return renderer.render()


def make_backend(task, obs: str, **options) -> MujocoPuck:
    """Registry entry point: the sim puck. Options are :class:`MujocoPuckConfig` fields; with
    ``obs="state"`` no camera is rendered per step unless ``cameras`` is given (``render()`` still
    films any camera)."""
    config = MujocoPuckConfig(**options)
    if obs == "state" and "cameras" not in options:
        config = dataclasses.replace(config, cameras=())
    return MujocoPuck(config)
