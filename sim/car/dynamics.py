"""The car's low-level controllers and its single-track model, written once over ``xp`` arrays.

``xp`` is ``numpy`` (the MuJoCo backend runs the controllers every physics step, as a real car's
ESC and servo would) or ``jax.numpy`` (the batched JAX sim runs everything). Arrays carry any
leading batch shape; scalars broadcast. Units and frames: metres, seconds, radians, newtons;
"body" is FLU; ``steer_rad`` is the bicycle-model front-wheel angle (left positive).

Drive (both simulators): a speed controller turns a speed set-point into a throttle
(:func:`speed_controller_arrays`: feed-forward plus proportional, clipped to ``[-1, 1]``); a DC
motor turns throttle into a ground force that falls linearly with wheel speed
(:func:`motor_force_arrays`). The steering servo slews toward its target at the rate limit
(:func:`servo_arrays`).

Single-track (dynamic bicycle) model (:func:`bicycle_step_arrays`, the JAX sim only), in the
CommonRoad/F1TENTH form with our tyre and integrator:

* tyre: a saturating linear tyre per axle, lateral force ``Fy = -mu Fz tanh(C_S alpha)`` (slope
  ``mu Fz C_S``, the CommonRoad cornering stiffness, at small slip; saturating smoothly at the
  friction limit ``mu Fz``); static axle loads ``Fz``; the drive force is split evenly front/rear
  (4WD) and each axle's share limited to what the friction circle leaves beside its lateral force,
  ``sqrt((mu Fz)^2 - Fy^2)`` (lateral grip first: no power oversteer, no wheel spin modelled); the wheels' rotational inertia adds
  ``4 J / r^2`` to the mass the forward forces accelerate;
* slip: ``alpha = v_lateral_at_wheel / max(|vx|, v_floor)`` (the wheel-frame lateral slip
  velocity over the forward speed), so the model is defined through standstill and in reverse;
* integrator: the lateral velocity and yaw rate are stepped *linearly implicitly* (the tyre forces
  linearized at the step's start -- force and tangent stiffness --, then one 2x2 solve), the forward
  speed and pose semi-implicitly, so a 100 Hz step is stable down to standstill (an explicit step of
  this stiff model needs ~2 ms) and a saturated tyre stays at the friction limit.

State: rear-axle position ``pos_m (..., 2)`` and ``yaw_rad`` (world frame), forward speed ``vx``
(body x), lateral velocity of the *centre of gravity* ``vy_cog`` and yaw rate ``r``. The rear
axle's lateral velocity is ``vy_cog - lr * r``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sim.car.params import GRAVITY_M_S2, CarPhysics

SLIP_SPEED_FLOOR_M_S = 0.5


class Bicycle(NamedTuple):
    """The single-track model's state (any leading batch shape; see the module docstring)."""

    pos_m: Any
    yaw_rad: Any
    vx_m_s: Any
    vy_cog_m_s: Any
    yaw_rate_rad_s: Any


def speed_controller_arrays(speed_set_m_s: Any, wheel_speed_m_s: Any, free_speed_m_s: float, gain_per_m_s: float,
                            xp: Any) -> Any:
    """Throttle in ``[-1, 1]`` that drives the wheel speed to the set-point: feed-forward
    ``set / free_speed`` (the throttle that holds that speed) plus ``gain * error``."""
    error = speed_set_m_s - wheel_speed_m_s
    return xp.clip(speed_set_m_s / free_speed_m_s + gain_per_m_s * error, -1.0, 1.0)


def motor_force_arrays(throttle: Any, wheel_speed_m_s: Any, max_force_n: Any, free_speed_m_s: float, xp: Any) -> Any:
    """DC motor at the ground: ``max_force_n * (throttle - wheel_speed / free_speed)`` [N] (at throttle 0
    it brakes, as a shorted motor does)."""
    return max_force_n * (throttle - wheel_speed_m_s / free_speed_m_s)


def servo_arrays(steer_rad: Any, target_rad: Any, max_step_rad: float, xp: Any) -> Any:
    """The servo's angle after one step toward ``target_rad``, at most ``max_step_rad`` per step."""
    return steer_rad + xp.clip(target_rad - steer_rad, -max_step_rad, max_step_rad)


def ackermann_arrays(steer_rad: Any, wheelbase_m: float, track_width_m: float, xp: Any) -> tuple[Any, Any]:
    """Left and right front-wheel angles whose axes meet on the rear axle line (bicycle angle ``steer_rad``)."""
    tan = xp.tan(steer_rad)
    half = 0.5 * track_width_m * tan
    return xp.arctan(wheelbase_m * tan / (wheelbase_m - half)), xp.arctan(wheelbase_m * tan / (wheelbase_m + half))


def tyre_force_arrays(slip: Any, load_n: Any, friction: Any, cornering_per_rad: float, xp: Any) -> Any:
    """Lateral tyre force [N] for slip ``alpha``: ``-friction * load * tanh(cornering * alpha)``."""
    return -friction * load_n * xp.tanh(cornering_per_rad * slip)


def _linearized_tyre(slip: Any, grip_n: Any, cornering_per_rad: float, speed_m_s: Any, lateral_m_s: Any,
                     xp: Any) -> tuple[Any, Any, Any]:
    """An axle's lateral force ``-grip tanh(C_S slip)`` as ``offset - stiffness * lateral_m_s`` around the
    step's start (slip ``lateral_m_s / speed_m_s``), from the tangent there (a saturated tyre has
    stiffness ~0, so its force stays at the limit): ``(offset [N], stiffness [N s/m] >= 0, force [N])``."""
    tanh = xp.tanh(cornering_per_rad * slip)
    stiffness = grip_n * cornering_per_rad * (1.0 - tanh * tanh) / speed_m_s
    return -grip_n * tanh + stiffness * lateral_m_s, stiffness, -grip_n * tanh


def _traction(drive_n: Any, grip_n: Any, lateral_n: Any, xp: Any) -> Any:
    """The drive force the friction circle leaves beside the lateral force (lateral first)."""
    room = xp.sqrt(xp.maximum(grip_n * grip_n - lateral_n * lateral_n, 0.0))
    return xp.clip(drive_n, -room, room)


def bicycle_step_arrays(car: Bicycle, steer_rad: Any, drive_force_n: Any, mass_kg: Any, friction: Any,
                        physics: CarPhysics, dt_s: float, xp: Any) -> Bicycle:
    """One step of the single-track model (module docstring). ``drive_force_n`` is the motor's total
    force; ``mass_kg`` and ``friction`` may be per-env (domain randomization), the yaw inertia scales
    with the mass."""
    yaw, vx, vy, r = bicycle_motion_arrays(car.yaw_rad, car.vx_m_s, car.vy_cog_m_s, car.yaw_rate_rad_s,
                                           xp.cos(steer_rad), xp.sin(steer_rad), drive_force_n, mass_kg, friction,
                                           physics, dt_s, xp)
    step = xp.stack(rear_axle_velocity_arrays(xp.cos(yaw), xp.sin(yaw), vx, vy, r, physics), axis=-1)
    return Bicycle(car.pos_m + dt_s * step, yaw, vx, vy, r)


def rear_axle_velocity_arrays(cos_yaw: Any, sin_yaw: Any, vx_m_s: Any, vy_cog_m_s: Any, yaw_rate_rad_s: Any,
                              physics: CarPhysics) -> tuple[Any, Any]:
    """The rear axle's velocity in the world frame, ``(vx, vy)`` [m/s], of a car heading ``(cos_yaw, sin_yaw)``."""
    vy_rear = vy_cog_m_s - physics.cog_to_rear_m * yaw_rate_rad_s
    return cos_yaw * vx_m_s - sin_yaw * vy_rear, sin_yaw * vx_m_s + cos_yaw * vy_rear


def bicycle_motion_arrays(yaw_rad: Any, vx_m_s: Any, vy_cog_m_s: Any, yaw_rate_rad_s: Any, cos_steer: Any,
                          sin_steer: Any, drive_force_n: Any, mass_kg: Any, friction: Any, physics: CarPhysics,
                          dt_s: float, xp: Any) -> tuple[Any, Any, Any, Any]:
    """:func:`bicycle_step_arrays` without the position: the new ``(yaw_rad, vx_m_s, vy_cog_m_s,
    yaw_rate_rad_s)`` from the steering angle's cosine and sine. Apart so that a JAX loop can compute
    each cosine and sine once and carry it (XLA on a CPU recomputes them in every fused loop that reads
    them: 16 instead of 4 per substep, most of its time)."""
    lf, lr, g = physics.cog_to_front_m, physics.cog_to_rear_m, GRAVITY_M_S2
    inertia = physics.yaw_inertia_kg_m2 * mass_kg / physics.mass_kg
    load_front, load_rear = mass_kg * g * lr / (lf + lr), mass_kg * g * lf / (lf + lr)
    grip_front, grip_rear = friction * load_front, friction * load_rear
    vx, vy, r = vx_m_s, vy_cog_m_s, yaw_rate_rad_s
    c, s = cos_steer, sin_steer
    speed = xp.maximum(xp.abs(vx), SLIP_SPEED_FLOOR_M_S)
    lateral_front, lateral_rear = (vy + lf * r) * c - vx * s, vy - lr * r  # wheel-frame slip velocities
    bf, kf, side_front = _linearized_tyre(lateral_front / speed, grip_front, physics.cornering_front_per_rad, speed,
                                          lateral_front, xp)
    br, kr, side_rear = _linearized_tyre(lateral_rear / speed, grip_rear, physics.cornering_rear_per_rad, speed,
                                         lateral_rear, xp)
    drive_front = _traction(0.5 * drive_force_n, grip_front, side_front, xp)
    drive_rear = _traction(0.5 * drive_force_n, grip_rear, side_rear, xp)
    # lateral forces: front (bf - kf * lateral_front), rear (br - kr * lateral_rear); implicit in (vy, r)
    kfc = kf * c * c
    push = bf * c + kf * c * s * vx + drive_front * s  # front lateral force (body y) not depending on (vy, r)
    a11, a12 = -(kr + kfc) / mass_kg, (kr * lr - kfc * lf) / mass_kg - vx
    a21, a22 = (lr * kr - lf * kfc) / inertia, -(lf * lf * kfc + lr * lr * kr) / inertia
    m00, m01, m10, m11 = 1.0 - dt_s * a11, -dt_s * a12, -dt_s * a21, 1.0 - dt_s * a22
    rhs0, rhs1 = vy + dt_s * (br + push) / mass_kg, r + dt_s * (lf * push - lr * br) / inertia
    det = m00 * m11 - m01 * m10
    vy_new, r_new = (m11 * rhs0 - m01 * rhs1) / det, (m00 * rhs1 - m10 * rhs0) / det
    force_front = bf - kf * ((vy_new + lf * r_new) * c - vx * s)
    forward_mass = mass_kg + physics.rotating_mass_kg  # the spinning wheels resist forward acceleration too
    vx_new = vx + dt_s * ((drive_rear + drive_front * c - force_front * s) / forward_mass + vy_new * r_new)
    return yaw_rad + dt_s * r_new, vx_new, vy_new, r_new
