"""The simulated puck's physical model, shared by the MuJoCo backend and the JAX vector env.

One set of numbers (:class:`PuckPhysics`) and one integrator description, so the two simulators
agree: a point mass ``mass_kg`` on two slide joints (x, y) with viscous joint damping
``damping_n_s_m``, pushed by a force held over each control period, integrated at ``physics_hz``
with MuJoCo's default ``Euler`` integrator. MuJoCo's Euler treats joint damping implicitly, so one
physics step of length ``h`` is, per axis::

    acc = (force_n - damping * vel) / (mass + h * damping)
    vel <- vel + h * acc
    pos <- pos + h * vel          # semi-implicit: the new velocity moves the position

:func:`euler_step_arrays` writes that step once, over ``xp`` arrays. The MJCF (:func:`mjcf`) is
ours: a table plane, four low walls, the puck (no contact with the table, so no friction), a
goal marker (a mocap disc without contact) and a top-down camera ``top``; primitives only, no
shadows and no multisampling, so rendering is cheap (~500 frames/s at 64x64 on Mesa's llvmpipe).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from robot_rl.backends.base import CameraSpec
from sim.puck.contract import PuckSpec

CAMERAS = ("top",)
WALL_HEIGHT_M = 0.03
WALL_THICKNESS_M = 0.02
PUCK_HEIGHT_M = 0.01  # half height of the puck's cylinder
GOAL_MARKER_RADIUS_M = 0.02


@dataclasses.dataclass(frozen=True)
class PuckPhysics:
    """The simulated puck's physical parameters (both simulators' defaults).

    Attributes:
        physics_hz: integration rate (the timestep is ``1 / physics_hz``).
        mass_kg: puck mass.
        damping_n_s_m: viscous damping per axis [N s/m] (stop() relies on it: the puck comes to
            rest with time constant ``mass_kg / damping_n_s_m``).
        max_force_n: per-axis force limit.
        arena_half_size_m: inner half size of the walled square arena.
        puck_radius_m: puck radius.
    """

    physics_hz: float = 200.0
    mass_kg: float = 0.1
    damping_n_s_m: float = 0.4
    max_force_n: float = 1.0
    arena_half_size_m: float = 0.5
    puck_radius_m: float = 0.03

    def __post_init__(self) -> None:
        if not 20.0 <= self.physics_hz <= 10_000.0:
            raise ValueError(f"physics_hz must be in [20, 10000], got {self.physics_hz}")
        for name in ("mass_kg", "max_force_n", "arena_half_size_m", "puck_radius_m"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not (math.isfinite(self.damping_n_s_m) and self.damping_n_s_m >= 0):
            raise ValueError(f"damping_n_s_m must be a finite number >= 0, got {self.damping_n_s_m!r}")
        if self.puck_radius_m >= self.arena_half_size_m:
            raise ValueError(f"puck_radius_m {self.puck_radius_m} must be below arena_half_size_m {self.arena_half_size_m}")

    @property
    def timestep_s(self) -> float:
        return 1.0 / self.physics_hz

    def substeps(self, period_s: float) -> int:
        """Physics steps in one control period (at least one)."""
        return max(1, round(period_s * self.physics_hz))

    def spec(self, cameras: dict[str, CameraSpec] | None = None) -> PuckSpec:
        return PuckSpec(
            arena_half_size_m=self.arena_half_size_m,
            puck_radius_m=self.puck_radius_m,
            max_force_n=self.max_force_n,
            mass_kg=self.mass_kg,
            cameras=cameras or {},
            render_cameras=CAMERAS,
        )


def euler_step_arrays(pos_m: Any, vel_m_s: Any, force_n: Any, mass_kg: Any, damping_n_s_m: Any, dt_s: float,
                      xp: Any) -> tuple[Any, Any]:
    """One MuJoCo-Euler step (implicit damping, semi-implicit position) of ``(..., 2)`` arrays.

    ``mass_kg`` and ``damping_n_s_m`` broadcast against the arrays (scalars, or ``(..., 1)`` for
    per-env values). No walls here: see the JAX env for its wall rule.
    """
    acc = (force_n - damping_n_s_m * vel_m_s) / (mass_kg + dt_s * damping_n_s_m)
    vel = vel_m_s + dt_s * acc
    return pos_m + dt_s * vel, vel


def mjcf(physics: PuckPhysics, image_height: int, image_width: int) -> str:
    """Our MJCF of the puck scene for ``physics`` (offscreen buffer large enough for the images)."""
    half, wall_half = physics.arena_half_size_m, WALL_THICKNESS_M / 2
    span = half + wall_half
    fovy_deg = 45.0
    camera_z = 1.05 * (half + WALL_THICKNESS_M) / math.tan(math.radians(fovy_deg / 2))
    walls = "\n".join(
        f'    <geom name="wall_{name}" type="box" pos="{x} {y} {WALL_HEIGHT_M / 2}" '
        f'size="{sx} {sy} {WALL_HEIGHT_M / 2}" rgba="0.35 0.35 0.4 1"/>'
        for name, x, y, sx, sy in (
            ("front", span, 0, wall_half, span + wall_half), ("back", -span, 0, wall_half, span + wall_half),
            ("left", 0, span, span + wall_half, wall_half), ("right", 0, -span, span + wall_half, wall_half),
        )
    )
    return f"""
<mujoco model="puck">
  <option timestep="{physics.timestep_s!r}" integrator="Euler"/>
  <visual>
    <global offwidth="{max(640, image_width)}" offheight="{max(480, image_height)}"/>
    <quality shadowsize="0" offsamples="0"/>  <!-- no shadows, no multisampling: 3x faster on llvmpipe -->
    <headlight ambient="0.35 0.35 0.35" diffuse="0.3 0.3 0.3" specular="0 0 0"/>
  </visual>
  <worldbody>
    <light name="sun" pos="0 0 2" dir="0 0 -1" directional="true" castshadow="false" diffuse="0.35 0.35 0.35" specular="0 0 0"/>
    <camera name="top" pos="0 0 {camera_z:.4f}" xyaxes="0 -1 0 1 0 0" fovy="{fovy_deg}"/>
    <geom name="table" type="plane" size="{span + WALL_THICKNESS_M} {span + WALL_THICKNESS_M} 0.01"
          rgba="0.85 0.85 0.8 1" contype="0" conaffinity="0"/>
{walls}
    <body name="goal" mocap="true" pos="0 0 0.0005">
      <geom name="goal" type="cylinder" size="{GOAL_MARKER_RADIUS_M} 0.0005" rgba="0.1 0.75 0.2 1"
            contype="0" conaffinity="0"/>
    </body>
    <body name="puck" pos="0 0 {PUCK_HEIGHT_M + 0.002}">
      <joint name="x" type="slide" axis="1 0 0" damping="{physics.damping_n_s_m!r}"/>
      <joint name="y" type="slide" axis="0 1 0" damping="{physics.damping_n_s_m!r}"/>
      <geom name="puck" type="cylinder" size="{physics.puck_radius_m!r} {PUCK_HEIGHT_M}" rgba="0.8 0.15 0.15 1"
            mass="{physics.mass_kg!r}"/>
    </body>
  </worldbody>
  <actuator>
    <motor name="fx" joint="x" ctrlrange="{-physics.max_force_n!r} {physics.max_force_n!r}"/>
    <motor name="fy" joint="y" ctrlrange="{-physics.max_force_n!r} {physics.max_force_n!r}"/>
  </actuator>
</mujoco>
"""


def wall_arrays(pos_m: Any, vel_m_s: Any, reach_m: float, xp: Any) -> tuple[Any, Any]:
    """The JAX sim's walls on ``(..., 2)`` arrays: clip the centre to ``+-reach_m`` per axis and
    zero the velocity component that points out of the arena there (a perfectly inelastic,
    frictionless wall; MuJoCo's soft contacts differ slightly, so trajectories agree only while
    no wall is touched)."""
    outward = ((pos_m >= reach_m) & (vel_m_s > 0)) | ((pos_m <= -reach_m) & (vel_m_s < 0))
    return xp.clip(pos_m, -reach_m, reach_m), xp.where(outward, 0.0, vel_m_s)
