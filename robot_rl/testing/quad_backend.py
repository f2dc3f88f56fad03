"""Checks every quadrotor backend passes, simulated or real (the Crazyflie over the CRTP peer here): the
:class:`~robot_rl.backends.quadrotor.QuadBackend` contract as observable behaviour.

``check_quad_backend(backend, start_m)`` takes an unconnected backend that can be placed
(:class:`~robot_rl.backends.quadrotor.QuadSceneControl`), connects it and checks: the spec is known
before connecting and nothing answers before ``connect()``; it connects disarmed with a finite,
well-shaped state and a unit quaternion; ``set_state`` puts it at ``start_m``; at every level it
accepts, ``command`` returns what ``clip_quad_command`` makes of an out-of-limits command and an
in-limits command (nearly) unchanged, and the first command arms it; a level it does not accept
raises; ``stop()`` lands and disarms; a command re-arms it; ``close()`` disconnects.
"""

from __future__ import annotations

import numpy as np

from robot_rl.backends.quadrotor import (
    QUAD_COMMAND_LEVELS,
    AttitudeCommand,
    MotorThrusts,
    QuadBackend,
    QuadSceneControl,
    QuadState,
    ThrustRates,
    VelocityCommand,
    clip_quad_command,
    inside_geofence,
)

LEVEL_WXYZ = np.array([1.0, 0.0, 0.0, 0.0])


def commands(level: str, hover: float, scale: float) -> object:
    """A command of ``level``; ``scale`` 1 stays inside every default limit, 50 breaks them all."""
    if level == "motor_thrusts":
        return MotorThrusts(thrust_frac=np.full(4, hover) * (1.0 if scale == 1 else 3.0))
    if level == "thrust_rates":
        return ThrustRates(collective_thrust_frac=hover, body_rates_rad_s=np.array([0.02, -0.02, 0.03]) * scale)
    if level == "attitude":
        return AttitudeCommand(collective_thrust_frac=hover, roll_rad=0.01 * scale, pitch_rad=-0.01 * scale,
                               yaw_rate_rad_s=0.02 * scale)
    return VelocityCommand(vel_m_s=np.array([0.02, 0.0, 0.01]) * scale, yaw_rate_rad_s=0.02 * scale)


def check_state(state: QuadState) -> None:
    for name in ("pos_m", "quat_wxyz", "vel_m_s", "body_rates_rad_s"):
        value = getattr(state, name)
        assert np.all(np.isfinite(value)) and not value.flags.writeable, f"{name}: {value!r}"
    assert abs(np.linalg.norm(state.quat_wxyz) - 1.0) < 1e-2


def assert_close(sent: object, expected: object, level: str) -> None:
    """Equal up to what a real link quantizes (16-bit thrust, float32 angles)."""
    for name, value in vars(expected).items():
        np.testing.assert_allclose(getattr(sent, name), value, atol=1e-3, err_msg=f"{level}.{name}")


def check_commands(backend: QuadBackend) -> None:
    spec = backend.spec
    for level in spec.command_levels:
        state = backend.read_state()
        wild = commands(level, spec.hover_thrust_frac, 50.0)
        sent = backend.command(wild)
        assert type(sent) is type(wild) and backend.read_state().armed, level
        assert_close(sent, clip_quad_command(wild, spec, state), level)
        tame = commands(level, spec.hover_thrust_frac, 1.0)
        assert_close(backend.command(tame), tame, level)
    refused = [level for level in QUAD_COMMAND_LEVELS if level not in spec.command_levels]
    for level in refused:
        try:
            backend.command(commands(level, spec.hover_thrust_frac, 1.0))
        except (ValueError, NotImplementedError) as err:
            assert level in str(err) or "motor" in str(err), err
        else:
            raise AssertionError(f"a {level} command was accepted by a backend that declares {spec.command_levels}")


def check_stop_lands(backend: QuadBackend, within_s: float = 8.0) -> None:
    backend.stop()
    for _ in range(round(within_s / 0.05)):
        if not backend.read_state().armed:
            break
        backend.sync(0.05)
    state = backend.read_state()
    assert not state.armed and state.pos_m[2] < 0.06, state


def check_quad_backend(backend: QuadBackend, start_m: np.ndarray) -> None:
    assert isinstance(backend, QuadBackend) and isinstance(backend, QuadSceneControl)
    assert not backend.connected and backend.spec.command_levels and inside_geofence(backend.spec, start_m)
    try:
        backend.read_state()
    except RuntimeError:
        pass
    else:
        raise AssertionError("read_state() answered before connect()")
    with backend:
        state = backend.read_state()
        check_state(state)
        assert not state.armed
        backend.set_state(start_m, LEVEL_WXYZ, np.zeros(3), np.zeros(3))
        np.testing.assert_allclose(backend.read_state().pos_m, start_m, atol=0.15)
        check_commands(backend)
        check_stop_lands(backend)
        backend.command(commands(backend.spec.command_levels[0], backend.spec.hover_thrust_frac, 1.0))
        assert backend.read_state().armed  # a command resumes
        backend.stop()
    assert not backend.connected
