"""The X-frame motor geometry and the mixer, as array functions over ``xp``.

Motor order is the contract's (:mod:`robot_rl.backends.quadrotor`): 0 front-right, 1 back-right,
2 back-left, 3 front-left. Motor ``i`` sits at ``arm_length_m`` from the centre of mass on the
diagonal ``(sx_i, sy_i) / sqrt(2)`` of the body frame (FLU), with ``sx = (1, -1, -1, 1)``,
``sy = (-1, -1, 1, 1)``, and pushes along body +z. Its propeller's drag torque on the body is
``MOTOR_YAW_SIGN[i] * yaw_torque_per_thrust_m * thrust_n`` about body +z: motors 0 and 2 spin
counter-clockwise seen from above (their reaction torque turns the body clockwise, -z), motors 1
and 3 clockwise (+z). A driver for a vehicle wired otherwise maps its motors to this order.

So, with ``d = arm_length_m / sqrt(2)`` and ``k = yaw_torque_per_thrust_m``::

    collective_n = T0 + T1 + T2 + T3
    torque_x_nm  = d * (-T0 - T1 + T2 + T3)     # roll: the left motors push the left side up
    torque_y_nm  = d * (-T0 + T1 + T2 - T3)     # pitch: the back motors push the nose down
    torque_z_nm  = k * (-T0 + T1 - T2 + T3)

The four rows are orthogonal, so the mixer (the inverse) is the same table divided by 4.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MOTOR_X_SIGN = (1.0, -1.0, -1.0, 1.0)
MOTOR_Y_SIGN = (-1.0, -1.0, 1.0, 1.0)
MOTOR_YAW_SIGN = (-1.0, 1.0, -1.0, 1.0)
ROLL_SIGN = tuple(MOTOR_Y_SIGN)                                   # torque_x per unit d*T
PITCH_SIGN = tuple(-s for s in MOTOR_X_SIGN)                      # torque_y per unit d*T


def motor_positions_m(arm_length_m: float) -> np.ndarray:
    """``(4, 3)`` motor positions [m], body frame (FLU), in motor order."""
    d = arm_length_m / math.sqrt(2.0)
    return np.array([[sx * d, sy * d, 0.0] for sx, sy in zip(MOTOR_X_SIGN, MOTOR_Y_SIGN)])


def _signed(values: Any, signs: tuple[float, ...], xp: Any) -> Any:
    return sum(s * values[..., i] for i, s in enumerate(signs))


def _extreme(values: tuple, pick: Any) -> Any:
    """Max or min over the 4 motors' values ``(...)``, written out (XLA fuses it; a reduce it does not)."""
    return pick(pick(values[0], values[1]), pick(values[2], values[3]))


def thrusts_to_wrench_arrays(thrust_n: Any, arm_length_m: Any, yaw_torque_per_thrust_m: Any,
                             xp: Any) -> tuple[Any, Any]:
    """Motor thrusts ``(..., 4)`` [N] -> collective thrust ``(...)`` [N] along body z and body torque
    ``(..., 3)`` [N m] (body frame, FLU). Parameters broadcast (scalars or ``(...)`` per vehicle)."""
    d = arm_length_m / math.sqrt(2.0)
    torque = xp.stack([d * _signed(thrust_n, ROLL_SIGN, xp), d * _signed(thrust_n, PITCH_SIGN, xp),
                       yaw_torque_per_thrust_m * _signed(thrust_n, MOTOR_YAW_SIGN, xp)], axis=-1)
    return thrust_n[..., 0] + thrust_n[..., 1] + thrust_n[..., 2] + thrust_n[..., 3], torque


def mix_arrays(collective_n: Any, torque_nm: Any, arm_length_m: float, yaw_torque_per_thrust_m: float,
               max_thrust_per_motor_n: Any, xp: Any) -> Any:
    """Collective thrust ``(...)`` [N] and body torque ``(..., 3)`` [N m] -> motor thrusts ``(..., 4)`` [N],
    each within ``[0, max_thrust_per_motor_n]`` (a scalar, or ``(..., 1)`` per vehicle).

    Saturation: roll and pitch come first; the collective is shifted (down when a motor would exceed
    its maximum, up when one would go below zero) so that their differences fit; the yaw part is
    then scaled down to the headroom left; what still does not fit is clipped. Without saturation
    this is the exact inverse of :func:`thrusts_to_wrench_arrays`.
    """
    d = arm_length_m / math.sqrt(2.0)
    roll, pitch, yaw = (torque_nm[..., i] for i in range(3))
    # per motor (4 arrays ``(...)``, stacked once at the end: in JAX the motors stay separate rows)
    limit = max_thrust_per_motor_n[..., 0] if xp.ndim(max_thrust_per_motor_n) else max_thrust_per_motor_n
    base = collective_n / 4.0
    attitude = [base + (rs * roll + ps * pitch) / (4.0 * d) for rs, ps in zip(ROLL_SIGN, PITCH_SIGN)]
    high, low = _extreme(attitude, xp.maximum), _extreme(attitude, xp.minimum)
    shift = xp.where(high > limit, limit - high, 0.0) + xp.where(low < 0.0, -low, 0.0)
    both = (high > limit) & (low < 0.0)                      # the spread exceeds the range: centre it
    offset = xp.where(both, 0.5 * (limit - high - low), shift)
    attitude = [a + offset for a in attitude]
    yaw_part = [s * yaw / (4.0 * yaw_torque_per_thrust_m) for s in MOTOR_YAW_SIGN]
    allowed = []
    for a, y in zip(attitude, yaw_part):
        room = xp.where(y > 0, limit - a, a)                  # headroom in the yaw part's direction
        magnitude = xp.abs(y)
        allowed.append(xp.where(magnitude > 1e-12, xp.clip(room, 0.0, None) / xp.where(magnitude > 1e-12, magnitude, 1.0),
                                1.0))
    scale = xp.clip(_extreme(allowed, xp.minimum), 0.0, 1.0)
    return xp.stack([xp.clip(a + scale * y, 0.0, limit) for a, y in zip(attitude, yaw_part)], axis=-1)
