"""The simulated quadrotor's physical model, shared by the MuJoCo backend and the JAX vector env.

One set of numbers (:class:`QuadPhysics`) describes a Crazyflie 2.x-class X quadrotor:

* a rigid body (mass, diagonal inertia) on a free joint, gravity ``-9.80665`` m/s^2 along world z;
* four motors at ``arm_length_m`` on the body diagonals (motor order and spin directions of
  :mod:`drivers.quad.mixer`), each pushing along body +z with thrust ``T_i`` [N] and turning the body
  about z with ``+-yaw_torque_per_thrust_m * T_i`` [N m];
* a first-order motor model on each motor's thrust: ``dT_i/dt = (T_cmd_i - T_i) / motor_time_constant_s``,
  ``T_cmd_i = thrust_frac_i * max_thrust_per_motor_n``;
* linear drag ``-linear_drag_n_s_m * vel_m_s`` (world frame) on the body;
* RK4 integration at ``physics_hz`` (MuJoCo's ``RK4`` integrator; :mod:`sim.quad.dynamics` in JAX).

Parameters: one published set, **Förster 2015** (J. Förster, "System Identification of the
Crazyflie 2.0 Nano Quadrocopter", BSc thesis, ETH Zurich, 2015), for everything it identified:

* mass 0.027 kg; principal inertia diag(16.571710, 16.655602, 29.261652) e-6 kg m^2 (its off-diagonal
  terms, ~1e-6, are left out); arm length (centre to motor axis) 0.046 m;
* thrust per motor at full command: its PWM->thrust fit ``2.130295e-11 PWM^2 + 1.032633e-6 PWM
  + 5.484560e-4`` N at PWM 65535 = 0.1597 N (thrust-to-weight 2.41);
* yaw (propeller drag) torque per thrust: its fit ``tau = 0.005964552 T + 1.563383e-5`` -> 0.005964552 m
  (sources disagree by ~4x here: e.g. 0.0251 m from the ``CD/CT`` ratio used by gym-pybullet-drones;
  we keep Förster's measured value);
* linear drag 0.01 N s/m: the order of its rotor-drag matrix (~9.2e-7 kg/rad) times the sum of the four
  rotor speeds at hover (~9e3 rad/s), taken isotropic and constant.

Checked against independent public uses of the same identification (2026-12-06; the thesis itself
is not reachable from here): the Crazyflie firmware's Lee controller states the same principal
inertia and cites the thesis; its ``physical_constants.c`` has the same thrust fit normalized to a PWM
fraction (``0.091492681 u^2 + 0.067673604 u``: 2.130295e-11 * 65535^2 and 1.032633e-6 * 65535) and the
same 0.005964552 thrust-to-torque ratio and 0.046 m arm; controller code from several labs uses
the same three PWM coefficients. The mass is the bare vehicle's: others use 0.028 kg (Hamer's
"Crazyflie Modelling" note) or 0.029-0.034 kg with decks and markers; the JAX env randomizes it.

Förster gives no motor time constant; 0.15 s is the Crazyflie rotor time constant of Eschmann et al.,
"Learning to Fly in Seconds" (RA-L 2024), which also uses Förster's yaw coefficient (it is a time
constant of the rotor speed there; linearised, thrust lags with the same constant). The JAX env can
randomize all of these.

The MJCF (:func:`mjcf`) is ours and primitive-only: a box hull, capsule arms, cylinder motors and
(contact-free) propeller discs, the motors as filter actuators on sites (MuJoCo's first-order
actuator dynamics, ``dyntype="filter"``), a checker floor, a contact-free target marker and three
cameras: ``fpv`` (onboard, looking forward), ``chase`` (follows the vehicle) and ``overview``.
"""

from __future__ import annotations

import dataclasses
import math

from drivers.quad.mixer import MOTOR_YAW_SIGN, motor_positions_m
from robot_rl.backends.base import CameraSpec
from robot_rl.backends.quadrotor import (
    QUAD_COMMAND_LEVELS,
    STANDARD_GRAVITY_M_S2,
    QuadSpec,
)

CAMERAS = ("fpv", "chase", "overview")
HULL_HALF_SIZE_M = (0.016, 0.016, 0.006)
PROP_RADIUS_M = 0.0225
TARGET_MARKER_RADIUS_M = 0.03


def _positive(owner: object, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{type(owner).__name__}.{name} must be a finite number > 0, got {value!r}")


@dataclasses.dataclass(frozen=True)
class QuadPhysics:
    """The simulated quadrotor (both simulators' defaults; sources in the module docstring).

    Attributes:
        physics_hz: integration rate (RK4; the timestep is ``1 / physics_hz``).
        mass_kg, inertia_kg_m2, arm_length_m: the rigid body (inertia about body x, y, z, FLU).
        max_thrust_per_motor_n: one motor's thrust at full command.
        yaw_torque_per_thrust_m: propeller drag torque per newton of thrust.
        motor_time_constant_s: first-order lag of each motor's thrust (``0``: instantaneous).
        linear_drag_n_s_m: drag force per m/s of velocity, world frame.
        max_tilt_rad, max_body_rate_rad_s, max_speed_m_s: the spec's command limits.
        geofence_low_m, geofence_high_m: the spec's fence (world ENU); the floor is at z = 0.
    """

    physics_hz: float = 500.0
    mass_kg: float = 0.027
    inertia_kg_m2: tuple[float, float, float] = (16.571710e-6, 16.655602e-6, 29.261652e-6)
    arm_length_m: float = 0.046
    max_thrust_per_motor_n: float = 0.1597
    yaw_torque_per_thrust_m: float = 0.005964552
    motor_time_constant_s: float = 0.15
    linear_drag_n_s_m: float = 0.01
    max_tilt_rad: float = 0.7
    max_body_rate_rad_s: tuple[float, float, float] = (10.0, 10.0, 5.0)
    max_speed_m_s: float = 2.0
    geofence_low_m: tuple[float, float, float] = (-3.0, -3.0, 0.0)
    geofence_high_m: tuple[float, float, float] = (3.0, 3.0, 4.0)

    def __post_init__(self) -> None:
        if not 20.0 <= self.physics_hz <= 10_000.0:
            raise ValueError(f"physics_hz must be in [20, 10000], got {self.physics_hz}")
        _positive(self, "mass_kg", "arm_length_m", "max_thrust_per_motor_n", "yaw_torque_per_thrust_m")
        for name in ("motor_time_constant_s", "linear_drag_n_s_m"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{type(self).__name__}.{name} must be a finite number >= 0, got {value!r}")
        for name in ("inertia_kg_m2", "max_body_rate_rad_s", "geofence_low_m", "geofence_high_m"):
            value = tuple(float(v) for v in getattr(self, name))  # a JSON list from --env-kwargs -> hashable tuple
            if len(value) != 3:
                raise ValueError(f"{type(self).__name__}.{name} must have 3 values, got {value}")
            object.__setattr__(self, name, value)
        self.spec()  # QuadSpec checks the rest (tilt range, fence order, can it hover at all)

    @property
    def timestep_s(self) -> float:
        return 1.0 / self.physics_hz

    def substeps(self, period_s: float) -> int:
        """Physics steps in one control period (at least one)."""
        return max(1, round(period_s * self.physics_hz))

    @property
    def hover_thrust_frac(self) -> float:
        return self.mass_kg * STANDARD_GRAVITY_M_S2 / (4.0 * self.max_thrust_per_motor_n)

    def spec(self, cameras: dict[str, CameraSpec] | None = None) -> QuadSpec:
        return QuadSpec(mass_kg=self.mass_kg, arm_length_m=self.arm_length_m, inertia_kg_m2=self.inertia_kg_m2,
                        max_thrust_per_motor_n=self.max_thrust_per_motor_n,
                        motor_time_constant_s=self.motor_time_constant_s, command_levels=QUAD_COMMAND_LEVELS,
                        max_tilt_rad=self.max_tilt_rad, max_body_rate_rad_s=self.max_body_rate_rad_s,
                        max_speed_m_s=self.max_speed_m_s, geofence_low_m=self.geofence_low_m,
                        geofence_high_m=self.geofence_high_m, cameras=cameras or {}, render_cameras=CAMERAS)


def _motors(physics: QuadPhysics) -> tuple[str, str]:
    """The motor sites/geoms (inside the body) and the filter actuators."""
    tau = physics.motor_time_constant_s
    dynamics = f'dyntype="filter" dynprm="{tau!r}"' if tau > 0 else 'dyntype="none"'
    body, actuators = [], []
    for i, ((x, y, _), sign) in enumerate(zip(motor_positions_m(physics.arm_length_m).tolist(), MOTOR_YAW_SIGN)):
        body.append(
            f'      <geom name="arm{i}" type="capsule" fromto="0 0 0 {x!r} {y!r} 0" size="0.0025" rgba="0.15 0.15 0.18 1"/>\n'
            f'      <geom name="motor{i}" type="cylinder" pos="{x!r} {y!r} 0.002" size="0.0045 0.008" rgba="0.3 0.3 0.32 1"/>\n'
            f'      <geom name="prop{i}" type="cylinder" pos="{x!r} {y!r} 0.0115" size="{PROP_RADIUS_M} 0.0007" '
            f'rgba="{"0.9 0.3 0.2" if i in (0, 3) else "0.25 0.25 0.3"} 0.45" contype="0" conaffinity="0" mass="0"/>\n'
            f'      <site name="motor{i}" pos="{x!r} {y!r} 0"/>')
        actuators.append(
            f'    <general name="motor{i}" site="motor{i}" gear="0 0 1 0 0 {sign * physics.yaw_torque_per_thrust_m!r}" '
            f'ctrllimited="true" ctrlrange="0 1" {dynamics} gaintype="fixed" '
            f'gainprm="{physics.max_thrust_per_motor_n!r}" biastype="none"/>')
    return "\n".join(body), "\n".join(actuators)


def mjcf(physics: QuadPhysics, image_height: int, image_width: int) -> str:
    """Our MJCF of the quadrotor scene for ``physics`` (offscreen buffer large enough for the images)."""
    motors, actuators = _motors(physics)
    ixx, iyy, izz = physics.inertia_kg_m2
    hx, hy, hz = HULL_HALF_SIZE_M
    return f"""
<mujoco model="quadrotor">
  <option timestep="{physics.timestep_s!r}" integrator="RK4" gravity="0 0 {-STANDARD_GRAVITY_M_S2!r}"/>
  <visual>
    <global offwidth="{max(640, image_width)}" offheight="{max(480, image_height)}"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.4 0.4 0.4" diffuse="0.4 0.4 0.4" specular="0 0 0"/>
  </visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.3 0.34 0.38" rgb2="0.55 0.6 0.65" width="64" height="64"/>
    <material name="grid" texture="grid" texrepeat="12 12" texuniform="true"/>
  </asset>
  <worldbody>
    <light name="sun" pos="0 0 6" dir="0 0 -1" directional="true" castshadow="false" diffuse="0.4 0.4 0.4"/>
    <geom name="floor" type="plane" size="8 8 0.1" material="grid"/>
    <camera name="overview" pos="0 -5 2.5" xyaxes="1 0 0 0 0.196 0.981" fovy="60"/>
    <body name="target" mocap="true" pos="0 0 1.5">
      <geom name="target" type="sphere" size="{TARGET_MARKER_RADIUS_M}" rgba="0.1 0.8 0.2 0.7" contype="0" conaffinity="0"/>
    </body>
    <body name="quad" pos="0 0 {hz + 0.002}">
      <freejoint name="root"/>
      <inertial pos="0 0 0" mass="{physics.mass_kg!r}" diaginertia="{ixx!r} {iyy!r} {izz!r}"/>
      <geom name="hull" type="box" size="{hx} {hy} {hz}" rgba="0.2 0.2 0.25 1"/>
{motors}
      <camera name="fpv" pos="0.02 0 0.008" xyaxes="0 -1 0 0 0 1" fovy="90"/>
      <camera name="chase" mode="trackcom" pos="-0.8 0 0.4" xyaxes="0 -1 0 0.423 0 0.906" fovy="60"/>
    </body>
  </worldbody>
  <actuator>
{actuators}
  </actuator>
</mujoco>
"""
