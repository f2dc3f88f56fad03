"""Checks every arm backend passes, simulated or real (over franka-sim here): the
:class:`~robot_rl.backends.arm.ArmBackend` contract as observable behaviour.

``check_arm_backend(backend)`` takes an unconnected backend, connects it, and checks: the spec
is known before connecting; ``reset`` reaches the home pose (and a
TCP target from there); states are finite, well-shaped and
inside the joint limits; ``command`` returns what it sent, within the workspace box and the step,
rotation and gripper limits, and passes a target inside them unchanged; a bad target is a
ValueError; the arm moves to a commanded target; ``stop`` holds the pose short of a target.
"""

from __future__ import annotations

import numpy as np

from robot_rl.backends.arm import ArmBackend, ArmSpec, ArmState, ArmTarget
from robot_rl.geometry import (
    quat_conj,
    quat_from_axis_angle,
    quat_mul,
    quat_to_axis_angle,
)

PERIOD_S = 0.1


def _target(state: ArmState, offset_m, yaw_rad: float = 0.0, width_m: float = 0.04) -> ArmTarget:
    quat = quat_mul(state.tcp_quat_wxyz, quat_from_axis_angle(np.array([0.0, 0.0, yaw_rad])))
    return ArmTarget(tcp_pos_m=state.tcp_pos_m + np.asarray(offset_m, dtype=np.float64), tcp_quat_wxyz=quat, gripper_width_m=width_m)


def check_state(state: ArmState, spec: ArmSpec) -> None:
    shapes = {"tcp_pos_m": (3,), "tcp_quat_wxyz": (4,), "tcp_linvel_m_s": (3,), "tcp_angvel_rad_s": (3,),
              "joint_pos_rad": (spec.dof,), "joint_vel_rad_s": (spec.dof,), "ext_wrench_n_nm": (6,)}
    for name, shape in shapes.items():
        value = getattr(state, name)
        assert value.shape == shape and np.all(np.isfinite(value)), f"{name}: {value!r}"
    assert abs(np.linalg.norm(state.tcp_quat_wxyz) - 1.0) < 1e-6
    limits = spec.joint_limits_rad
    assert np.all(state.joint_pos_rad >= limits[:, 0] - 0.02) and np.all(state.joint_pos_rad <= limits[:, 1] + 0.02)
    assert 0.0 <= state.gripper_width_m <= spec.gripper_max_width_m + 0.005


def check_command_limits(backend: ArmBackend) -> None:
    spec, state = backend.spec, backend.read_state()
    far = _target(state, [1.0, 0.0, 0.0], yaw_rad=2.0, width_m=10.0)
    sent = backend.command(far)
    assert isinstance(sent, ArmTarget)
    assert np.all(sent.tcp_pos_m >= spec.workspace_low_m - 1e-9) and np.all(sent.tcp_pos_m <= spec.workspace_high_m + 1e-9)
    assert np.linalg.norm(sent.tcp_pos_m - state.tcp_pos_m) <= spec.max_step_m + 1e-3  # state moved a little meanwhile
    turn = np.linalg.norm(quat_to_axis_angle(quat_mul(sent.tcp_quat_wxyz, quat_conj(state.tcp_quat_wxyz))))
    assert turn <= spec.max_step_rad + 0.01
    assert sent.gripper_width_m == spec.gripper_max_width_m
    state = backend.read_state()
    near = _target(state, [0.0, 0.005, 0.0], width_m=min(0.04, spec.gripper_max_width_m))
    sent = backend.command(near)
    np.testing.assert_allclose(sent.tcp_pos_m, near.tcp_pos_m, atol=1e-9)
    np.testing.assert_allclose(sent.tcp_quat_wxyz, near.tcp_quat_wxyz, atol=1e-9)
    bad = ArmTarget(tcp_pos_m=np.array([np.nan, 0.0, 0.3]), tcp_quat_wxyz=state.tcp_quat_wxyz, gripper_width_m=0.0)
    try:
        backend.command(bad)
    except ValueError:
        pass
    else:
        raise AssertionError("command() accepted a NaN target")


def check_moves_then_stops(backend: ArmBackend, seconds: float = 1.5) -> None:
    """Reach a target 2 cm away; then head for one 5 cm away, ``stop()`` early, and stay put."""
    goal = _target(backend.read_state(), [0.0, 0.02, 0.0], width_m=0.0)
    for _ in range(int(seconds / PERIOD_S)):
        backend.command(goal)
        backend.sync(PERIOD_S)
    assert np.linalg.norm(backend.read_state().tcp_pos_m - goal.tcp_pos_m) < 0.006
    away = _target(backend.read_state(), [0.0, -0.05, 0.0], width_m=0.0)
    backend.command(away)
    backend.stop()
    held = backend.read_state().tcp_pos_m
    for _ in range(5):
        backend.sync(PERIOD_S)
    final = backend.read_state()
    assert np.linalg.norm(final.tcp_pos_m - held) < 0.015, "the arm kept moving after stop()"
    assert np.linalg.norm(final.tcp_pos_m - away.tcp_pos_m) > 0.02, "stop() did not stop the arm short of its target"


def check_arm_backend(backend: ArmBackend) -> None:
    assert isinstance(backend, ArmBackend) and backend.family == "arm"
    assert isinstance(backend.spec, ArmSpec) and not backend.connected
    backend.connect()
    try:
        assert backend.connected
        home = backend.spec.home_joint_pos_rad
        state = backend.reset(home)
        np.testing.assert_allclose(state.joint_pos_rad, home, atol=0.03)
        check_state(state, backend.spec)
        above = _target(state, [0.0, 0.0, 0.03], width_m=0.0)
        assert np.linalg.norm(backend.reset(home, above).tcp_pos_m - above.tcp_pos_m) < 0.01, "reset(q, target)"
        check_command_limits(backend)
        check_moves_then_stops(backend)
        check_state(backend.read_state(), backend.spec)
    finally:
        backend.close()
    assert not backend.connected
