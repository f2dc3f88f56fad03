"""Rotations for quadrotors, as array functions over ``xp`` (numpy or jax.numpy).

Quaternions are ``(..., 4)`` arrays ``(w, x, y, z)`` rotating the body frame (FLU: x forward, y
left, z up) into the world frame (ENU: x east, y north, z up), as in
:mod:`robot_rl.backends.quadrotor`. Vectors carry their 3 components on the last axis.
"""

from __future__ import annotations

from typing import Any


def quat_to_matrix_arrays(quat_wxyz: Any, xp: Any) -> Any:
    """Rotation matrices ``(..., 3, 3)`` (body -> world: ``v_world = R @ v_body``) of unit quaternions."""
    w, x, y, z = (quat_wxyz[..., i] for i in range(4))
    rows = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )
    return xp.stack([xp.stack(row, axis=-1) for row in rows], axis=-2)


def quat_multiply_arrays(a_wxyz: Any, b_wxyz: Any, xp: Any) -> Any:
    """Hamilton product ``a * b`` (apply ``b`` first, then ``a``), ``(..., 4)``."""
    aw, ax, ay, az = (a_wxyz[..., i] for i in range(4))
    bw, bx, by, bz = (b_wxyz[..., i] for i in range(4))
    return xp.stack([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def quat_from_axis_angle_arrays(axis: Any, angle_rad: Any, xp: Any) -> Any:
    """Unit quaternion of a rotation by ``angle_rad`` ``(...)`` about the unit ``axis`` ``(..., 3)``."""
    half = 0.5 * angle_rad
    return xp.concatenate([xp.cos(half)[..., None], xp.sin(half)[..., None] * axis], axis=-1)


def rotate_arrays(quat_wxyz: Any, vec: Any, xp: Any) -> Any:
    """``vec`` ``(..., 3)`` in the body frame expressed in the world frame."""
    bx, by, bz = body_axes_arrays(quat_wxyz, xp)
    return bx * vec[..., 0:1] + by * vec[..., 1:2] + bz * vec[..., 2:3]


def unrotate_arrays(quat_wxyz: Any, vec: Any, xp: Any) -> Any:
    """``vec`` ``(..., 3)`` in the world frame expressed in the body frame."""
    return xp.stack([dot3_arrays(axis, vec) for axis in body_axes_arrays(quat_wxyz, xp)], axis=-1)


def body_axes_arrays(quat_wxyz: Any, xp: Any) -> tuple[Any, Any, Any]:
    """The body x, y and z axes in the world frame (the columns of the rotation matrix), ``(..., 3)`` each."""
    w, x, y, z = (quat_wxyz[..., i] for i in range(4))
    return (xp.stack([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)], axis=-1),
            xp.stack([2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)], axis=-1),
            xp.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], axis=-1))


def dot3_arrays(a: Any, b: Any) -> Any:
    """``sum(a * b, axis=-1)`` of ``(..., 3)`` vectors, written out (XLA fuses it; a reduce it does not)."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def cross3_arrays(a: Any, b: Any, xp: Any) -> Any:
    """``a x b`` of ``(..., 3)`` vectors."""
    return xp.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1], a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)


def body_z_arrays(quat_wxyz: Any, xp: Any) -> Any:
    """The body z axis (the thrust direction) in the world frame, ``(..., 3)``."""
    w, x, y, z = (quat_wxyz[..., i] for i in range(4))
    return xp.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], axis=-1)


def yaw_arrays(quat_wxyz: Any, xp: Any) -> Any:
    """Heading [rad] ``(...)``: the angle of the body x axis projected on the world xy plane, from
    world x, counter-clockwise seen from above (the Z of intrinsic Z-Y-X Euler angles)."""
    w, x, y, z = (quat_wxyz[..., i] for i in range(4))
    return xp.arctan2(2 * (x * y + w * z), 1 - 2 * (y * y + z * z))


def cos_tilt_arrays(quat_wxyz: Any, xp: Any) -> Any:
    """Cosine of the tilt, the angle between body z and world z, ``(...)`` (1 = level, -1 = upside down)."""
    return 1 - 2 * (quat_wxyz[..., 1] ** 2 + quat_wxyz[..., 2] ** 2)


def wrap_angle_arrays(angle_rad: Any, xp: Any) -> Any:
    """Angles wrapped to ``[-pi, pi)``."""
    return (angle_rad + xp.pi) % (2 * xp.pi) - xp.pi


def tilted_quat_arrays(yaw_rad: Any, tilt_axis_angle_rad: Any, tilt_rad: Any, xp: Any) -> Any:
    """Attitude with heading ``yaw_rad`` after tilting by ``tilt_rad`` about the horizontal axis at
    ``tilt_axis_angle_rad`` from world x: ``q_z(yaw) * q_axis(tilt)``; its tilt is ``tilt_rad``."""
    zeros = xp.zeros_like(tilt_axis_angle_rad)
    axis = xp.stack([xp.cos(tilt_axis_angle_rad), xp.sin(tilt_axis_angle_rad), zeros], axis=-1)
    up = xp.stack([zeros, zeros, xp.ones_like(zeros)], axis=-1)
    return quat_multiply_arrays(quat_from_axis_angle_arrays(up, yaw_rad, xp),
                                quat_from_axis_angle_arrays(axis, tilt_rad, xp), xp)
