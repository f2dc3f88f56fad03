"""The quadrotor family contract: spec/state/command validation, clip_quad_command's limits, the Protocols."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_rl.backends.base import Backend, ConnectOnEnter
from robot_rl.backends.quadrotor import (
    FAMILY,
    QUAD_COMMAND_LEVELS,
    STANDARD_GRAVITY_M_S2,
    AttitudeCommand,
    MotorThrusts,
    QuadBackend,
    QuadCommand,
    QuadSceneControl,
    QuadSpec,
    QuadState,
    ThrustRates,
    VelocityCommand,
    clip_quad_command,
    inside_geofence,
)


def quad_spec(**overrides) -> QuadSpec:
    """About a Crazyflie-sized vehicle; the numbers only need to be plausible."""
    fields = dict(mass_kg=0.03, arm_length_m=0.046, inertia_kg_m2=[1.4e-5, 1.4e-5, 2.2e-5],
                  max_thrust_per_motor_n=0.15, motor_time_constant_s=0.02, command_levels=QUAD_COMMAND_LEVELS,
                  max_tilt_rad=0.5, max_body_rate_rad_s=[6.0, 6.0, 3.0], max_speed_m_s=1.0,
                  geofence_low_m=[-2.0, -2.0, 0.0], geofence_high_m=[2.0, 2.0, 2.0])
    fields.update(overrides)
    return QuadSpec(**fields)


def quad_state(pos_m=(0.0, 0.0, 1.0)) -> QuadState:
    return QuadState(time_s=0.0, pos_m=pos_m, quat_wxyz=[1, 0, 0, 0], vel_m_s=[0, 0, 0], body_rates_rad_s=[0, 0, 0],
                     armed=True)


SPEC = quad_spec()
HOVER = quad_state()


def tilt_rad(roll_rad: float, pitch_rad: float) -> float:
    return math.acos(min(1.0, math.cos(roll_rad) * math.cos(pitch_rad)))


# --- spec -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(mass_kg=0.0), r"QuadSpec\.mass_kg must be in \(0\.0, inf\], got 0\.0"),
        (dict(motor_time_constant_s=-0.01), r"QuadSpec\.motor_time_constant_s must be in \[0\.0, inf\]"),
        (dict(max_tilt_rad=math.pi / 2), r"QuadSpec\.max_tilt_rad must be in \(0\.0, 1\.57.*\)"),
        (dict(inertia_kg_m2=[1.0, 1.0]), r"QuadSpec\.inertia_kg_m2 must have shape \(3,\), got \(2,\)"),
        (dict(max_body_rate_rad_s=[6.0, 0.0, 3.0]), r"QuadSpec\.max_body_rate_rad_s must be > 0 on every axis"),
        (dict(geofence_high_m=[2.0, np.nan, 2.0]), r"QuadSpec\.geofence_high_m must be finite"),
        (dict(geofence_low_m=[-2.0, 3.0, 0.0]), r"geofence_low_m must be below geofence_high_m on every axis"),
        (dict(mass_kg=0.1), r"QuadSpec cannot hover: 4 x max_thrust_per_motor_n = 0\.6 N is not above .* 0\.98"),
        (dict(command_levels=("rpm",)), r"QuadSpec\.command_levels must be distinct names from .* got \('rpm',\)"),
    ],
)
def test_spec_rejects_bad_fields_naming_field_range_and_value(overrides, message):
    with pytest.raises(ValueError, match=message):
        quad_spec(**overrides)


def test_spec_derived_thrust_and_frozen_arrays():
    assert SPEC.max_total_thrust_n == pytest.approx(0.6)
    assert SPEC.hover_thrust_frac == pytest.approx(0.03 * STANDARD_GRAVITY_M_S2 / 0.6)
    assert SPEC.watchdog_s == 0.2 and SPEC.cameras == {} and SPEC.command_levels == QUAD_COMMAND_LEVELS
    assert SPEC.inertia_kg_m2.dtype == np.float64
    with pytest.raises(ValueError):
        SPEC.geofence_high_m[0] = 100.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        SPEC.max_speed_m_s = 100.0


# --- state and commands -----------------------------------------------------------------------------


def test_state_defaults_unknowns_to_nan_and_checks_shapes():
    assert np.isnan(HOVER.motor_speeds_rad_s).all() and HOVER.motor_speeds_rad_s.shape == (4,)
    assert math.isnan(HOVER.battery_v) and HOVER.armed is True
    with pytest.raises(ValueError, match=r"QuadState\.quat_wxyz must have shape \(4,\), got \(3,\)"):
        dataclasses.replace(HOVER, quat_wxyz=[0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: MotorThrusts(thrust_frac=[0.5, 0.5, 0.5]), r"MotorThrusts\.thrust_frac must have shape \(4,\)"),
        (lambda: MotorThrusts(thrust_frac=[0.5, np.nan, 0.5, 0.5]), r"MotorThrusts\.thrust_frac must be finite"),
        (lambda: ThrustRates(collective_thrust_frac=math.nan, body_rates_rad_s=[0, 0, 0]),
         r"ThrustRates\.collective_thrust_frac must be finite, got nan"),
        (lambda: ThrustRates(collective_thrust_frac=0.5, body_rates_rad_s=[0, math.inf, 0]),
         r"ThrustRates\.body_rates_rad_s must be finite"),
        (lambda: AttitudeCommand(collective_thrust_frac=0.5, roll_rad=0.0, pitch_rad=math.nan, yaw_rate_rad_s=0.0),
         r"AttitudeCommand\.pitch_rad must be finite, got nan"),
        (lambda: VelocityCommand(vel_m_s=[0.0, 0.0], yaw_rate_rad_s=0.0),
         r"VelocityCommand\.vel_m_s must have shape \(3,\), got \(2,\)"),
        (lambda: VelocityCommand(vel_m_s=[0.0, 0.0, 0.0], yaw_rate_rad_s=math.inf),
         r"VelocityCommand\.yaw_rate_rad_s must be finite, got inf"),
    ],
)
def test_commands_reject_malformed_fields(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_each_command_names_its_level():
    assert [c.level for c in (MotorThrusts, ThrustRates, AttitudeCommand, VelocityCommand)] == list(QUAD_COMMAND_LEVELS)


# --- clip_quad_command ------------------------------------------------------------------------------


def test_unaccepted_level_is_an_error():
    rates_only = quad_spec(command_levels=("thrust_rates",))
    with pytest.raises(ValueError, match=r"accepts \('thrust_rates',\) commands, got a 'velocity' command"):
        clip_quad_command(VelocityCommand(vel_m_s=[0, 0, 0], yaw_rate_rad_s=0.0), rates_only, HOVER)


def test_commands_within_limits_pass_unchanged():
    motors = clip_quad_command(MotorThrusts(thrust_frac=[0.0, 0.3, 0.7, 1.0]), SPEC, HOVER)
    np.testing.assert_array_equal(motors.thrust_frac, [0.0, 0.3, 0.7, 1.0])
    rates = clip_quad_command(ThrustRates(collective_thrust_frac=0.5, body_rates_rad_s=[-6, 1, 3]), SPEC, HOVER)
    assert rates.collective_thrust_frac == 0.5 and rates.body_rates_rad_s.tolist() == [-6, 1, 3]
    attitude = AttitudeCommand(collective_thrust_frac=0.5, roll_rad=0.3, pitch_rad=-0.3, yaw_rate_rad_s=-3.0)
    assert clip_quad_command(attitude, SPEC, HOVER) == attitude
    velocity = clip_quad_command(VelocityCommand(vel_m_s=[0.6, 0.0, -0.8], yaw_rate_rad_s=1.0), SPEC, HOVER)
    assert velocity.vel_m_s.tolist() == [0.6, 0.0, -0.8] and velocity.yaw_rate_rad_s == 1.0


def test_thrust_and_rates_are_clipped_to_the_spec():
    motors = clip_quad_command(MotorThrusts(thrust_frac=[-0.2, 0.5, 1.2, 1.0]), SPEC, HOVER)
    assert motors.thrust_frac.tolist() == [0.0, 0.5, 1.0, 1.0]
    rates = clip_quad_command(ThrustRates(collective_thrust_frac=1.3, body_rates_rad_s=[-9, 9, 9]), SPEC, HOVER)
    assert rates.collective_thrust_frac == 1.0 and rates.body_rates_rad_s.tolist() == [-6, 6, 3]
    attitude = AttitudeCommand(collective_thrust_frac=-0.1, roll_rad=0.0, pitch_rad=0.0, yaw_rate_rad_s=-5.0)
    assert clip_quad_command(attitude, SPEC, HOVER) == dataclasses.replace(attitude, collective_thrust_frac=0.0,
                                                                           yaw_rate_rad_s=-3.0)


def test_tilt_is_limited_keeping_its_direction():
    single = clip_quad_command(AttitudeCommand(collective_thrust_frac=0.5, roll_rad=-1.2, pitch_rad=0.0,
                                               yaw_rate_rad_s=0.0), SPEC, HOVER)
    assert (single.roll_rad, single.pitch_rad) == (-0.5, 0.0)
    # roll = pitch = 0.45 is a tilt of ~0.63 rad > 0.5: scaled back to the limit, same horizontal direction
    both = clip_quad_command(AttitudeCommand(collective_thrust_frac=0.5, roll_rad=0.45, pitch_rad=0.45,
                                             yaw_rate_rad_s=0.0), SPEC, HOVER)
    assert tilt_rad(both.roll_rad, both.pitch_rad) == pytest.approx(0.5)
    direction = math.atan2(-math.sin(0.45), math.cos(0.45) * math.sin(0.45))
    assert math.atan2(-math.sin(both.roll_rad), math.cos(both.roll_rad) * math.sin(both.pitch_rad)) == pytest.approx(
        direction)


def test_velocity_is_scaled_to_the_speed_limit():
    velocity = clip_quad_command(VelocityCommand(vel_m_s=[3.0, 0.0, 4.0], yaw_rate_rad_s=9.0), SPEC, HOVER)
    np.testing.assert_allclose(velocity.vel_m_s, [0.6, 0.0, 0.8])
    assert velocity.yaw_rate_rad_s == 3.0


def test_geofence_zeroes_outward_velocity_outside_the_box():
    outward = VelocityCommand(vel_m_s=[-0.5, 0.5, -0.5], yaw_rate_rad_s=0.0)
    below_and_west = quad_state(pos_m=(-2.5, 0.0, -0.1))
    np.testing.assert_array_equal(clip_quad_command(outward, SPEC, below_and_west).vel_m_s, [0.0, 0.5, 0.0])
    inward = VelocityCommand(vel_m_s=[0.5, 0.0, 0.5], yaw_rate_rad_s=0.0)
    np.testing.assert_array_equal(clip_quad_command(inward, SPEC, below_and_west).vel_m_s, [0.5, 0.0, 0.5])
    north_of_fence = quad_state(pos_m=(0.0, 2.1, 1.0))
    np.testing.assert_array_equal(clip_quad_command(outward, SPEC, north_of_fence).vel_m_s, [-0.5, 0.0, -0.5])
    on_the_edge = quad_state(pos_m=(2.0, 2.0, 0.0))
    np.testing.assert_array_equal(clip_quad_command(outward, SPEC, on_the_edge).vel_m_s, [-0.5, 0.5, -0.5])
    unknown = quad_state(pos_m=(np.nan, np.nan, np.nan))
    np.testing.assert_array_equal(clip_quad_command(outward, SPEC, unknown).vel_m_s, [-0.5, 0.5, -0.5])


def test_inside_geofence():
    assert inside_geofence(SPEC, [0.0, 0.0, 1.0]) and inside_geofence(SPEC, [2.0, -2.0, 0.0])
    assert not inside_geofence(SPEC, [0.0, 0.0, 2.01])
    assert not inside_geofence(SPEC, [np.nan, 0.0, 1.0])


finite = st.floats(-10.0, 10.0, allow_nan=False)
vectors3 = st.lists(finite, min_size=3, max_size=3)
commands = st.one_of(
    st.builds(lambda t: MotorThrusts(thrust_frac=t), st.lists(st.floats(-2, 2), min_size=4, max_size=4)),
    st.builds(lambda t, w: ThrustRates(collective_thrust_frac=t, body_rates_rad_s=w), finite, vectors3),
    st.builds(lambda t, r, p, y: AttitudeCommand(collective_thrust_frac=t, roll_rad=r, pitch_rad=p, yaw_rate_rad_s=y),
              finite, st.floats(-3.0, 3.0), st.floats(-3.0, 3.0), finite),
    st.builds(lambda v, y: VelocityCommand(vel_m_s=v, yaw_rate_rad_s=y), vectors3, finite),
)


def assert_within_spec(command: QuadCommand, state: QuadState) -> None:
    rate_limit = SPEC.max_body_rate_rad_s
    if isinstance(command, MotorThrusts):
        assert np.all((command.thrust_frac >= 0) & (command.thrust_frac <= 1))
    if isinstance(command, (ThrustRates, AttitudeCommand)):
        assert 0.0 <= command.collective_thrust_frac <= 1.0
    if isinstance(command, ThrustRates):
        assert np.all(np.abs(command.body_rates_rad_s) <= rate_limit)
    if isinstance(command, (AttitudeCommand, VelocityCommand)):
        assert abs(command.yaw_rate_rad_s) <= rate_limit[2]
    if isinstance(command, AttitudeCommand):
        assert tilt_rad(command.roll_rad, command.pitch_rad) <= SPEC.max_tilt_rad + 1e-9
    if isinstance(command, VelocityCommand):
        assert np.linalg.norm(command.vel_m_s) <= SPEC.max_speed_m_s + 1e-9
        assert not np.any((state.pos_m < SPEC.geofence_low_m) & (command.vel_m_s < 0))
        assert not np.any((state.pos_m > SPEC.geofence_high_m) & (command.vel_m_s > 0))


@settings(max_examples=300, deadline=None)
@given(command=commands, pos=vectors3)
def test_clipped_command_is_always_within_the_spec(command, pos):
    state = quad_state(pos_m=pos)
    clipped = clip_quad_command(command, SPEC, state)
    assert type(clipped) is type(command)
    assert_within_spec(clipped, state)
    again = clip_quad_command(clipped, SPEC, state)
    for field in dataclasses.fields(clipped):
        np.testing.assert_allclose(getattr(again, field.name), getattr(clipped, field.name), atol=1e-12)


# --- protocols --------------------------------------------------------------------------------------


class FakeQuad(ConnectOnEnter):
    """The smallest object keeping the quadrotor contract (no physics: it hovers in place)."""

    family = FAMILY

    def __init__(self) -> None:
        self.connected = False
        self.armed = False

    @property
    def spec(self) -> QuadSpec:
        return SPEC

    def connect(self) -> None:
        self.connected = True

    def close(self) -> None:
        self.stop()
        self.connected = False

    def read_state(self) -> QuadState:
        return dataclasses.replace(HOVER, armed=self.armed)

    def command(self, command: QuadCommand) -> QuadCommand:
        self.armed = True
        return clip_quad_command(command, self.spec, self.read_state())

    def sync(self, period_s: float) -> None:
        pass

    def stop(self) -> None:
        self.armed = False

    def render(self, camera: str, height: int | None = None, width: int | None = None) -> np.ndarray:
        return np.zeros((height or 1, width or 1, 3), np.uint8)


class FakeSimQuad(FakeQuad):
    def set_state(self, pos_m, quat_wxyz, vel_m_s, body_rates_rad_s) -> None:
        pass


class StatelessQuad:
    family = FAMILY
    spec = SPEC

    def command(self, command: QuadCommand) -> QuadCommand:
        return command


def test_fake_backends_keep_the_protocols():
    quad = FakeQuad()
    assert isinstance(quad, Backend) and isinstance(quad, QuadBackend)
    assert not isinstance(quad, QuadSceneControl) and isinstance(FakeSimQuad(), QuadSceneControl)
    assert not isinstance(StatelessQuad(), QuadBackend)
    with quad:
        assert not quad.read_state().armed
        sent = quad.command(VelocityCommand(vel_m_s=[0.0, 0.0, 5.0], yaw_rate_rad_s=0.0))
        assert quad.read_state().armed and sent.vel_m_s.tolist() == [0.0, 0.0, 1.0]
    assert not quad.connected and not quad.read_state().armed
