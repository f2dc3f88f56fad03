"""The quadrotor flight-control cascade, one array function per command level (``xp`` = numpy or
jax.numpy; features on the last axis, any leading batch shape).

Levels, as in :mod:`robot_rl.backends.quadrotor` (outer to inner)::

    position -> velocity target (world ENU)            position_to_velocity_arrays   (P, speed-limited)
    velocity -> attitude (collective, roll, pitch)     velocity_to_attitude_arrays   (P + gravity, tilt-limited)
    attitude -> body-rate targets (body FLU)           attitude_to_rates_arrays      (P on the tilt error)
    body rates -> body torque                          rate_pid_arrays               (PID, anti-windup)
    collective + torque -> motor thrusts               drivers.quad.mixer.mix_arrays (saturation handled)

The attitude loop works on the tilt error between body z and the commanded thrust direction (an
axis and ``2 tan(angle/2)``, not Euler-angle differences), so it recovers from any tilt, upside
down included; the velocity loop hands it a thrust direction, not Euler angles, so the hot path
(velocity -> motors) has no trigonometry at all. The
body-rate PID is the only stateful piece: its integral and the previous rates are passed in and
returned (``dt_s`` = its period); without them (``integral=None``) it is a P controller.

:class:`QuadController` binds a vehicle's numbers (from a :class:`~robot_rl.backends.quadrotor.QuadSpec`)
and :class:`QuadGains` once; it is hashable, so a jitted simulator can close over it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from drivers.quad.mixer import mix_arrays
from drivers.quad.rotations import (
    body_axes_arrays,
    body_z_arrays,
    cross3_arrays,
    dot3_arrays,
    wrap_angle_arrays,
    yaw_arrays,
)

GRAVITY_M_S2 = 9.80665  # the contract's STANDARD_GRAVITY_M_S2 (robot_rl.backends.quadrotor)


@dataclasses.dataclass(frozen=True)
class QuadGains:
    """Gains of the cascade (continuous-time, per second), tuned on :mod:`sim.quad.model`'s Crazyflie:
    from random starts tilted up to 90 deg it recovers without crashing for motor time constants
    from 0.03 to 0.25 s, with the rate loop at 100 or 500 Hz. The rate loop's derivative term is
    what makes the 0.15 s motor lag flyable.

    Attributes:
        position_p_per_s: velocity target [m/s] per metre of position error.
        max_speed_m_s: the position loop's speed limit.
        velocity_p_per_s: acceleration [m/s^2] per m/s of velocity error.
        attitude_p_per_s: body rate [rad/s] per radian of tilt error.
        yaw_p_per_s: yaw rate [rad/s] per radian of heading error (position level).
        rate_p_per_s: angular acceleration [rad/s^2] per rad/s of body-rate error.
        rate_i_per_s2: angular acceleration per rad of integrated body-rate error.
        rate_d: angular acceleration fed back per rad/s^2 of measured angular acceleration
            (derivative on measurement, dimensionless).
        rate_integral_limit_rad: anti-windup bound on each integrated rate error.
    """

    position_p_per_s: float = 1.5
    max_speed_m_s: float = 1.5
    velocity_p_per_s: float = 3.0
    attitude_p_per_s: float = 8.0
    yaw_p_per_s: float = 1.0
    rate_p_per_s: float = 60.0
    rate_i_per_s2: float = 10.0
    rate_d: float = 3.0
    rate_integral_limit_rad: float = 0.3

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"QuadGains.{field.name} must be a finite number >= 0, got {value!r}")


def limit_norm_arrays(vec: Any, max_norm: float, xp: Any) -> Any:
    """``(..., 3)`` vectors scaled down to a norm of at most ``max_norm``."""
    norm = xp.sqrt(dot3_arrays(vec, vec))[..., None]
    return vec * xp.minimum(1.0, max_norm / xp.maximum(norm, 1e-12))


def position_to_velocity_arrays(pos_m: Any, target_m: Any, gain_per_s: float, max_speed_m_s: float, xp: Any) -> Any:
    """World velocity target ``(..., 3)`` [m/s] toward ``target_m`` (both world frame, ENU)."""
    return limit_norm_arrays(gain_per_s * (target_m - pos_m), max_speed_m_s, xp)


def heading_arrays(quat_wxyz: Any, xp: Any) -> tuple[Any, Any]:
    """``(cos yaw, sin yaw)`` of the heading (body x projected on the world xy plane), ``(...)`` each;
    no trigonometry (``(1, 0)`` when body x is vertical)."""
    w, x, y, z = (quat_wxyz[..., i] for i in range(4))
    fx, fy = 1 - 2 * (y * y + z * z), 2 * (x * y + w * z)
    norm = xp.sqrt(fx * fx + fy * fy)
    flat = norm < 1e-6
    safe = xp.where(flat, 1.0, norm)
    return xp.where(flat, 1.0, fx / safe), xp.where(flat, 0.0, fy / safe)


def tilt_to_world_arrays(roll_rad: Any, pitch_rad: Any, cos_yaw: Any, sin_yaw: Any, xp: Any) -> Any:
    """The body z axis (world ENU) of an attitude with this roll, pitch (heading frame, the contract's
    intrinsic Z-Y-X) and heading, ``(..., 3)``."""
    zx, zy, zz = xp.cos(roll_rad) * xp.sin(pitch_rad), -xp.sin(roll_rad), xp.cos(roll_rad) * xp.cos(pitch_rad)
    return xp.stack([cos_yaw * zx - sin_yaw * zy, sin_yaw * zx + cos_yaw * zy, zz], axis=-1)


def velocity_to_thrust_direction_arrays(vel_target_m_s: Any, vel_m_s: Any, quat_wxyz: Any, mass_kg: float,
                                        max_total_thrust_n: float, gain_per_s: float, max_tilt_rad: float,
                                        xp: Any) -> tuple[Any, Any]:
    """Velocity control: ``(collective_thrust_frac (...), thrust_direction (..., 3))``, world ENU.

    The wanted acceleration is ``gain * (target - vel)`` plus gravity compensation; its vertical part
    is kept >= 0.3 g (the rotors push up only) and its horizontal part within ``max_tilt_rad`` of
    vertical. The collective is the wanted force projected on the current body z (no thrust while
    the body points away); the direction is the wanted force's (the body z to turn to).
    """
    acc = gain_per_s * (vel_target_m_s - vel_m_s)
    acc_z = xp.maximum(acc[..., 2] + GRAVITY_M_S2, 0.3 * GRAVITY_M_S2)
    ax, ay = acc[..., 0], acc[..., 1]
    horizontal = xp.sqrt(ax * ax + ay * ay)
    scale = xp.minimum(1.0, math.tan(max_tilt_rad) * acc_z / xp.maximum(horizontal, 1e-12))
    ax, ay = ax * scale, ay * scale
    body_z = body_z_arrays(quat_wxyz, xp)
    force_n = mass_kg * (body_z[..., 0] * ax + body_z[..., 1] * ay + body_z[..., 2] * acc_z)
    norm = xp.sqrt(ax * ax + ay * ay + acc_z * acc_z)
    direction = xp.stack([ax / norm, ay / norm, acc_z / norm], axis=-1)
    return xp.clip(force_n / max_total_thrust_n, 0.0, 1.0), direction


def velocity_to_attitude_arrays(vel_target_m_s: Any, vel_m_s: Any, quat_wxyz: Any, mass_kg: float,
                                max_total_thrust_n: float, gain_per_s: float, max_tilt_rad: float,
                                xp: Any) -> tuple[Any, Any, Any]:
    """Velocity control as an attitude command: ``(collective_thrust_frac, roll_rad, pitch_rad)``, each
    ``(...)`` (the contract's roll/pitch: heading frame, intrinsic Z-Y-X), for a vehicle flown at the
    attitude level (:func:`velocity_to_thrust_direction_arrays` for the rest)."""
    collective, direction = velocity_to_thrust_direction_arrays(vel_target_m_s, vel_m_s, quat_wxyz, mass_kg,
                                                                max_total_thrust_n, gain_per_s, max_tilt_rad, xp)
    cos_yaw, sin_yaw = heading_arrays(quat_wxyz, xp)
    dx, dy, dz = direction[..., 0], direction[..., 1], direction[..., 2]
    forward, left = cos_yaw * dx + sin_yaw * dy, -sin_yaw * dx + cos_yaw * dy
    return collective, xp.arctan2(-left, xp.sqrt(forward * forward + dz * dz)), xp.arctan2(forward, dz)


def heading_to_yaw_rate_arrays(quat_wxyz: Any, yaw_target_rad: Any, gain_per_s: float, xp: Any) -> Any:
    """Yaw rate [rad/s] ``(...)`` turning the heading toward ``yaw_target_rad`` the short way."""
    return gain_per_s * wrap_angle_arrays(yaw_target_rad - yaw_arrays(quat_wxyz, xp), xp)


def thrust_direction_to_rates_arrays(quat_wxyz: Any, direction: Any, yaw_rate_rad_s: Any, gain_per_s: float,
                                     xp: Any) -> Any:
    """Body-rate targets ``(..., 3)`` [rad/s] (body FLU) turning body z toward the unit ``direction``
    (world ENU), plus the yaw rate.

    The tilt error is ``2 tan(angle / 2)`` about ``body_z x direction`` (the angle itself near zero,
    growing past 90 deg so a vehicle on its side turns back hard; rate limits cap it), computed
    without trigonometry; upside down (within ~25 deg) it turns about body x at pi rad of error.
    """
    body_x, body_y, body_z = body_axes_arrays(quat_wxyz, xp)
    axis = cross3_arrays(body_z, direction, xp)
    one_plus_cos = 1.0 + dot3_arrays(body_z, direction)
    upright = one_plus_cos > 0.1
    scale = 2.0 / xp.where(upright, one_plus_cos, 1.0)
    # axis is perpendicular to body z: its body x and y components are all there is
    error_x = xp.where(upright, scale * dot3_arrays(axis, body_x), math.pi)
    error_y = xp.where(upright, scale * dot3_arrays(axis, body_y), 0.0)
    return xp.stack([gain_per_s * error_x, gain_per_s * error_y, yaw_rate_rad_s + 0.0 * error_x], axis=-1)


def attitude_to_rates_arrays(quat_wxyz: Any, roll_rad: Any, pitch_rad: Any, yaw_rate_rad_s: Any,
                             gain_per_s: float, xp: Any) -> Any:
    """Body-rate targets ``(..., 3)`` [rad/s] (body FLU) for an attitude command (roll/pitch in the
    current heading frame, the contract's convention) plus its yaw rate."""
    cos_yaw, sin_yaw = heading_arrays(quat_wxyz, xp)
    direction = tilt_to_world_arrays(roll_rad, pitch_rad, cos_yaw, sin_yaw, xp)
    return thrust_direction_to_rates_arrays(quat_wxyz, direction, yaw_rate_rad_s, gain_per_s, xp)


def rate_pid_arrays(rates_target_rad_s: Any, rates_rad_s: Any, inertia_kg_m2: Any, gains: QuadGains, xp: Any,
                    integral_rad: Any = None, prev_rates_rad_s: Any = None, dt_s: float | None = None) -> tuple[Any, Any]:
    """Body-rate PID: ``(torque_nm (..., 3), integral_rad (..., 3))``, body frame (FLU).

    ``torque = I * (kp * e + ki * integral(e) - kd * d(rates)/dt) + rates x (I rates)``. With
    ``integral_rad=None`` it is stateless (P + gyroscopic feed-forward) and returns a zero integral.
    """
    error = rates_target_rad_s - rates_rad_s
    alpha = gains.rate_p_per_s * error
    if integral_rad is None:
        integral = 0.0 * error
    else:
        limit = gains.rate_integral_limit_rad
        integral = xp.clip(integral_rad + error * dt_s, -limit, limit)
        alpha = alpha + gains.rate_i_per_s2 * integral - gains.rate_d * (rates_rad_s - prev_rates_rad_s) / dt_s
    momentum = inertia_kg_m2 * rates_rad_s
    return inertia_kg_m2 * alpha + cross3_arrays(rates_rad_s, momentum, xp), integral


@dataclasses.dataclass(frozen=True)
class QuadController:
    """The cascade bound to one vehicle's numbers (nominal: a randomized simulator keeps these).

    Attributes:
        mass_kg, inertia_kg_m2, arm_length_m, max_thrust_per_motor_n, max_tilt_rad,
            max_body_rate_rad_s: as in :class:`~robot_rl.backends.quadrotor.QuadSpec` (tuples here).
        yaw_torque_per_thrust_m: propeller drag torque per newton of thrust; only the mixer needs it
            (a backend that takes motor thrusts knows it; the levels above never do).
        gains: the cascade's :class:`QuadGains`.
    """

    mass_kg: float
    inertia_kg_m2: tuple[float, float, float]
    arm_length_m: float
    max_thrust_per_motor_n: float
    max_tilt_rad: float
    max_body_rate_rad_s: tuple[float, float, float]
    yaw_torque_per_thrust_m: float | None = None
    gains: QuadGains = QuadGains()

    @classmethod
    def from_spec(cls, spec: Any, yaw_torque_per_thrust_m: float | None = None,
                  gains: QuadGains | None = None) -> QuadController:
        return cls(mass_kg=float(spec.mass_kg), inertia_kg_m2=tuple(float(v) for v in spec.inertia_kg_m2),
                   arm_length_m=float(spec.arm_length_m), max_thrust_per_motor_n=float(spec.max_thrust_per_motor_n),
                   max_tilt_rad=float(spec.max_tilt_rad),
                   max_body_rate_rad_s=tuple(float(v) for v in spec.max_body_rate_rad_s),
                   yaw_torque_per_thrust_m=yaw_torque_per_thrust_m, gains=gains or QuadGains())

    @property
    def max_total_thrust_n(self) -> float:
        return 4.0 * self.max_thrust_per_motor_n

    def _clip_rates(self, rates_rad_s: Any, xp: Any) -> Any:
        limit = xp.asarray(self.max_body_rate_rad_s, dtype=rates_rad_s.dtype)
        return xp.clip(rates_rad_s, -limit, limit)

    def position_to_velocity(self, pos_m: Any, target_m: Any, xp: Any) -> Any:
        """World velocity target [m/s] toward ``target_m`` (world ENU)."""
        return position_to_velocity_arrays(pos_m, target_m, self.gains.position_p_per_s, self.gains.max_speed_m_s, xp)

    def velocity_to_thrust_rates(self, vel_target_m_s: Any, yaw_rate_rad_s: Any, vel_m_s: Any, quat_wxyz: Any,
                                 xp: Any) -> tuple[Any, Any]:
        """Velocity level -> ``(collective_thrust_frac (...), body_rates_target_rad_s (..., 3))``."""
        collective, direction = velocity_to_thrust_direction_arrays(
            vel_target_m_s, vel_m_s, quat_wxyz, self.mass_kg, self.max_total_thrust_n, self.gains.velocity_p_per_s,
            self.max_tilt_rad, xp)
        rates = thrust_direction_to_rates_arrays(quat_wxyz, direction, yaw_rate_rad_s, self.gains.attitude_p_per_s, xp)
        return collective, self._clip_rates(rates, xp)

    def attitude_to_rates(self, quat_wxyz: Any, roll_rad: Any, pitch_rad: Any, yaw_rate_rad_s: Any, xp: Any) -> Any:
        """Attitude level -> body-rate targets (body FLU), within ``max_body_rate_rad_s``."""
        rates = attitude_to_rates_arrays(quat_wxyz, roll_rad, pitch_rad, yaw_rate_rad_s, self.gains.attitude_p_per_s, xp)
        return self._clip_rates(rates, xp)

    def position_to_thrust_rates(self, pos_m: Any, vel_m_s: Any, quat_wxyz: Any, target_m: Any, yaw_target_rad: Any,
                                 xp: Any) -> tuple[Any, Any]:
        """The position controller (the scripted expert): fly to ``target_m`` and turn to ``yaw_target_rad``."""
        yaw_rate = heading_to_yaw_rate_arrays(quat_wxyz, yaw_target_rad, self.gains.yaw_p_per_s, xp)
        return self.velocity_to_thrust_rates(self.position_to_velocity(pos_m, target_m, xp), yaw_rate, vel_m_s,
                                             quat_wxyz, xp)

    def hover_in_place(self, vel_m_s: Any, quat_wxyz: Any, xp: Any) -> tuple[Any, Any]:
        """The safe fallback: level out, stop (zero world velocity) and stop turning."""
        return self.velocity_to_thrust_rates(0.0 * vel_m_s, 0.0 * vel_m_s[..., 0], vel_m_s, quat_wxyz, xp)

    def rates_to_torque(self, rates_target_rad_s: Any, rates_rad_s: Any, xp: Any, integral_rad: Any = None,
                        prev_rates_rad_s: Any = None, dt_s: float | None = None) -> tuple[Any, Any]:
        """Body-rate PID (:func:`rate_pid_arrays`) with this vehicle's inertia."""
        inertia = xp.asarray(self.inertia_kg_m2, dtype=rates_rad_s.dtype)
        return rate_pid_arrays(rates_target_rad_s, rates_rad_s, inertia, self.gains, xp, integral_rad,
                               prev_rates_rad_s, dt_s)

    def motor_fractions(self, collective_thrust_frac: Any, torque_nm: Any, xp: Any) -> Any:
        """Collective (fraction of all four motors' maximum) + body torque -> per-motor thrust fractions."""
        if self.yaw_torque_per_thrust_m is None:
            raise ValueError("QuadController.motor_fractions needs yaw_torque_per_thrust_m (the mixer's propeller "
                             "torque coefficient); build it with QuadController.from_spec(spec, yaw_torque_per_thrust_m=...)")
        thrust_n = mix_arrays(collective_thrust_frac * self.max_total_thrust_n, torque_nm, self.arm_length_m,
                              self.yaw_torque_per_thrust_m, self.max_thrust_per_motor_n, xp)
        return thrust_n / self.max_thrust_per_motor_n
