"""The simulated 1/10-scale car's numbers, shared by the MuJoCo car and the JAX single-track model.

Published F1TENTH-class parameters (a Traxxas Slash 4x4 based F1TENTH car), as the F1TENTH Gym
(github.com/f1tenth/f1tenth_gym, ``F110Env``'s default ``params``) ships them; they follow the
CommonRoad single-track model (M. Althoff, M. Koschi, S. Manzinger, "CommonRoad: Composable
benchmarks for motion planning on roads", IEEE IV 2017, and its "Vehicle Models" documentation):

====================================  ==========  =========================================
quantity                              value       F1TENTH Gym name
====================================  ==========  =========================================
mass                                  3.74 kg     ``m``
yaw moment of inertia                 0.04712     ``I`` [kg m^2]
centre of gravity to front axle       0.15875 m   ``lf``
centre of gravity to rear axle        0.17145 m   ``lr``
centre of gravity height              0.074 m     ``h``
tyre-road friction coefficient        1.0489      ``mu``
cornering stiffness coeff., front     4.718       ``C_Sf`` [1/rad, per unit of axle load]
cornering stiffness coeff., rear      5.4562      ``C_Sr``
steering angle limit                  0.4189 rad  ``s_min``/``s_max``
steering rate limit                   3.2 rad/s   ``sv_min``/``sv_max``
maximum acceleration                  9.51 m/s^2  ``a_max``
body length x width                   0.58 x 0.31 ``length``/``width`` [m]
====================================  ==========  =========================================

Our own assumptions (not in those parameters): wheel radius 0.05 m, track width 0.27 m and
wheel inertia 1.1e-4 kg m^2 (1/10 short-course class), a DC-motor drive (force falling linearly with wheel speed to zero at
``free_speed_m_s``), 4WD with the drive force split evenly front/rear, and the speed limits below
(indoor tracks, not the Gym's 20 m/s).
"""

from __future__ import annotations

import dataclasses
import math

from robot_rl.backends.base import CameraSpec
from robot_rl.backends.car import CAR_COMMAND_MODES, CarSpec

GRAVITY_M_S2 = 9.81


@dataclasses.dataclass(frozen=True)
class CarPhysics:
    """The car's physical parameters (both simulators' defaults; module docstring for sources).

    Attributes:
        mass_kg, yaw_inertia_kg_m2: whole car.
        cog_to_front_m, cog_to_rear_m: centre of gravity to the axles (wheelbase = their sum).
        cog_height_m: centre of gravity above the ground.
        friction: tyre-road friction coefficient.
        cornering_front_per_rad, cornering_rear_per_rad: cornering stiffness per unit axle load.
        track_width_m, wheel_radius_m: wheel centre distance left-right, and wheel radius.
        wheel_inertia_kg_m2: each wheel's (with its share of the drivetrain) inertia about its axle:
            the four add ``4 J / r^2`` of mass to every forward acceleration.
        body_length_m, body_width_m: footprint (wheels included); the rear axle is
            ``rear_overhang_m`` ahead of the rear bumper.
        max_steering_rad, max_steering_rate_rad_s: front-wheel (bicycle) angle and servo slew limits.
        max_accel_m_s2: stall drive force is ``mass_kg * max_accel_m_s2`` (full throttle at rest).
        free_speed_m_s: wheel speed at which full throttle gives no more force (motor back-EMF).
        speed_gain_per_m_s: the speed controller's proportional gain (throttle per m/s of error).
        max_speed_m_s, max_reverse_speed_m_s: the spec's speed limits (safety clip).
        max_throttle_rate_per_s: the spec's throttle slew limit.
        steering_delay_s: a new steering command reaches the servo this long after it is sent
            (rounded to whole low-level steps; 0 = none).
        low_level_hz: rate of the ESC (speed controller, motor) and servo loop, in both simulators
            (the JAX model's integration rate too).
    """

    mass_kg: float = 3.74
    yaw_inertia_kg_m2: float = 0.04712
    cog_to_front_m: float = 0.15875
    cog_to_rear_m: float = 0.17145
    cog_height_m: float = 0.074
    friction: float = 1.0489
    cornering_front_per_rad: float = 4.718
    cornering_rear_per_rad: float = 5.4562
    track_width_m: float = 0.27
    wheel_radius_m: float = 0.05
    wheel_inertia_kg_m2: float = 1.1e-4
    body_length_m: float = 0.58
    body_width_m: float = 0.31
    rear_overhang_m: float = 0.12
    max_steering_rad: float = 0.4189
    max_steering_rate_rad_s: float = 3.2
    max_accel_m_s2: float = 9.51
    free_speed_m_s: float = 10.0
    speed_gain_per_m_s: float = 1.0
    max_speed_m_s: float = 5.0
    max_reverse_speed_m_s: float = 1.5
    max_throttle_rate_per_s: float = 10.0
    steering_delay_s: float = 0.0
    low_level_hz: float = 100.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(CarPhysics):
            value = getattr(self, field.name)
            low_ok = value >= 0 if field.name in ("steering_delay_s", "max_reverse_speed_m_s") else value > 0
            if not (isinstance(value, (int, float)) and math.isfinite(value) and low_ok):
                raise ValueError(f"{type(self).__name__}.{field.name} must be a finite number "
                                 f"{'>=' if field.name in ('steering_delay_s', 'max_reverse_speed_m_s') else '>'} 0, "
                                 f"got {value!r}")
        if not self.max_steering_rad < math.pi / 2:
            raise ValueError(f"max_steering_rad must be below pi/2, got {self.max_steering_rad}")
        if self.rear_overhang_m >= self.body_length_m - self.wheelbase_m:
            raise ValueError(f"rear_overhang_m {self.rear_overhang_m} leaves no front overhang "
                             f"(body {self.body_length_m} m, wheelbase {self.wheelbase_m:.4f} m)")

    @property
    def wheelbase_m(self) -> float:
        return self.cog_to_front_m + self.cog_to_rear_m

    @property
    def rotating_mass_kg(self) -> float:
        """The wheels' inertia as mass on the forward motion, ``4 J / r^2``."""
        return 4 * self.wheel_inertia_kg_m2 / self.wheel_radius_m**2

    @property
    def max_drive_force_n(self) -> float:
        """Full-throttle force at rest (the motor's stall force at the ground)."""
        return self.mass_kg * self.max_accel_m_s2

    @property
    def body_centre_from_rear_axle_m(self) -> float:
        """Footprint centre ahead of the rear axle, body x."""
        return self.body_length_m / 2 - self.rear_overhang_m

    def spec(self, cameras: dict[str, CameraSpec] | None = None, render_cameras: tuple[str, ...] = ()) -> CarSpec:
        """The car contract's spec for these numbers (both command modes)."""
        return CarSpec(
            wheelbase_m=self.wheelbase_m,
            track_width_m=self.track_width_m,
            max_steering_rad=self.max_steering_rad,
            max_steering_rate_rad_s=self.max_steering_rate_rad_s,
            max_speed_m_s=self.max_speed_m_s,
            max_reverse_speed_m_s=self.max_reverse_speed_m_s,
            max_accel_m_s2=self.max_accel_m_s2,
            command_modes=CAR_COMMAND_MODES,
            cameras=cameras or {},
            render_cameras=render_cameras,
            max_throttle_rate_per_s=self.max_throttle_rate_per_s,
        )
