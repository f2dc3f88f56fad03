"""Our MJCF of the 1/10 car on a walled track (primitives only, built from :mod:`sim.car.params`).

The car: a free-floating chassis (its frame at the rear axle centre, body FLU; an explicit
inertial gives the whole car the published mass, yaw inertia and centre-of-gravity position),
four wheels on hinges (a sphere touches the ground, a cylinder is drawn) (torque-driven, 4WD), the front two on steering knuckles driven by
stiff position servos with Ackermann angles. Tyre-road friction is the published ``mu``
(MuJoCo takes the larger friction of two touching geoms; floor and tyres both carry ``mu``).
Sensors at the rear axle: velocimeter, gyro, accelerometer (the contract's body-frame readings).

The scene: a floor, the track's walls (one box per wall segment, inner faces at the track's
half-width), a start line (visual only), a light, and cameras ``front`` (on the car, forward,
pitched down 20 degrees: pixel policies), ``chase`` (behind the car) and ``top`` (whole track).
Floor and wall materials come in several textures each (checker, noise, gradient); the backend
switches between them and tints them and the light at run time (visual randomization) without
recompiling. No shadows, no multisampling: cheap offscreen rendering.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from sim.car.params import CarPhysics
from sim.car.track import Track

CAMERAS = ("front", "chase", "top")
WHEELS = ("rl", "rr", "fl", "fr")
FLOOR_MATERIALS = ("floor_checker", "floor_noise", "floor_gradient")
WALL_MATERIALS = ("wall_flat", "wall_checker", "wall_noise")
WHEEL_MASS_KG = 0.06
WHEEL_HALF_WIDTH_M = 0.02
KNUCKLE_MASS_KG = 0.02
# Contact groups: the car's geoms touch the scene's (floor, walls), never each other.
CAR_CONTACT = 'contype="2" conaffinity="1"'
SCENE_CONTACT = 'contype="1" conaffinity="2"'
STEER_KP_NM_RAD = 50.0
WALL_SEGMENT_M = 0.4
FRONT_CAMERA_PITCH_DEG = 20.0


def _chassis_inertial(p: CarPhysics) -> str:
    """The chassis' inertial so that the whole car has ``p``'s mass, yaw inertia and CoG (rear-axle frame)."""
    wheel_x = np.array([0.0, 0.0, p.wheelbase_m, p.wheelbase_m])
    wheel_y = np.array([1, -1, 1, -1]) * p.track_width_m / 2
    wheel_m = np.array([WHEEL_MASS_KG, WHEEL_MASS_KG, WHEEL_MASS_KG + KNUCKLE_MASS_KG, WHEEL_MASS_KG + KNUCKLE_MASS_KG])
    mass = p.mass_kg - wheel_m.sum()
    x = (p.mass_kg * p.cog_to_rear_m - np.sum(wheel_m * wheel_x)) / mass
    z = (p.mass_kg * (p.cog_height_m - p.wheel_radius_m)) / mass  # the wheels sit at axle height (z = 0)
    # yaw inertia about the car's CoG: chassis about its own centre + its offset + the wheels' point masses
    wheels_izz = np.sum(wheel_m * ((wheel_x - p.cog_to_rear_m) ** 2 + wheel_y**2))
    izz = p.yaw_inertia_kg_m2 - wheels_izz - mass * (x - p.cog_to_rear_m) ** 2
    if izz <= 0:
        raise ValueError(f"yaw_inertia_kg_m2 {p.yaw_inertia_kg_m2} is too small for the wheels' share ({wheels_izz:.4f})")
    return (f'<inertial pos="{x:.5f} 0 {z:.5f}" mass="{mass:.5f}" '
            f'diaginertia="{0.4 * izz:.6f} {0.8 * izz:.6f} {izz:.6f}"/>')


def _wheel(name: str, p: CarPhysics) -> str:
    """A wheel: a sphere touches the ground (one contact point, so no scrubbing torque between
    two rim contacts), a cylinder shows the tyre; the joint's armature tops the sphere's inertia up
    to ``wheel_inertia_kg_m2``."""
    armature = p.wheel_inertia_kg_m2 - 0.4 * WHEEL_MASS_KG * p.wheel_radius_m**2
    if armature < 0:
        raise ValueError(f"wheel_inertia_kg_m2 must be >= {0.4 * WHEEL_MASS_KG * p.wheel_radius_m**2:.2e} "
                         f"(the wheel's own), got {p.wheel_inertia_kg_m2}")
    return (f'<joint name="wheel_{name}" type="hinge" axis="0 1 0" armature="{armature:.6g}" damping="0.00001"/>\n'
            f'        <geom name="wheel_{name}" type="sphere" size="{p.wheel_radius_m}" mass="{WHEEL_MASS_KG}" '
            f'friction="{p.friction} 0.005 0.0001" condim="3" rgba="0 0 0 0" {CAR_CONTACT}/>\n'
            f'        <geom name="tyre_{name}" type="cylinder" size="{p.wheel_radius_m} {WHEEL_HALF_WIDTH_M}" '
            f'zaxis="0 1 0" mass="0" contype="0" conaffinity="0" material="tyre"/>')


def _car(p: CarPhysics) -> str:
    half_w, lim = p.track_width_m / 2, p.max_steering_rad * 1.5
    centre = p.body_centre_from_rear_axle_m
    pitch = math.radians(FRONT_CAMERA_PITCH_DEG)
    front_cam = f'{math.sin(pitch):.4f} 0 {math.cos(pitch):.4f}'
    rear = "\n".join(f'      <body name="wheel_{n}" pos="0 {s * half_w} 0">\n        {_wheel(n, p)}\n      </body>'
                     for n, s in (("rl", 1), ("rr", -1)))
    front = "\n".join(
        f'      <body name="knuckle_{n}" pos="{p.wheelbase_m} {s * half_w} 0">\n'
        f'        <joint name="steer_{n}" type="hinge" axis="0 0 1" range="{-lim} {lim}" armature="0.001"/>\n'
        f'        <inertial pos="0 0 0" mass="{KNUCKLE_MASS_KG}" diaginertia="1e-5 1e-5 1e-5"/>\n'
        f'        <body name="wheel_{n}">\n        {_wheel(n, p)}\n        </body>\n      </body>'
        for n, s in (("fl", 1), ("fr", -1)))
    return f"""
    <body name="car" pos="0 0 {p.wheel_radius_m}">
      <freejoint name="car"/>
      {_chassis_inertial(p)}
      <site name="rear_axle" pos="0 0 0" size="0.01"/>
      <geom name="chassis" type="box" pos="{centre:.4f} 0 0.04" size="{p.body_length_m / 2:.4f} 0.075 0.035"
            material="body" mass="0" {CAR_CONTACT}/>
      <geom name="roof" type="box" pos="{centre - 0.05:.4f} 0 0.09" size="0.12 0.07 0.02" material="roof" mass="0"
            contype="0" conaffinity="0"/>
      <camera name="front" pos="{p.wheelbase_m + 0.05:.4f} 0 0.15" xyaxes="0 -1 0 {front_cam}" fovy="90"/>
      <camera name="chase" pos="-0.9 0 0.55" xyaxes="0 -1 0 0.5 0 0.866" fovy="60"/>
{rear}
{front}
    </body>"""


def _walls(track: Track, height_m: float) -> str:
    boxes = []
    for side in ("left", "right"):
        polyline = track.wall_m(side, offset_m=track.wall_thickness_m / 2)
        stride = max(1, round(WALL_SEGMENT_M / track.spacing_m))
        corners = np.vstack([polyline[::stride], polyline[:1]])
        for k, (a, b) in enumerate(itertools.pairwise(corners)):
            mid, delta = (a + b) / 2, b - a
            half_len = np.linalg.norm(delta) / 2 + track.wall_thickness_m / 2  # overlap: no gaps at the joints
            yaw = math.atan2(delta[1], delta[0])
            boxes.append(f'    <geom name="wall_{side}_{k}" type="box" pos="{mid[0]:.4f} {mid[1]:.4f} {height_m / 2}" '
                         f'size="{half_len:.4f} {track.wall_thickness_m / 2} {height_m / 2}" euler="0 0 {yaw:.5f}" '
                         f'material="wall_flat" friction="0.3 0.005 0.0001" {SCENE_CONTACT}/>')
    return "\n".join(boxes)


def _start_line(track: Track) -> str:
    x, y = track.points_m[0]
    yaw = math.atan2(track.tangents[0][1], track.tangents[0][0])
    return (f'    <geom name="start_line" type="box" pos="{x:.4f} {y:.4f} 0.0005" size="0.04 {track.half_width_m} 0.0005" '
            f'euler="0 0 {yaw:.5f}" rgba="1 1 1 1" contype="0" conaffinity="0"/>')


def _assets(rng: np.random.Generator) -> str:
    def colour() -> str:
        return " ".join(f"{c:.2f}" for c in rng.uniform(0.15, 0.85, 3))

    return f"""
    <texture name="sky" type="skybox" builtin="gradient" rgb1="0.6 0.7 0.9" rgb2="0.2 0.25 0.35" width="64" height="64"/>
    <texture name="floor_checker" type="2d" builtin="checker" rgb1="{colour()}" rgb2="{colour()}" width="128" height="128"/>
    <texture name="floor_noise" type="2d" builtin="flat" rgb1="{colour()}" mark="random" random="0.2" markrgb="{colour()}" width="128" height="128"/>
    <texture name="floor_gradient" type="2d" builtin="gradient" rgb1="{colour()}" rgb2="{colour()}" width="128" height="128"/>
    <texture name="wall_checker" type="2d" builtin="checker" rgb1="{colour()}" rgb2="{colour()}" width="64" height="64"/>
    <texture name="wall_noise" type="2d" builtin="flat" rgb1="{colour()}" mark="random" random="0.3" markrgb="{colour()}" width="64" height="64"/>
    <material name="floor_checker" texture="floor_checker" texrepeat="12 12"/>
    <material name="floor_noise" texture="floor_noise" texrepeat="6 6"/>
    <material name="floor_gradient" texture="floor_gradient" texrepeat="2 2"/>
    <material name="wall_flat" rgba="0.85 0.3 0.2 1"/>
    <material name="wall_checker" texture="wall_checker" texrepeat="2 1"/>
    <material name="wall_noise" texture="wall_noise" texrepeat="2 1"/>
    <material name="body" rgba="0.1 0.3 0.8 1"/>
    <material name="roof" rgba="0.9 0.9 0.9 1"/>
    <material name="tyre" rgba="0.08 0.08 0.08 1"/>"""


def mjcf(physics: CarPhysics, track: Track, physics_hz: float, wall_height_m: float, image_size: tuple[int, int],
         visual_seed: int = 0) -> str:
    """The scene's MJCF: ``physics``'s car on ``track`` (``visual_seed`` picks the texture colours)."""
    extent = float(np.max(np.abs(track.points_m))) + track.half_width_m + 1.0
    top_z = 1.1 * extent / math.tan(math.radians(30))
    steer_range = physics.max_steering_rad * 1.5
    servos = "\n".join(f'    <position name="steer_{n}" joint="steer_{n}" kp="{STEER_KP_NM_RAD}" dampratio="1" '
                       f'ctrlrange="{-steer_range} {steer_range}"/>' for n in ("fl", "fr"))
    motors = "\n".join(f'    <motor name="drive_{n}" joint="wheel_{n}" gear="1"/>' for n in WHEELS)
    return f"""
<mujoco model="car_on_track">
  <compiler angle="radian"/>
  <option timestep="{1.0 / physics_hz!r}" integrator="implicitfast"/>
  <visual>
    <global offwidth="{max(640, image_size[1])}" offheight="{max(480, image_size[0])}"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.4 0.4 0.4" diffuse="0.4 0.4 0.4" specular="0 0 0"/>
  </visual>
  <asset>{_assets(np.random.default_rng(visual_seed))}
  </asset>
  <worldbody>
    <light name="sun" pos="0 0 10" dir="0 0 -1" directional="true" castshadow="false" diffuse="0.5 0.5 0.5" specular="0 0 0"/>
    <camera name="top" pos="0 0 {top_z:.3f}" xyaxes="1 0 0 0 1 0" fovy="60"/>
    <geom name="floor" type="plane" size="{extent:.3f} {extent:.3f} 0.05" material="floor_checker"
          friction="{physics.friction} 0.005 0.0001" {SCENE_CONTACT}/>
{_start_line(track)}
{_walls(track, wall_height_m)}
{_car(physics)}
  </worldbody>
  <actuator>
{servos}
{motors}
  </actuator>
  <sensor>
    <velocimeter name="vel" site="rear_axle"/>
    <gyro name="gyro" site="rear_axle"/>
    <accelerometer name="accel" site="rear_axle"/>
  </sensor>
</mujoco>
"""
