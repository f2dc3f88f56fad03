"""The quadrotor's equations of motion and their RK4 step, as array functions over ``xp`` (written for
``jax.numpy`` in the batched env; numpy runs them too, which the tests use).

State (leading batch axes ``...``): ``pos_m (..., 3)`` and ``vel_m_s (..., 3)`` world frame (ENU),
``quat_wxyz (..., 4)`` body (FLU) -> world, ``rates_rad_s (..., 3)`` body frame, ``thrust_n (..., 4)`` the
motors' actual thrusts. The model is :mod:`sim.quad.model`'s::

    d pos / dt    = vel
    d quat / dt   = 0.5 * quat * (0, rates)
    d vel / dt    = (R e_z * sum(T) + force_disturbance_n - drag * vel) / mass + g
    d rates / dt  = I^-1 (torque(T) + torque_disturbance_nm - rates x I rates)
    d T / dt      = (T_cmd - T) / motor_time_constant_s

integrated with classic RK4 (the command held over the step), the quaternion renormalised after
each step. This is the ODE MuJoCo's RK4 integrates for the MJCF of :func:`sim.quad.model.mjcf`
(the filter actuators are its motor model, joint damping its drag), so the two agree closely while
the vehicle touches nothing (tests/sim/test_quad_model.py).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

from drivers.quad.control import GRAVITY_M_S2
from drivers.quad.mixer import MOTOR_YAW_SIGN, PITCH_SIGN, ROLL_SIGN


class RigidState(NamedTuple):
    """One or a batch of vehicle states (see the module docstring for frames and units)."""

    pos_m: Any
    quat_wxyz: Any
    vel_m_s: Any
    rates_rad_s: Any
    thrust_n: Any


class BodyParams(NamedTuple):
    """Physical parameters, scalars or per vehicle (shapes broadcasting against the state).

    ``mass_kg (...)``, ``inertia_kg_m2 (..., 3)``, ``motor_time_constant_s (...)`` (> 0),
    ``linear_drag_n_s_m (...)``, ``force_disturbance_n (..., 3)`` world frame, ``torque_disturbance_nm
    (..., 3)`` body frame, ``arm_length_m`` and ``yaw_torque_per_thrust_m`` (scalars).
    """

    mass_kg: Any
    inertia_kg_m2: Any
    motor_time_constant_s: Any
    linear_drag_n_s_m: Any
    force_disturbance_n: Any
    torque_disturbance_nm: Any
    arm_length_m: float
    yaw_torque_per_thrust_m: float


def _derivative(c: tuple, cmd: tuple, p: tuple, instant_motors: bool) -> tuple:
    """The ODE on components: 17 state arrays ``(...)`` (pos 3, quat 4, vel 3, rates 3, thrusts 4),
    4 commanded thrusts, parameters ``(mass, ix, iy, iz, tau, drag, fx, fy, fz, tx, ty, tz, d, k)``.

    Written per component (no stacking inside the RK4 stages): under XLA the whole step fuses into
    one loop over the batch, ~5x faster than the same maths on ``(..., 3)`` arrays.
    """
    _, _, _, qw, qx, qy, qz, vx, vy, vz, wx, wy, wz, t0, t1, t2, t3 = c
    mass, ix, iy, iz, tau, drag, fx, fy, fz, dx, dy, dz, d, k = p
    thrusts = (t0, t1, t2, t3)
    collective = t0 + t1 + t2 + t3
    roll = d * sum(sign * t for sign, t in zip(ROLL_SIGN, thrusts))
    pitch = d * sum(sign * t for sign, t in zip(PITCH_SIGN, thrusts))
    yaw = k * sum(sign * t for sign, t in zip(MOTOR_YAW_SIGN, thrusts))
    zx, zy, zz = 2 * (qx * qz + qw * qy), 2 * (qy * qz - qw * qx), 1 - 2 * (qx * qx + qy * qy)  # body z in world
    acc = ((zx * collective + fx - drag * vx) / mass, (zy * collective + fy - drag * vy) / mass,
           (zz * collective + fz - drag * vz) / mass - GRAVITY_M_S2)
    rates_dot = ((roll + dx - (iz - iy) * wy * wz) / ix, (pitch + dy - (ix - iz) * wz * wx) / iy,
                 (yaw + dz - (iy - ix) * wx * wy) / iz)
    quat_dot = (0.5 * (-qx * wx - qy * wy - qz * wz), 0.5 * (qw * wx + qy * wz - qz * wy),
                0.5 * (qw * wy - qx * wz + qz * wx), 0.5 * (qw * wz + qx * wy - qy * wx))
    if instant_motors:
        thrust_dot = (0.0 * t0,) * 4
    else:
        thrust_dot = tuple((command - t) / tau for command, t in zip(cmd, thrusts))
    return (vx, vy, vz) + quat_dot + acc + rates_dot + thrust_dot


def _unpack(state: RigidState) -> tuple:
    return tuple(part[..., i] for part in state for i in range(part.shape[-1]))


def _pack(c: tuple, xp: Any) -> RigidState:
    return RigidState(xp.stack(c[0:3], axis=-1), xp.stack(c[3:7], axis=-1), xp.stack(c[7:10], axis=-1),
                      xp.stack(c[10:13], axis=-1), xp.stack(c[13:17], axis=-1))


def param_components(params: BodyParams, component_major: bool = False) -> tuple:
    """The parameters as :func:`rk4_step_components` takes them; vectors ``(..., 3)``, or ``(3, ...)``
    with ``component_major`` (the JAX env's layout)."""
    inertia, force, torque = params.inertia_kg_m2, params.force_disturbance_n, params.torque_disturbance_nm
    pick = (lambda a, i: a[i]) if component_major else (lambda a, i: a[..., i])
    return (params.mass_kg, pick(inertia, 0), pick(inertia, 1), pick(inertia, 2), params.motor_time_constant_s,
            params.linear_drag_n_s_m, pick(force, 0), pick(force, 1), pick(force, 2), pick(torque, 0),
            pick(torque, 1), pick(torque, 2), params.arm_length_m / math.sqrt(2.0), params.yaw_torque_per_thrust_m)


def derivative_arrays(state: RigidState, thrust_cmd_n: Any, params: BodyParams, xp: Any,
                      instant_motors: bool = False) -> RigidState:
    """Time derivative of ``state`` under the motor thrust command ``thrust_cmd_n (..., 4)`` [N]."""
    cmd = tuple(thrust_cmd_n[..., i] for i in range(4))
    return _pack(_derivative(_unpack(state), cmd, param_components(params), instant_motors), xp)


def rk4_step_components(c: tuple, cmd: tuple, p: tuple, dt_s: float, xp: Any, instant_motors: bool = False,
                        once: Callable[[Callable], Callable] | None = None) -> tuple:
    """:func:`rk4_step_arrays` on components: the 17 state arrays, the 4 commanded thrusts and the
    parameters of :func:`_derivative` (each any shape, broadcasting). The batched JAX env keeps its
    state as components (component-major ``(k, N)`` arrays) and steps it with this directly.

    ``once``: wraps the derivative so that each stage's is computed once and kept (the JAX env passes
    a conditional, :func:`sim.quad.jax_core.computed_once`: XLA on CPU otherwise recomputes the
    stages' shared chain inside many kernels); the same formula either way (XLA may order or
    contract the operations differently: equal to float32 rounding)."""
    if instant_motors:
        c = c[:13] + tuple(command + 0.0 * t for command, t in zip(cmd, c[13:]))

    def derivative(x: tuple) -> tuple:
        return _derivative(x, cmd, p, instant_motors)

    if once is not None:
        derivative = once(derivative)

    def stage(base: tuple, rate: tuple, h: float) -> tuple:
        return derivative(tuple(b + h * r for b, r in zip(base, rate)))

    k1 = derivative(c)
    k2 = stage(c, k1, 0.5 * dt_s)
    k3 = stage(c, k2, 0.5 * dt_s)
    k4 = stage(c, k3, dt_s)
    new = tuple(x + dt_s / 6.0 * (a + 2.0 * b + 2.0 * e + f) for x, a, b, e, f in zip(c, k1, k2, k3, k4))
    scale = 1.0 / xp.sqrt(new[3] ** 2 + new[4] ** 2 + new[5] ** 2 + new[6] ** 2)
    return new[:3] + tuple(q * scale for q in new[3:7]) + new[7:]


def rk4_step_arrays(state: RigidState, thrust_cmd_n: Any, params: BodyParams, dt_s: float, xp: Any,
                    instant_motors: bool = False) -> RigidState:
    """One classic RK4 step of ``dt_s`` with the motor command held; the quaternion renormalised.

    ``instant_motors``: a zero motor time constant, the thrusts jump to the command at the step's start.
    """
    cmd = tuple(thrust_cmd_n[..., i] for i in range(4))
    return _pack(rk4_step_components(_unpack(state), cmd, param_components(params), dt_s, xp, instant_motors), xp)
