"""The gains and limits of the Cartesian impedance controller (:class:`ImpedanceConfig`), checked
at construction, and the gain ranges the stability tests cover (:mod:`drivers.arm.impedance` holds the
controller; it re-exports these names)."""

from __future__ import annotations

import dataclasses

import numpy as np

from drivers.arm import panda

#: Gains inside these ranges are covered by the stability tests (tests/drivers/test_impedance.py).
STIFFNESS_POS_RANGE_N_M = (100.0, 3000.0)
STIFFNESS_ROT_RANGE_NM_RAD = (10.0, 150.0)
NON_FINITE_TORQUE = "impedance controller: non-finite torque; check the state and Jacobian inputs"
KERNELS = ("auto", "numba", "numpy")


@dataclasses.dataclass(frozen=True)
class ImpedanceConfig:
    """Gains and limits of :class:`CartesianImpedanceController`.

    Attributes:
        stiffness_pos_n_m: translational stiffness K (N/m); tested range STIFFNESS_POS_RANGE_N_M.
        stiffness_rot_nm_rad: rotational stiffness (Nm/rad); tested range STIFFNESS_ROT_RANGE_NM_RAD.
        damping_ratio: zeta in D = 2 zeta sqrt(K m), per axis.
        apparent_mass_kg: m for the translational axes (1 kg: the usual "unit mass" choice).
        apparent_inertia_kg_m2: m for the rotational axes (the wrist's reflected inertia).
        nullspace_stiffness_nm_rad: posture stiffness in the nullspace.
        clip_pos_m: per-axis (x, y, z) limit of the position error fed to the spring.
        clip_rot_rad: per-axis limit of the orientation error fed to the spring.
        max_torque_rate_nm_s: largest change of commanded torque per second (Franka: 1000).
        torque_limits_nm: per-joint absolute torque limit.
        target_filter_s: time constant of the first-order filter on the target pose.
        gain_filter_s: time constant of the filter on stiffness changes.
        nullspace_damping_lambda: damping of the least-squares inverse in the projector.
        dt_s: control period.
        kernel: how ``compute`` runs: "numba" (compiled), "numpy" (the reference) or "auto"
            (numba when importable, else numpy with a warning).
    """

    stiffness_pos_n_m: float = 1000.0
    stiffness_rot_nm_rad: float = 60.0
    damping_ratio: float = 1.0
    apparent_mass_kg: float = 1.0
    apparent_inertia_kg_m2: float = 0.1
    nullspace_stiffness_nm_rad: float = 10.0
    clip_pos_m: tuple[float, float, float] = (0.02, 0.02, 0.02)
    clip_rot_rad: tuple[float, float, float] = (0.1, 0.1, 0.1)
    max_torque_rate_nm_s: float = panda.MAX_TORQUE_RATE_NM_S
    torque_limits_nm: tuple[float, ...] = panda.TORQUE_LIMITS_NM
    target_filter_s: float = 0.01
    gain_filter_s: float = 0.1
    nullspace_damping_lambda: float = 0.01
    dt_s: float = 0.001
    kernel: str = "auto"

    def __post_init__(self) -> None:
        positive = ("stiffness_pos_n_m", "stiffness_rot_nm_rad", "max_torque_rate_nm_s", "dt_s", "apparent_mass_kg", "apparent_inertia_kg_m2")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"ImpedanceConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("damping_ratio", "nullspace_stiffness_nm_rad", "target_filter_s", "gain_filter_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"ImpedanceConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("clip_pos_m", "clip_rot_rad"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != (3,) or not np.all(np.isfinite(value)) or value.min() <= 0:
                raise ValueError(f"ImpedanceConfig.{name} needs 3 positive finite per-axis limits, got {getattr(self, name)}")
        limits = np.asarray(self.torque_limits_nm, dtype=np.float64)
        if limits.ndim != 1 or limits.size < 1 or not np.all(np.isfinite(limits)) or limits.min() <= 0:
            raise ValueError(f"ImpedanceConfig.torque_limits_nm must be positive and finite, got {self.torque_limits_nm}")
        if self.kernel not in KERNELS:
            raise ValueError(f"ImpedanceConfig.kernel must be one of {KERNELS}, got {self.kernel!r}")
        if not 0 <= self.nullspace_damping_lambda < 1:
            raise ValueError(f"ImpedanceConfig.nullspace_damping_lambda must be in [0, 1), got {self.nullspace_damping_lambda}")

    @property
    def dof(self) -> int:
        return len(self.torque_limits_nm)
