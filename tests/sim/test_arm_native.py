"""The sim arm's whole-control-step native loop (sim/arm/native.py + run_native_ticks).

The native loop gives bit-for-bit the state that the same compiled controller gives ticked from
Python (so nothing is reordered or cached wrongly across MuJoCo's C calls), stays within float
rounding of the numpy reference controller over a reach, and raises like the Python loop.
"""

from __future__ import annotations

import numpy as np
import pytest

from drivers.arm.impedance import ImpedanceConfig
from drivers.arm.panda import READY_JOINT_POS_RAD
from robot_rl.backends.arm import ArmTarget, ObjectSpec
from sim.arm.backend import MujocoArm, MujocoArmConfig
from sim.arm.native import native_tick_args, native_ticks_unavailable

pytest.importorskip("numba", reason="numba is not installed: the sim arm ticks from Python")

CUBE = ObjectSpec("cube", half_size_m=(0.02, 0.02, 0.02))


def reaching_arm(kernel: str) -> MujocoArm:
    """A connected arm (with a cube on the table) just sent a 5 cm reach with a closing gripper."""
    arm = MujocoArm(MujocoArmConfig(impedance=ImpedanceConfig(kernel=kernel), cameras=()), objects=(CUBE,))
    arm.connect()
    arm.reset(np.array(READY_JOINT_POS_RAD))
    state = arm.read_state()
    arm.command(ArmTarget(state.tcp_pos_m + np.array([0.04, -0.03, -0.02]), state.tcp_quat_wxyz, 0.03))
    return arm


def snapshot(arm: MujocoArm) -> np.ndarray:
    d = arm.data
    return np.concatenate([d.qpos, d.qvel, d.ctrl, d.qacc_warmstart, [d.time]])


def test_native_ticks_equal_python_ticks_bit_for_bit() -> None:
    native, python = reaching_arm("numba"), reaching_arm("numba")
    assert native.native_ticks, native_ticks_unavailable(native.model, native.data)
    for steps in (1, 7, 50, 192):
        native.run_ticks(steps)
        python.run_ticks(steps, native=False)
        np.testing.assert_array_equal(snapshot(native), snapshot(python))


def test_compiled_sim_arm_tracks_the_numpy_reference() -> None:
    fast, ref = reaching_arm("numba"), reaching_arm("numpy")
    for _ in range(10):  # 0.5 s of a reach, in 10 Hz control steps
        fast.sync(0.05)
        ref.sync(0.05)
    np.testing.assert_allclose(fast.data.qpos, ref.data.qpos, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fast.data.ctrl, ref.data.ctrl, rtol=0, atol=1e-6)
    assert np.linalg.norm(fast.read_state().tcp_pos_m - ref.read_state().tcp_pos_m) < 1e-9


def test_native_loop_raises_on_a_non_finite_torque_like_the_python_loop() -> None:
    for native in (True, False):
        arm = reaching_arm("numba")
        arm.model.opt.gravity[:] = np.nan  # NaN bias forces reach the controller (MuJoCo does not check gravity)
        with pytest.raises(FloatingPointError, match="non-finite torque"):
            arm.run_ticks(5, native=native)
        np.testing.assert_array_equal(arm.controller.kernel_state[5], 0.0)


def test_native_tick_args_rejects_a_jacobian_buffer_it_cannot_write() -> None:
    arm = reaching_arm("numba")
    with pytest.raises(ValueError, match="C-contiguous float64"):
        native_tick_args(arm.model, arm.data, np.zeros((arm.model.nv, 6)).T, 0)
