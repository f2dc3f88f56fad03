"""The Cartesian impedance controller with its tick compiled by numba.

:class:`CompiledImpedanceController` is the numpy :class:`~drivers.arm.impedance.
CartesianImpedanceController` (same setup, targets, gains, filters, limits and errors) whose
``compute`` runs :func:`drivers.arm.impedance_kernel.impedance_tick` on the very arrays the numpy
reference keeps. Equal to the reference up to float rounding (tests/drivers/test_impedance_kernel.py);
~10x cheaper per tick. Importing this module imports numba: use
:func:`drivers.arm.impedance.make_impedance_controller`, which falls back to numpy without it.
"""

from __future__ import annotations

import numpy as np

from drivers.arm import impedance_kernel as kernel
from drivers.arm.impedance import (
    NON_FINITE_TORQUE,
    CartesianImpedanceController,
    ImpedanceConfig,
)


def _count(index: int) -> property:
    """A tick counter of the numpy reference, kept in the int64 array the kernel updates."""

    def get(self: CompiledImpedanceController) -> int:
        return int(self._counts[index])

    def set_(self: CompiledImpedanceController, value: int) -> None:
        self._counts[index] = value

    return property(get, set_)


class CompiledImpedanceController(CartesianImpedanceController):
    """The impedance controller with a numba tick; inputs must be float64 arrays.

    ``kernel_state`` is the tuple of arrays that :func:`~drivers.arm.impedance_kernel.run_native_ticks`
    takes, for a simulation that runs many ticks in one call.
    """

    _target_ticks_left = _count(kernel.TARGET_TICKS)
    _gain_ticks_left = _count(kernel.GAIN_TICKS)
    _ticks = _count(kernel.TICKS)

    def __init__(self, config: ImpedanceConfig | None = None) -> None:
        self._counts = np.zeros(3, dtype=np.int64)  # before the reference's __init__ sets counters
        super().__init__(config)
        cfg = self.config
        scalars = np.zeros(kernel.N_SCALARS)
        scalars[kernel.ALPHA_TARGET] = self._alpha_target
        scalars[kernel.ALPHA_GAIN] = self._alpha_gain
        scalars[kernel.DAMPING_RATIO] = cfg.damping_ratio
        scalars[kernel.K_NS] = self._k_ns
        scalars[kernel.D_NS] = self._d_ns
        scalars[kernel.LAMBDA2] = cfg.nullspace_damping_lambda**2
        scalars[kernel.RATE_STEP] = cfg.max_torque_rate_nm_s * cfg.dt_s
        self._work = np.zeros(kernel.WORK_SHAPE)
        self.kernel_state = (
            self._ref, self._goal, self._gains, self._k_goal, self._kq_ns, self._out, np.zeros(cfg.dof), self._counts,
            self._a_inv, self._work, self._clip, self._apparent_mass, self._tau_limit, scalars,
        )  # fmt: skip
        n = cfg.dof
        self._input_shapes = ((n,), (n,), (3,), (3, 3), (6, n), (n,))

    @property
    def pose_error(self) -> np.ndarray:
        """Last clipped pose error ``e_c`` (6,): position [m], rotation vector [rad]."""
        return self._work[4, 2].copy()

    def compute(self, q: np.ndarray, dq: np.ndarray, tcp_pos: np.ndarray, tcp_rot: np.ndarray, jac: np.ndarray,
                bias: np.ndarray) -> np.ndarray:
        """Joint torques [Nm] for one tick; as the numpy reference's ``compute`` (float64 inputs)."""
        if not self._shapes_ok(q, dq, tcp_pos, tcp_rot, jac, bias):
            raise ValueError(f"compute needs shapes {self._input_shapes} (q, dq, tcp_pos, tcp_rot, jac, bias), "
                             f"got {tuple(np.shape(x) for x in (q, dq, tcp_pos, tcp_rot, jac, bias))}")
        if kernel.impedance_tick(self.kernel_state, q, dq, tcp_pos, tcp_rot, jac, bias) != kernel.STATUS_OK:
            raise FloatingPointError(NON_FINITE_TORQUE)
        return self._out

    def _shapes_ok(self, q: np.ndarray, dq: np.ndarray, tcp_pos: np.ndarray, tcp_rot: np.ndarray, jac: np.ndarray,
                   bias: np.ndarray) -> bool:
        """The kernel does not check bounds. Checked through ndim/len/size (ints), not ``.shape``
        (a new tuple per call), so a tick allocates nothing."""
        n = self._out.size
        try:
            return (q.ndim == dq.ndim == tcp_pos.ndim == bias.ndim == 1 and tcp_rot.ndim == jac.ndim == 2
                    and q.size == dq.size == bias.size == n and tcp_pos.size == 3
                    and len(tcp_rot) == 3 and tcp_rot.size == 9 and len(jac) == 6 and jac.size == 6 * n)
        except AttributeError:  # not arrays
            return False
