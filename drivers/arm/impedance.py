"""Cartesian impedance control with reference limiting, one call per control tick (1 kHz on a robot).

The law, with pose error ``e = x - x_d`` (position, then orientation as a rotation vector, both
in the base frame) clipped per axis *before* the spring (reference limiting, as in SERL's Franka
controller), so that contact forces stay below ``stiffness * clip`` whatever the target::

    e_c   = clip(e, -clip, +clip)
    tau   = J^T (-K e_c - D J dq)                       task-space spring-damper
          + N (k_ns (q_ns - q) - d_ns dq)                 posture held in the nullspace
          + bias                                          gravity + Coriolis compensation
    N     = I - J^T (J J^T + lambda^2 I)^-1 J             damped nullspace projector

then the change of torque per tick is limited (``max_torque_rate_nm_s``) and torques are clipped
to the joint limits. The target pose and the gains are low-pass filtered toward what was set, so
a 10 Hz policy produces smooth 1 kHz references. Damping follows ``D = 2 zeta sqrt(K m)`` per axis
(m: an apparent mass for translation, an apparent inertia for rotation).

Pure numpy, no allocations per tick: all buffers are made once; the 6x6 inverse inside the
projector is tracked with one Newton-Schulz iteration per tick (the Jacobian changes little
between ticks) and recomputed exactly only when the iteration's residual grows. This class is the
tested reference; :func:`make_impedance_controller` gives the numba-compiled tick of the same law
(drivers/arm/impedance_compiled.py) when numba is importable.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from drivers.arm.impedance_config import (  # noqa: F401  (re-exported: the controller's public names)
    KERNELS,
    NON_FINITE_TORQUE,
    STIFFNESS_POS_RANGE_N_M,
    STIFFNESS_ROT_RANGE_NM_RAD,
    ImpedanceConfig,
)


def _filter_gain(time_constant_s: float, dt_s: float) -> float:
    """Per-tick blend factor of a first-order low-pass filter (1.0 = no filtering)."""
    return 1.0 if time_constant_s <= 0 else dt_s / (time_constant_s + dt_s)


def _quat_to_mat_into(q: np.ndarray, out: np.ndarray) -> None:
    w, x, y, z = q.tolist()
    out[0, 0] = 1 - 2 * (y * y + z * z)
    out[0, 1] = 2 * (x * y - w * z)
    out[0, 2] = 2 * (x * z + w * y)
    out[1, 0] = 2 * (x * y + w * z)
    out[1, 1] = 1 - 2 * (x * x + z * z)
    out[1, 2] = 2 * (y * z - w * x)
    out[2, 0] = 2 * (x * z - w * y)
    out[2, 1] = 2 * (y * z + w * x)
    out[2, 2] = 1 - 2 * (x * x + y * y)


class CartesianImpedanceController:
    """Reference-limited Cartesian impedance controller for an ``n``-joint arm.

    Usage::

        ctrl.reset(tcp_pos, tcp_quat, q)            # once, holding the current pose
        ctrl.set_target(pos, quat)                  # whenever the policy sends a new target
        tau = ctrl.compute(q, dq, tcp_pos, tcp_rot, jac, bias)   # every tick

    ``compute`` returns an internal buffer that the next call overwrites: send it or copy it.
    """

    def __init__(self, config: ImpedanceConfig | None = None) -> None:
        self.config = cfg = config or ImpedanceConfig()
        n = cfg.dof
        self._alpha_target = _filter_gain(cfg.target_filter_s, cfg.dt_s)
        self._alpha_gain = _filter_gain(cfg.gain_filter_s, cfg.dt_s)
        rate_step = cfg.max_torque_rate_nm_s * cfg.dt_s
        self._rate_step = np.full(n, rate_step)
        self._neg_rate_step = -self._rate_step
        self._tau_limit = np.asarray(cfg.torque_limits_nm, dtype=np.float64)
        self._neg_tau_limit = -self._tau_limit
        self._clip = np.asarray(cfg.clip_pos_m + cfg.clip_rot_rad, dtype=np.float64)
        self._neg_clip = -self._clip
        self._lambda2_eye = (cfg.nullspace_damping_lambda**2) * np.eye(6)
        self._two_eye6 = 2.0 * np.eye(6)
        # Gains as one 12-vector acting on [pose error (6); twist (6)], stored negated so that
        # tau = J^T (gains * [e; J dq]) needs no extra sign flip. The first 6 are -K, then -D.
        self._gains = np.zeros(12)
        self._apparent_mass = np.array([cfg.apparent_mass_kg] * 3 + [cfg.apparent_inertia_kg_m2] * 3)
        self._k_goal = np.zeros(6)
        self._gain_ticks_left = 0
        self.set_gains(cfg.stiffness_pos_n_m, cfg.stiffness_rot_nm_rad)
        self._gains[:6] = -self._k_goal
        self._update_damping()
        self._k_ns = cfg.nullspace_stiffness_nm_rad
        self._d_ns = 2.0 * np.sqrt(self._k_ns)
        # Reference = [position (3), 0.5 * rotation matrix (9)] so one filter update moves both and
        # the orientation error below comes out already halved. The filtered matrix is a blend of
        # rotations (not exactly orthonormal) only while it moves; it equals the goal at rest.
        self._goal = np.zeros(12)
        self._ref = np.zeros(12)
        self._ref_pos = self._ref[:3]
        self._ref_rot_half = self._ref[3:].reshape(3, 3)
        self._ref_rot_half_t = self._ref_rot_half.T
        self._goal_quat = np.array([1.0, 0.0, 0.0, 0.0])
        self._target_ticks_left = 0
        self._target_ticks = int(np.ceil(np.log(1e-9) / np.log(1.0 - self._alpha_target))) if self._alpha_target < 1 else 1
        self._kq_ns = np.zeros(n)
        self._allocate_work_buffers(n)

    def _allocate_work_buffers(self, n: int) -> None:
        """Every array a tick writes: nothing is allocated per tick."""
        self._z = np.zeros(12)  # [e (6); twist (6)]
        self._err, self._twist = self._z[:6], self._z[6:]
        self._err_pos, self._err_rot = self._err[:3], self._err[3:]
        self._w12 = np.zeros(12)
        self._w12_pos, self._w12_vel = self._w12[:6], self._w12[6:]
        self._wrench = np.zeros(6)
        self._rr = np.zeros((3, 3))
        self._skew = np.zeros((3, 3))
        self._vee_index = np.array([7, 2, 3])  # (2,1), (0,2), (1,0) of a flattened 3x3
        self._tmp12 = np.zeros(12)
        self._u6 = np.zeros(6)
        self._y6 = np.zeros(6)
        self._tau = np.zeros(n)
        self._tau_ns = np.zeros(n)
        self._tmpn = np.zeros(n)
        self._out = np.zeros(n)  # also the previous tick's torque, for the rate limit
        self._a = np.zeros((6, 6))
        self._a_inv = np.eye(6)
        self._a_inv_next = np.eye(6)
        self._ns_t = np.zeros((6, 6))
        self._ns_t_diag = self._ns_t.reshape(-1)[::7]  # view of the diagonal
        self._ns_residual = np.zeros((6, 6))
        self._eye6 = np.eye(6)
        self._ticks = 0

    # ----------------------------------------------------------------------------- setup
    def reset(self, tcp_pos: np.ndarray, tcp_quat_wxyz: np.ndarray, q: np.ndarray, tau: np.ndarray | None = None) -> None:
        """Hold the current pose: target = filtered reference = current, posture = ``q``.

        ``tau`` is the torque being applied now (e.g. gravity compensation), where the torque
        rate limit starts from; zero if not given.
        """
        self.set_target(tcp_pos, tcp_quat_wxyz)
        self._ref[:] = self._goal
        self._target_ticks_left = 0
        self.set_nullspace_posture(q)
        self._out[:] = 0.0 if tau is None else np.clip(tau, self._neg_tau_limit, self._tau_limit)
        self._ticks = 0

    def set_target(self, tcp_pos: np.ndarray, tcp_quat_wxyz: np.ndarray) -> None:
        """New TCP pose target (base frame); the reference moves toward it through the filter."""
        pos = np.asarray(tcp_pos, dtype=np.float64)
        quat = np.asarray(tcp_quat_wxyz, dtype=np.float64)
        # Scalar checks: np.isfinite/np.all cost more than the rest of this call (once per env step).
        if pos.shape != (3,) or quat.shape != (4,) or not all(map(math.isfinite, pos.tolist() + quat.tolist())):
            raise ValueError(f"target needs a finite (3,) position and (4,) quaternion, got {pos}, {quat}")
        norm2 = float(quat.dot(quat))
        if not norm2 > 0:
            raise ValueError(f"target quaternion must be non-zero, got {quat}")
        self._goal[:3] = pos
        np.divide(quat, math.sqrt(norm2), out=self._goal_quat)  # = quat / np.linalg.norm(quat)
        _quat_to_mat_into(self._goal_quat, self._goal[3:].reshape(3, 3))
        self._goal[3:] *= 0.5
        self._target_ticks_left = self._target_ticks

    def set_gains(self, stiffness_pos_n_m: float, stiffness_rot_nm_rad: float) -> None:
        """New stiffness; reached through the gain filter, damping follows."""
        if not (stiffness_pos_n_m > 0 and stiffness_rot_nm_rad > 0):
            raise ValueError(f"stiffness must be positive, got {stiffness_pos_n_m}, {stiffness_rot_nm_rad}")
        self._k_goal[:3] = stiffness_pos_n_m
        self._k_goal[3:] = stiffness_rot_nm_rad
        ticks = np.log(1e-9) / np.log(1.0 - self._alpha_gain) if self._alpha_gain < 1 else 1
        self._gain_ticks_left = int(np.ceil(ticks))

    def set_nullspace_posture(self, q: np.ndarray) -> None:
        """Joint posture [rad] the nullspace term pulls toward."""
        np.multiply(q, self._k_ns, out=self._kq_ns)

    @property
    def stiffness(self) -> np.ndarray:
        """Stiffness in use now (6,), after filtering."""
        return -self._gains[:6]

    @property
    def reference_pos(self) -> np.ndarray:
        """The filtered position reference [m] the spring pulls toward."""
        return self._ref[:3].copy()

    @property
    def pose_error(self) -> np.ndarray:
        """Last clipped pose error ``e_c`` (6,): position [m], rotation vector [rad]."""
        return self._err.copy()

    # ----------------------------------------------------------------------------- tick
    def compute(
        self,
        q: np.ndarray,
        dq: np.ndarray,
        tcp_pos: np.ndarray,
        tcp_rot: np.ndarray,
        jac: np.ndarray,
        bias: np.ndarray,
    ) -> np.ndarray:
        """Joint torques [Nm] for one tick.

        Args:
            q, dq: joint positions [rad] and velocities [rad/s], ``(n,)``.
            tcp_pos: TCP position [m], base frame, ``(3,)``.
            tcp_rot: TCP rotation matrix (TCP frame -> base frame), ``(3, 3)``.
            jac: TCP Jacobian ``(6, n)``, rows = linear then angular velocity, base frame.
            bias: torques added as they are (gravity + Coriolis compensation), ``(n,)``.
        """
        if self._target_ticks_left or self._gain_ticks_left:
            self._filter()
        jac_t = jac.T
        self._pose_error(tcp_pos, tcp_rot)
        wrench = self._task_wrench(jac, dq)
        t0 = self._posture_torque(q, dq)
        self._track_inverse(jac, jac_t)
        # tau = J^T wrench + N t0, with N t0 = t0 - J^T X J t0: one product with J^T for both.
        u6, y6, tau = self._u6, self._y6, self._tau
        np.dot(jac, t0, u6)
        np.dot(self._a_inv, u6, y6)
        np.subtract(wrench, y6, wrench)
        np.dot(jac_t, wrench, tau)
        np.add(tau, t0, tau)
        np.add(tau, bias, tau)
        return self._limit(tau)

    def _task_wrench(self, jac: np.ndarray, dq: np.ndarray) -> np.ndarray:
        """``-K e_c - D J dq`` (6,), from the gains 12-vector acting on ``[e_c; J dq]``."""
        w12 = self._w12
        np.dot(jac, dq, self._twist)
        np.multiply(self._gains, self._z, w12)
        np.add(self._w12_pos, self._w12_vel, self._wrench)
        return self._wrench

    def _posture_torque(self, q: np.ndarray, dq: np.ndarray) -> np.ndarray:
        """``k_ns (q_ns - q) - d_ns dq`` (n,), before the nullspace projection."""
        t0, tmp = self._tau_ns, self._tmpn
        np.multiply(q, self._k_ns, t0)
        np.subtract(self._kq_ns, t0, t0)
        np.multiply(dq, self._d_ns, tmp)
        np.subtract(t0, tmp, t0)
        return t0

    def _filter(self) -> None:
        if self._target_ticks_left:
            self._target_ticks_left -= 1
            np.subtract(self._goal, self._ref, out=self._tmp12)
            self._tmp12 *= self._alpha_target
            self._ref += self._tmp12
            if not self._target_ticks_left:
                self._ref[:] = self._goal
        if self._gain_ticks_left:
            self._gain_ticks_left -= 1
            k = self._gains[:6]
            k *= 1.0 - self._alpha_gain
            k -= self._alpha_gain * self._k_goal
            if not self._gain_ticks_left:
                k[:] = -self._k_goal
            self._update_damping()

    def _update_damping(self) -> None:
        """D = 2 zeta sqrt(K m), stored negated like K."""
        d = self._gains[6:]
        np.multiply(self._gains[:6], self._apparent_mass, out=d)
        np.negative(d, out=d)
        np.sqrt(d, out=d)
        d *= -2.0 * self.config.damping_ratio

    def _pose_error(self, tcp_pos: np.ndarray, tcp_rot: np.ndarray) -> None:
        """``e_c = clip(x - x_ref)``; the rotation part is vee(M - M^T) / 2, M = R R_ref^T.

        That is the rotation vector from the reference to the current orientation for small
        angles (its norm is sin(angle) for large ones: the clip bounds it anyway).
        """
        err, rr, skew = self._err, self._rr, self._skew
        np.subtract(tcp_pos, self._ref_pos, self._err_pos)
        np.dot(tcp_rot, self._ref_rot_half_t, rr)  # already halved
        np.subtract(rr, rr.T, skew)
        skew.take(self._vee_index, out=self._err_rot)
        np.minimum(err, self._clip, out=err)
        np.maximum(err, self._neg_clip, out=err)

    def _track_inverse(self, jac: np.ndarray, jac_t: np.ndarray) -> None:
        """Keep ``_a_inv`` = (J J^T + lambda^2 I)^-1 with one Newton-Schulz step per tick.

        X <- X (2I - A X) converges quadratically while ||I - A X|| < 1; the Jacobian moves little
        in one tick, so one step keeps X exact to rounding. X is recomputed exactly on the first
        tick after ``reset``, when trace(A X) leaves 6 +- 0.5 (checked every tick: a jump of the
        Jacobian) and when the full residual exceeds 0.25 (checked every 32 ticks).
        """
        a, t = self._a, self._ns_t
        np.dot(jac, jac_t, a)
        np.add(a, self._lambda2_eye, a)
        np.dot(a, self._a_inv, t)
        drifted = not abs(float(self._ns_t_diag.sum()) - 6.0) <= 0.5  # trace; NaN counts as drifted
        if self._ticks & 31 == 0 and not drifted:
            np.subtract(t, self._eye6, out=self._ns_residual)
            drifted = not float(np.abs(self._ns_residual, out=self._ns_residual).max()) <= 0.25
        self._ticks += 1
        if drifted or self._ticks == 1:
            self._a_inv[:] = np.linalg.inv(a)  # rare: after reset or a Jacobian jump
            return
        np.subtract(self._two_eye6, t, t)
        np.dot(self._a_inv, t, self._a_inv_next)
        self._a_inv, self._a_inv_next = self._a_inv_next, self._a_inv

    def _limit(self, tau: np.ndarray) -> np.ndarray:
        """Clip to the torque limits, then limit the change from the previous tick's torque.

        The previous torque is within the limits, so moving from it toward a clipped torque
        stays within them.
        """
        out, delta = self._out, self._tmpn
        np.minimum(tau, self._tau_limit, out=tau)
        np.maximum(tau, self._neg_tau_limit, out=tau)
        np.subtract(tau, out, delta)
        np.minimum(delta, self._rate_step, out=delta)
        np.maximum(delta, self._neg_rate_step, out=delta)
        np.add(out, delta, out)
        if not float(np.dot(out, out)) < 1e300:  # NaN/inf anywhere (min/max pass NaN through)
            out[:] = 0.0
            raise FloatingPointError(NON_FINITE_TORQUE)
        return out


def make_impedance_controller(config: ImpedanceConfig | None = None) -> CartesianImpedanceController:
    """The controller ``config.kernel`` asks for: the numba-compiled one, or the numpy reference
    ("auto": compiled when numba imports, else the reference and one warning)."""
    config = config or ImpedanceConfig()
    if config.kernel == "numpy":
        return CartesianImpedanceController(config)
    try:
        from drivers.arm.impedance_compiled import CompiledImpedanceController
    except ImportError as exc:
        if config.kernel == "numba" or (exc.name or "").startswith("drivers"):
            raise
        warnings.warn(f"numba is not importable ({exc}): the impedance controller runs its numpy reference, ~10x slower per tick",
                      RuntimeWarning, stacklevel=2)
        return CartesianImpedanceController(config)
    return CompiledImpedanceController(config)
