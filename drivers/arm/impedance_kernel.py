"""The impedance controller's tick compiled with numba: the same law as the numpy reference
:meth:`drivers.arm.impedance.CartesianImpedanceController.compute`, written as plain loops.

Two entry points:

- :func:`impedance_tick`: one tick on the controller's own arrays (the compiled controller's
  ``compute``; a robot's 1 kHz loop);
- :func:`run_native_ticks`: ``steps`` ticks of a simulation in one call, each tick calling the
  physics engine's C functions through their addresses (pre-step, Jacobian, controller, post-step)
  so no Python runs between ticks. The MuJoCo arm passes ``mj_step1``, ``mj_jacSite``,
  ``mj_step2`` (sim/arm/native.py).

Everything lives in this one file because numba's on-disk cache (``cache=True``) only notices
changes to the file of the cached function: a kernel inlined from another file could go stale.
No ``np.linalg`` (it costs ~26 s to compile): the exact 6x6 inverse is a hand-written Cholesky
inverse (the matrix ``J J^T + lambda^2 I`` is symmetric positive definite; with lambda = 0 and a
singular J, where the numpy reference's ``np.linalg.inv`` raises LinAlgError, the kernel's NaN
torque raises FloatingPointError).

The controller state travels as one tuple ``ctl`` (built by ``CompiledImpedanceController`` in
drivers/arm/impedance_compiled.py): ``(ref, goal, gains, k_goal, kq_ns, out, tau, counts,
a_inv, work, clip, apparent_mass, tau_limit, scalars)``.
"""

from __future__ import annotations

import math
import os
import pathlib
import tempfile

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic


def _ensure_writable_cache() -> None:
    """numba caches beside this file; where that is read-only (an installed package) and no
    NUMBA_CACHE_DIR is set, cache under the system temp dir instead of failing at import."""
    if not numba.config.CACHE_DIR and not os.access(pathlib.Path(__file__).parent, os.W_OK):
        numba.config.CACHE_DIR = os.path.join(tempfile.gettempdir(), "robot_rl-numba-cache")


_ensure_writable_cache()

# Indices into ``counts`` (int64) and ``scalars`` (float64).
TARGET_TICKS, GAIN_TICKS, TICKS = 0, 1, 2
ALPHA_TARGET, ALPHA_GAIN, DAMPING_RATIO, K_NS, D_NS, LAMBDA2, RATE_STEP = range(7)
N_SCALARS = 7
#: ``work`` holds four 6x6 matrices (A, A X, the next X, the Cholesky factor), then 6-vectors:
#: the wrench, J t0 / X J t0, and the clipped pose error ``work[4, 2]``.
WORK_SHAPE = (5, 6, 6)
STATUS_OK, STATUS_NON_FINITE = 0, 1

_jit = numba.njit(cache=True, error_model="numpy")
_VEC, _VEC_ANY, _MAT_ANY = types.float64[::1], types.float64[:], types.float64[:, :]
#: Types of ``ctl``: ref, goal, gains, k_goal, kq_ns, out, tau, counts, a_inv, work, clip,
#: apparent_mass, tau_limit, scalars.
CTL_TYPE = types.Tuple((_VEC,) * 7 + (types.int64[::1], types.float64[:, ::1], types.float64[:, :, ::1]) + (_VEC,) * 4)
#: Inputs q, dq, tcp_pos, tcp_rot, jac, bias in any layout (views into a simulator's arrays, too):
#: one compiled version serves all, and other dtypes get numba's "no matching definition" error.
_INPUT_TYPES = (_VEC_ANY, _VEC_ANY, _VEC_ANY, _MAT_ANY, _MAT_ANY, _VEC_ANY)


@_jit
def _filter(ref, goal, gains, k_goal, counts, apparent_mass, scalars):
    if counts[TARGET_TICKS]:
        counts[TARGET_TICKS] -= 1
        alpha = scalars[ALPHA_TARGET]
        for i in range(12):
            ref[i] += (goal[i] - ref[i]) * alpha
        if not counts[TARGET_TICKS]:
            for i in range(12):
                ref[i] = goal[i]
    if counts[GAIN_TICKS]:
        counts[GAIN_TICKS] -= 1
        alpha = scalars[ALPHA_GAIN]
        done = not counts[GAIN_TICKS]
        for i in range(6):
            gains[i] = -k_goal[i] if done else gains[i] * (1.0 - alpha) - alpha * k_goal[i]
            gains[6 + i] = math.sqrt(-(gains[i] * apparent_mass[i])) * (-2.0 * scalars[DAMPING_RATIO])


@_jit
def _wrench(ref, gains, clip, tcp_pos, tcp_rot, jac, dq, wrench, err_clipped):
    """``-K e_c - D J dq`` into ``wrench`` (6,), ``e_c`` into ``err_clipped``: the clipped pose
    error, its rotation part vee(M - M^T) with M = R R_ref^T (the reference stored halved)."""
    for i in range(3):
        err_clipped[i] = tcp_pos[i] - ref[i]
    for a, b, i in ((2, 1, 3), (0, 2, 4), (1, 0, 5)):  # vee: (2,1), (0,2), (1,0)
        m_ab = tcp_rot[a, 0] * ref[3 + 3 * b] + tcp_rot[a, 1] * ref[4 + 3 * b] + tcp_rot[a, 2] * ref[5 + 3 * b]
        m_ba = tcp_rot[b, 0] * ref[3 + 3 * a] + tcp_rot[b, 1] * ref[4 + 3 * a] + tcp_rot[b, 2] * ref[5 + 3 * a]
        err_clipped[i] = m_ab - m_ba
    for i in range(6):
        twist = 0.0
        for k in range(jac.shape[1]):
            twist += jac[i, k] * dq[k]
        e = err_clipped[i]
        if e > clip[i]:  # comparisons, not min/max: NaN passes through as in numpy
            e = clip[i]
        elif e < -clip[i]:
            e = -clip[i]
        err_clipped[i] = e
        wrench[i] = gains[i] * e + gains[6 + i] * twist


@_jit
def _cholesky_inverse(a, low, inv):
    """``inv = a^-1`` for symmetric positive definite ``a`` (6x6); NaN if it is not."""
    n = a.shape[0]
    for j in range(n):
        s = a[j, j]
        for k in range(j):
            s -= low[j, k] * low[j, k]
        low[j, j] = math.sqrt(s) if s > 0.0 else np.nan
        for i in range(j + 1, n):
            s = a[i, j]
            for k in range(j):
                s -= low[i, k] * low[j, k]
            low[i, j] = s / low[j, j]
    for col in range(n):  # solve L L^T x = e_col
        for i in range(n):
            s = 1.0 if i == col else 0.0
            for k in range(i):
                s -= low[i, k] * inv[k, col]
            inv[i, col] = s / low[i, i]
        for i in range(n - 1, -1, -1):
            s = inv[i, col]
            for k in range(i + 1, n):
                s -= low[k, i] * inv[k, col]
            inv[i, col] = s / low[i, i]


@_jit
def _track_inverse(jac, a_inv, work, counts, lambda2):
    """Keep ``a_inv`` = (J J^T + lambda^2 I)^-1: one Newton-Schulz step X <- X (2I - A X) per
    tick, the exact inverse after reset, on a trace jump, or on a large residual every 32 ticks."""
    a, ax, nxt = work[0], work[1], work[2]
    for i in range(6):
        for j in range(6):
            s = 0.0
            for k in range(jac.shape[1]):
                s += jac[i, k] * jac[j, k]
            a[i, j] = s + lambda2 if i == j else s
    trace = 0.0
    for i in range(6):
        for j in range(6):
            s = 0.0
            for k in range(6):
                s += a[i, k] * a_inv[k, j]
            ax[i, j] = s
        trace += ax[i, i]
    drifted = not abs(trace - 6.0) <= 0.5
    if counts[TICKS] & 31 == 0 and not drifted:
        for i in range(6):
            for j in range(6):
                if not abs(ax[i, j] - (1.0 if i == j else 0.0)) <= 0.25:
                    drifted = True
    counts[TICKS] += 1
    if drifted or counts[TICKS] == 1:
        _cholesky_inverse(a, work[3], a_inv)
        return
    for i in range(6):
        for j in range(6):
            s = 0.0
            for k in range(6):
                s += a_inv[i, k] * ((2.0 if k == j else 0.0) - ax[k, j])
            nxt[i, j] = s
    for i in range(6):
        for j in range(6):
            a_inv[i, j] = nxt[i, j]


@_jit
def _limit(tau, out, tau_limit, rate_step):
    """``out`` += the change from ``out`` (last tick) to ``tau`` clipped to the torque limits,
    itself clipped to the rate step. Returns |out|^2 (NaN passes through the comparisons)."""
    norm2 = 0.0
    for k in range(out.shape[0]):
        t = tau[k]
        if t > tau_limit[k]:
            t = tau_limit[k]
        elif t < -tau_limit[k]:
            t = -tau_limit[k]
        step = t - out[k]
        if step > rate_step:
            step = rate_step
        elif step < -rate_step:
            step = -rate_step
        out[k] += step
        norm2 += out[k] * out[k]
    return norm2


@numba.njit(types.int64(CTL_TYPE, *_INPUT_TYPES), cache=True, error_model="numpy")
def impedance_tick(ctl, q, dq, tcp_pos, tcp_rot, jac, bias):
    """One tick: ``ctl``'s ``out`` becomes the limited torque [Nm]. Returns STATUS_NON_FINITE
    (``out`` zeroed) on a NaN torque, else STATUS_OK. Arguments as the numpy ``compute``."""
    ref, goal, gains, k_goal, kq_ns, out, tau, counts, a_inv, work, clip, apparent_mass, tau_limit, scalars = ctl
    if counts[TARGET_TICKS] or counts[GAIN_TICKS]:
        _filter(ref, goal, gains, k_goal, counts, apparent_mass, scalars)
    wrench, y6 = work[4, 0], work[4, 1]
    _wrench(ref, gains, clip, tcp_pos, tcp_rot, jac, dq, wrench, work[4, 2])
    _track_inverse(jac, a_inv, work, counts, scalars[LAMBDA2])
    n = jac.shape[1]
    for k in range(n):  # posture torque t0 = k_ns (q_ns - q) - d_ns dq, into tau
        tau[k] = (kq_ns[k] - q[k] * scalars[K_NS]) - dq[k] * scalars[D_NS]
    for i in range(6):  # tau = J^T (wrench - X J t0) + t0 + bias: the projection N t0 folded in
        u = 0.0
        for k in range(n):
            u += jac[i, k] * tau[k]
        y6[i] = u
    for i in range(6):
        s = 0.0
        for k in range(6):
            s += a_inv[i, k] * y6[k]
        wrench[i] -= s
    for k in range(n):
        s = 0.0
        for i in range(6):
            s += jac[i, k] * wrench[i]
        tau[k] = s + tau[k] + bias[k]
    if not _limit(tau, out, tau_limit, scalars[RATE_STEP]) < 1e300:  # NaN anywhere
        for k in range(n):
            out[k] = 0.0
        return STATUS_NON_FINITE
    return STATUS_OK


# ------------------------------------------------------------------ native physics calls
_VOID_P = ir.IntType(8).as_pointer()


@intrinsic
def _call_model_data(typingctx, fn_addr, model_addr, data_addr):
    """Call ``void fn(const mjModel*, mjData*)`` given as addresses (e.g. ``mj_step1``)."""
    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.VoidType(), [_VOID_P, _VOID_P])
        fn = builder.inttoptr(args[0], fnty.as_pointer())
        builder.call(fn, [builder.inttoptr(args[1], _VOID_P), builder.inttoptr(args[2], _VOID_P)])
        return context.get_dummy_value()

    return types.void(types.intp, types.intp, types.intp), codegen


@intrinsic
def _call_jacobian(typingctx, fn_addr, model_addr, data_addr, jac_lin_addr, jac_rot_addr, index):
    """Call ``void fn(const mjModel*, const mjData*, double* jacp, double* jacr, int index)``."""
    def codegen(context, builder, signature, args):
        f64p = ir.DoubleType().as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [_VOID_P, _VOID_P, f64p, f64p, ir.IntType(32)])
        fn = builder.inttoptr(args[0], fnty.as_pointer())
        pointers = [builder.inttoptr(args[1], _VOID_P), builder.inttoptr(args[2], _VOID_P),
                    builder.inttoptr(args[3], f64p), builder.inttoptr(args[4], f64p)]
        builder.call(fn, pointers + [builder.trunc(args[5], ir.IntType(32))])
        return context.get_dummy_value()

    return types.void(types.intp, types.intp, types.intp, types.intp, types.intp, types.intp), codegen


@numba.njit(types.int64(types.UniTuple(types.intp, 8), types.intp, CTL_TYPE, *_INPUT_TYPES, _VEC_ANY),
           cache=True, nogil=True, error_model="numpy")
def run_native_ticks(native, steps, ctl, q, dq, tcp_pos, tcp_rot, jac, bias, ctrl):
    """``steps`` physics ticks: pre-step, Jacobian, :func:`impedance_tick`, torque into ``ctrl``,
    post-step. ``native`` = (pre_step, jacobian, post_step, model, data, jac_lin, jac_rot, site)
    addresses/index (MuJoCo: mj_step1, mj_jacSite, mj_step2); the input arrays are views of the
    engine's data that the native calls refresh. Returns STATUS_NON_FINITE if a tick's torque was
    NaN (that tick's post-step not run), else STATUS_OK."""
    pre_step, jacobian, post_step, model, data, jac_lin, jac_rot, site = native
    out = ctl[5]
    for _ in range(steps):
        _call_model_data(pre_step, model, data)
        _call_jacobian(jacobian, model, data, jac_lin, jac_rot, site)
        if impedance_tick(ctl, q, dq, tcp_pos, tcp_rot, jac, bias) != STATUS_OK:
            return STATUS_NON_FINITE
        for k in range(out.shape[0]):
            ctrl[k] = out[k]
        _call_model_data(post_step, model, data)
    return STATUS_OK
