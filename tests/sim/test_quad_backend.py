"""The MuJoCo quadrotor backend: lifecycle, spec before connect, every command level clipped and
returned as applied, arming, stop() (lands, disarms; cuts motors on the ground), cameras, set_state,
and that registering the family imports neither MuJoCo nor JAX."""

import subprocess
import sys

import numpy as np
import pytest

from robot_rl.backends.base import Backend
from robot_rl.backends.quadrotor import (
    AttitudeCommand,
    MotorThrusts,
    QuadBackend,
    QuadSceneControl,
    ThrustRates,
    VelocityCommand,
)
from sim.quad.backend import (
    TOUCHDOWN_HEIGHT_M,
    MujocoQuad,
    MujocoQuadConfig,
    make_backend,
)

LEVEL = np.array([1.0, 0, 0, 0])


def _airborne(quad, pos=(0.0, 0.0, 1.5)):
    quad.set_state(np.array(pos), LEVEL, np.zeros(3), np.zeros(3))


def test_spec_is_known_before_connect_and_nothing_runs_in_init():
    quad = MujocoQuad(MujocoQuadConfig(image_height=32, image_width=40, cameras=("fpv", "chase")))
    assert not quad.connected and quad.model is None
    spec = quad.spec
    assert spec.mass_kg == 0.027 and spec.command_levels == ("motor_thrusts", "thrust_rates", "attitude", "velocity")
    assert spec.cameras["fpv"].shape == (32, 40, 3) and spec.render_cameras == ("fpv", "chase", "overview")
    assert isinstance(quad, Backend) and isinstance(quad, QuadBackend) and isinstance(quad, QuadSceneControl)
    with pytest.raises(RuntimeError, match="not connected"):
        quad.read_state()
    with quad:
        state = quad.read_state()
        assert quad.connected and not state.armed and state.pos_m[2] < 0.02  # on the floor, disarmed
        assert np.isnan(state.motor_speeds_rad_s).all() and np.isnan(state.battery_v)
    assert not quad.connected


def test_commands_are_clipped_and_returned_as_applied_and_the_first_one_arms():
    with MujocoQuad() as quad:
        _airborne(quad)
        sent = quad.command(MotorThrusts(thrust_frac=[1.4, -0.2, 0.5, 0.3]))
        np.testing.assert_array_equal(sent.thrust_frac, [1.0, 0.0, 0.5, 0.3])
        assert quad.read_state().armed
        quad.sync(0.002)
        np.testing.assert_array_equal(quad.data.ctrl, sent.thrust_frac)  # what the motors were given
        sent = quad.command(ThrustRates(collective_thrust_frac=1.3, body_rates_rad_s=[20.0, -20.0, 9.0]))
        assert sent.collective_thrust_frac == 1.0
        np.testing.assert_array_equal(sent.body_rates_rad_s, [10.0, -10.0, 5.0])
        sent = quad.command(AttitudeCommand(collective_thrust_frac=0.5, roll_rad=1.2, pitch_rad=0.0, yaw_rate_rad_s=0.0))
        assert sent.roll_rad == pytest.approx(quad.spec.max_tilt_rad)
        sent = quad.command(VelocityCommand(vel_m_s=[3.0, 4.0, 0.0], yaw_rate_rad_s=0.0))
        np.testing.assert_allclose(np.linalg.norm(sent.vel_m_s), quad.spec.max_speed_m_s)


@pytest.mark.parametrize("level", ["thrust_rates", "attitude", "velocity"])
def test_higher_levels_are_flown_by_the_shared_cascade(level):
    with MujocoQuad() as quad:
        _airborne(quad)
        hover = quad.config.hover_thrust_frac
        command = {"thrust_rates": ThrustRates(collective_thrust_frac=hover, body_rates_rad_s=[0.0, 0.0, 1.0]),
                   "attitude": AttitudeCommand(collective_thrust_frac=hover / np.cos(0.2), roll_rad=0.0, pitch_rad=0.2,
                                               yaw_rate_rad_s=0.0),
                   "velocity": VelocityCommand(vel_m_s=[0.0, 0.5, 0.2], yaw_rate_rad_s=0.0)}[level]
        quad.command(command)
        quad.sync(1.5)
        state = quad.read_state()
        if level == "thrust_rates":
            assert state.body_rates_rad_s[2] == pytest.approx(1.0, abs=0.05) and abs(state.pos_m[2] - 1.5) < 0.1
        elif level == "attitude":
            assert state.vel_m_s[0] > 1.5 and abs(state.vel_m_s[1]) < 0.1  # positive pitch: forward (+x here)
        else:
            # a P velocity loop against drag: a steady-state shortfall of drag / (mass * gain), ~12% here
            np.testing.assert_allclose(state.vel_m_s, [0.0, 0.5, 0.2], atol=0.07)


def test_stop_lands_and_disarms_and_cuts_the_motors_on_the_ground():
    with MujocoQuad() as quad:
        _airborne(quad, (0.3, -0.2, 1.0))
        quad.command(MotorThrusts(thrust_frac=np.full(4, quad.config.hover_thrust_frac)))
        quad.sync(0.1)
        quad.stop()
        assert quad.read_state().armed  # still flying: landing
        quad.sync(1.0)
        assert quad.read_state().vel_m_s[2] == pytest.approx(-quad.config.land_speed_m_s, abs=0.05)
        quad.sync(2.5)
        state = quad.read_state()
        assert not state.armed and state.pos_m[2] <= TOUCHDOWN_HEIGHT_M + 0.01
        np.testing.assert_allclose(state.pos_m[:2], [0.3, -0.2], atol=0.05)
        np.testing.assert_array_equal(quad.data.ctrl, 0.0)
        quad.sync(1.0)
        assert np.linalg.norm(quad.read_state().vel_m_s) < 0.01  # stays down
        quad.command(MotorThrusts(thrust_frac=np.full(4, 0.3)))  # commands resume it
        assert quad.read_state().armed
        quad.stop()  # on the ground: motors cut at once
        assert not quad.read_state().armed and np.all(quad.data.ctrl == 0.0)


def test_set_state_places_the_vehicle_in_flight_and_checks_its_input():
    with MujocoQuad() as quad:
        quad.set_state(np.array([0.1, 0.2, 1.0]), np.array([2.0, 0, 0, 0]), np.array([0.5, 0, 0]), np.array([0, 0, 1.0]))
        state = quad.read_state()
        np.testing.assert_allclose(state.quat_wxyz, LEVEL)  # normalised
        np.testing.assert_allclose(quad.motor_thrusts_n, quad.config.hover_thrust_frac * quad.spec.max_thrust_per_motor_n)
        np.testing.assert_allclose(state.vel_m_s, [0.5, 0, 0]) and np.testing.assert_allclose(state.body_rates_rad_s, [0, 0, 1])
        with pytest.raises(ValueError, match="pos_m"):
            quad.set_state(np.zeros(2), LEVEL, np.zeros(3), np.zeros(3))
        with pytest.raises(ValueError, match="quaternion"):
            quad.set_state(np.zeros(3), np.zeros(4), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="unknown cameras"):
        MujocoQuadConfig(cameras=("belly",))


def test_cameras_render_and_state_obs_observes_none():
    quad = make_backend(None, "state", image_height=24, image_width=32)
    assert dict(quad.spec.cameras) == {} and quad.spec.render_cameras == ("fpv", "chase", "overview")
    with quad:
        _airborne(quad)
        quad.set_target_marker(np.array([0.0, 0.0, 1.6]))
        for camera in ("fpv", "chase", "overview"):
            image = quad.render(camera)
            assert image.shape == (24, 32, 3) and image.dtype == np.uint8 and image.std() > 3, camera
        with pytest.raises(KeyError, match="fpv"):
            quad.render("belly")


def test_importing_the_family_is_cheap():
    code = ("import sys, sim.quad, tasks.quad, tasks.quad.hover, drivers.quad.control; "
            "assert not {'jax', 'mujoco'} & set(sys.modules), 'heavy import'")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
