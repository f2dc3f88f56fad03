"""The numba-compiled impedance controller against its numpy reference.

On random gains, targets, states and slowly moving Jacobians (with the odd jump, so both the
Newton-Schulz step and the exact inverse run), both give the same torques, pose errors, filtered
references and stiffness tick after tick, to float rounding. Misshapen or non-float64 inputs
raise; without numba the factory falls back to the reference with a warning (or raises when the
compiled one was asked for); a read-only package directory moves numba's cache to a temp dir.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.arm.impedance import (
    STIFFNESS_POS_RANGE_N_M,
    STIFFNESS_ROT_RANGE_NM_RAD,
    CartesianImpedanceController,
    ImpedanceConfig,
)

numba = pytest.importorskip("numba", reason="numba is not installed: the compiled controller is not built")

import drivers.arm
from drivers.arm import impedance_kernel
from drivers.arm.impedance_compiled import CompiledImpedanceController

#: Float rounding differs (loops vs BLAS, Cholesky vs LU inverse); over a few hundred ticks the
#: torques agree to ~1e-12 Nm. Far above that, and far below any torque that matters.
TORQUE_ATOL_NM = 1e-8


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    quat = rng.normal(size=4)
    w, x, y, z = quat / np.linalg.norm(quat)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


def random_config(rng: np.random.Generator) -> ImpedanceConfig:
    return ImpedanceConfig(
        stiffness_pos_n_m=rng.uniform(*STIFFNESS_POS_RANGE_N_M),
        stiffness_rot_nm_rad=rng.uniform(*STIFFNESS_ROT_RANGE_NM_RAD),
        damping_ratio=rng.uniform(0.5, 1.5),
        nullspace_stiffness_nm_rad=rng.uniform(0.0, 20.0),
        clip_pos_m=tuple(rng.uniform(0.005, 0.05, 3)),
        clip_rot_rad=tuple(rng.uniform(0.02, 0.3, 3)),
        max_torque_rate_nm_s=rng.uniform(100.0, 2000.0),
        target_filter_s=rng.choice([0.0, 0.005, 0.02]),
        gain_filter_s=rng.choice([0.0, 0.01]),
        nullspace_damping_lambda=rng.uniform(0.0, 0.1),
        dt_s=0.002,
    )


def run_both(seed: int, ticks: int = 120) -> None:
    """Drive the reference and the compiled controller with the same inputs; compare every tick."""
    rng = np.random.default_rng(seed)
    config = random_config(rng)
    ref = CartesianImpedanceController(dataclasses.replace(config, kernel="numpy"))
    fast = CompiledImpedanceController(dataclasses.replace(config, kernel="numba"))
    pos0, quat0, q0 = rng.uniform(-0.5, 0.5, 3), rng.normal(size=4), rng.uniform(-1, 1, 7)
    tau0 = rng.uniform(-20, 20, 7)
    jac = rng.normal(size=(6, 7))
    jac_view = np.zeros((6, 9))[:, 1:8]  # a strided view, as the sim passes MuJoCo's Jacobian
    for ctrl in (ref, fast):
        ctrl.reset(pos0, quat0, q0, tau=tau0)
    for tick in range(ticks):
        if tick % 40 == 0:  # a new target (and sometimes new gains) every 40 ticks
            target = (pos0 + rng.uniform(-0.1, 0.1, 3), rng.normal(size=4))
            gains = (rng.uniform(*STIFFNESS_POS_RANGE_N_M), rng.uniform(*STIFFNESS_ROT_RANGE_NM_RAD))
            for ctrl in (ref, fast):
                ctrl.set_target(*target)
                if tick:
                    ctrl.set_gains(*gains)
        jac = jac + rng.normal(scale=1e-3, size=jac.shape) if tick != 70 else 2.0 * jac  # tick 70: a jump
        jac_view[:] = jac
        inputs = (rng.uniform(-2, 2, 7), rng.uniform(-1, 1, 7), pos0 + rng.uniform(-0.1, 0.1, 3),
                  random_rotation(rng), jac_view, rng.uniform(-30, 30, 7))  # fmt: skip
        expected = ref.compute(*inputs).copy()
        np.testing.assert_allclose(fast.compute(*inputs), expected, rtol=0, atol=TORQUE_ATOL_NM, err_msg=f"tick {tick}")
        np.testing.assert_allclose(fast.pose_error, ref.pose_error, rtol=0, atol=1e-12)
        np.testing.assert_allclose(fast.reference_pos, ref.reference_pos, rtol=0, atol=1e-12)
        np.testing.assert_allclose(fast.stiffness, ref.stiffness, rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_compiled_controller_equals_the_numpy_reference_on_random_states(seed: int) -> None:
    run_both(seed)


def test_compiled_controller_reports_the_same_counters_as_the_reference() -> None:
    config = ImpedanceConfig(target_filter_s=0.01, gain_filter_s=0.1)
    ref, fast = CartesianImpedanceController(config), CompiledImpedanceController(config)
    for ctrl in (ref, fast):
        ctrl.reset(np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(7))
        ctrl.set_target(np.array([0.05, 0.0, 0.0]), np.array([1.0, 0.0, 0.0, 0.0]))
        ctrl.set_gains(500.0, 30.0)
    inputs = (np.zeros(7), np.zeros(7), np.zeros(3), np.eye(3), np.hstack([np.eye(6), np.zeros((6, 1))]), np.zeros(7))
    for _ in range(3):
        ref.compute(*inputs)
        fast.compute(*inputs)
    assert (fast._target_ticks_left, fast._gain_ticks_left, fast._ticks) == (ref._target_ticks_left, ref._gain_ticks_left, ref._ticks)
    assert fast._ticks == 3 and fast._target_ticks_left > 0 and fast._gain_ticks_left > 0


@pytest.mark.parametrize(
    "index, bad",
    [(0, np.zeros(6)), (3, np.eye(4)), (4, np.zeros((7, 6))), (5, np.zeros(8))],
    ids=["q-6", "rot-4x4", "jac-transposed", "bias-8"],
)
def test_misshapen_inputs_raise_value_error(index: int, bad: np.ndarray) -> None:
    ctrl = CompiledImpedanceController()
    ctrl.reset(np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(7))
    inputs = [np.zeros(7), np.zeros(7), np.zeros(3), np.eye(3), np.zeros((6, 7)), np.zeros(7)]
    inputs[index] = bad
    with pytest.raises(ValueError, match="compute needs shapes"):
        ctrl.compute(*inputs)


def test_non_float64_inputs_raise_type_error() -> None:
    ctrl = CompiledImpedanceController()
    ctrl.reset(np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(7))
    with pytest.raises(TypeError, match="No matching definition"):
        ctrl.compute(np.zeros(7, np.float32), np.zeros(7), np.zeros(3), np.eye(3), np.zeros((6, 7)), np.zeros(7))


def test_non_finite_torque_zeroes_the_output_and_raises() -> None:
    ctrl = CompiledImpedanceController()
    ctrl.reset(np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(7), tau=np.full(7, 3.0))
    with pytest.raises(FloatingPointError, match="non-finite torque"):
        ctrl.compute(np.zeros(7), np.zeros(7), np.zeros(3), np.eye(3), np.full((6, 7), np.nan), np.zeros(7))
    np.testing.assert_array_equal(ctrl.kernel_state[5], 0.0)  # ``out``: nothing stale left to send


def test_without_numba_auto_falls_back_to_numpy_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    from drivers.arm.impedance import make_impedance_controller

    monkeypatch.setitem(sys.modules, "numba", None)  # "import numba" now raises ImportError
    for name in ("impedance_compiled", "impedance_kernel"):  # forget them: the next import re-runs them
        monkeypatch.delitem(sys.modules, f"drivers.arm.{name}")
        monkeypatch.delattr(drivers.arm, name, raising=False)
    with pytest.warns(RuntimeWarning, match="numba is not importable"):
        ctrl = make_impedance_controller(ImpedanceConfig(kernel="auto"))
    assert type(ctrl) is CartesianImpedanceController
    with pytest.raises(ImportError):
        make_impedance_controller(ImpedanceConfig(kernel="numba"))


def test_read_only_package_dir_moves_the_cache_to_a_temp_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    monkeypatch.setattr(impedance_kernel.os, "access", lambda path, mode: False)
    impedance_kernel._ensure_writable_cache()
    assert numba.config.CACHE_DIR.startswith(tempfile.gettempdir())

    monkeypatch.setattr(numba.config, "CACHE_DIR", "/somewhere/chosen")
    impedance_kernel._ensure_writable_cache()
    assert numba.config.CACHE_DIR == "/somewhere/chosen"  # NUMBA_CACHE_DIR wins
