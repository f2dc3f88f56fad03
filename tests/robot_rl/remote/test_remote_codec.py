"""The robot server's codec: every family's dataclasses survive the wire; what a hostile client
could put in an object entry is a MessageError; unsafe commands are named."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from robot_rl.backends.arm import ArmSpec, ArmState, ArmTarget
from robot_rl.backends.base import CameraSpec
from robot_rl.backends.car import CarCommand
from robot_rl.backends.quadrotor import ThrustRates, VelocityCommand
from robot_rl.remote import protocol
from robot_rl.remote.codec import command_problem, decode_object, encode_object, family_types
from robot_rl.transport import wire

ARM = family_types("arm")


def through_the_wire(obj, allowed):
    """Encode ``obj`` in a call, send it through the real framing, decode it back."""
    message = protocol.call("client", 1, "command", objects={"x": obj})
    received = wire.from_frames(wire.to_frames(message), kinds={protocol.CALL})
    return protocol.objects_of(received, {"x": allowed})["x"]


def arm_state() -> ArmState:
    return ArmState(time_s=1.5, tcp_pos_m=np.array([0.5, 0.0, 0.3]), tcp_quat_wxyz=np.array([0.0, 1.0, 0.0, 0.0]),
                    tcp_linvel_m_s=np.zeros(3), tcp_angvel_rad_s=np.zeros(3), joint_pos_rad=np.linspace(-1, 1, 7),
                    joint_vel_rad_s=np.full(7, 0.1), gripper_width_m=0.04, ext_wrench_n_nm=np.arange(6.0),
                    objects={"cube": np.arange(7.0)})


def test_arm_spec_state_and_target_round_trip_exactly():
    spec = ArmSpec(dof=7, joint_limits_rad=np.tile([-2.0, 2.0], (7, 1)), workspace_low_m=np.array([0.2, -0.4, 0.0]),
                   workspace_high_m=np.array([0.8, 0.4, 0.6]), gripper_max_width_m=0.08,
                   cameras={"wrist": CameraSpec("wrist", 96, 128)}, home_joint_pos_rad=np.zeros(7), render_cameras=("front",))
    back = through_the_wire(spec, {"ArmSpec": ArmSpec})
    assert back.dof == 7 and back.cameras == spec.cameras and back.render_cameras == ("front",)
    np.testing.assert_array_equal(back.joint_limits_rad, spec.joint_limits_rad)
    state = through_the_wire(arm_state(), {"ArmState": ArmState})
    np.testing.assert_array_equal(state.objects["cube"], np.arange(7.0))
    np.testing.assert_array_equal(state.joint_pos_rad, np.linspace(-1, 1, 7))
    assert state.time_s == 1.5 and state.gripper_width_m == 0.04 and state.joint_pos_rad.flags.writeable
    target = through_the_wire(ArmTarget([0.5, 0.1, 0.2], [1.0, 0.0, 0.0, 0.0], 0.02), ARM.commands)
    assert target.tcp_pos_m.tolist() == [0.5, 0.1, 0.2] and target.gripper_width_m == 0.02
    nan_state = through_the_wire(ArmState(**{**vars(arm_state()), "time_s": math.nan}), {"ArmState": ArmState})
    assert math.isnan(nan_state.time_s)  # floats travel as float64 arrays: NaN is exact, not JSON


def test_car_and_quadrotor_commands_round_trip():
    car = through_the_wire(CarCommand(steering_rad=0.2, speed_m_s=1.5), family_types("car").commands)
    assert car.steering_rad == 0.2 and car.speed_m_s == 1.5 and car.throttle is None
    quad = family_types("quadrotor").commands
    rates = through_the_wire(ThrustRates(collective_thrust_frac=0.4, body_rates_rad_s=np.array([0.1, -0.2, 0.3])), quad)
    assert isinstance(rates, ThrustRates) and rates.body_rates_rad_s.tolist() == [0.1, -0.2, 0.3]
    assert isinstance(through_the_wire(VelocityCommand(vel_m_s=np.array([1.0, 0.0, 0.0]), yaw_rate_rad_s=0.0), quad), VelocityCommand)


def test_an_unknown_family_is_not_implemented_with_the_reason():
    with pytest.raises(NotImplementedError, match="FAMILY_TYPES"):
        family_types("boat")


@pytest.mark.parametrize("tamper, match", [
    (lambda e, a: e.update(type="CarCommand"), "not one of"),
    (lambda e, a: e["fields"].pop("tcp_pos_m"), "needs the fields"),
    (lambda e, a: e["fields"].update(speed=["float", None]), "needs the fields"),
    (lambda e, a: e["fields"].update(gripper_width_m=["array", None]), "gripper_width_m travels as"),
    (lambda e, a: e["fields"].update(gripper_width_m=["str", "wide"]), "gripper_width_m travels as"),
    (lambda e, a: a.update({"x.tcp_pos_m": np.arange(3)}), "must be a float array"),
    (lambda e, a: a.update({"x.gripper_width_m": np.zeros(2)}), "0 dimensions"),
    (lambda e, a: a.pop("x.tcp_quat_wxyz"), "missing"),
    (lambda e, a: e.update(extra=1), "type, fields"),
])
def test_a_tampered_object_is_a_message_error(tamper, match):
    entry, arrays = encode_object(ArmTarget(np.zeros(3), np.array([1.0, 0, 0, 0]), 0.0), "x")
    tamper(entry, arrays)
    with pytest.raises(wire.MessageError, match=match):
        decode_object(entry, arrays, "x", ARM.commands, set())


def test_a_stray_array_or_object_is_refused():
    message = protocol.call("client", 1, "command", objects={"command": ArmTarget(np.zeros(3), np.array([1.0, 0, 0, 0]), 0.0)},
                            arrays={"smuggled": np.zeros(3)})
    with pytest.raises(wire.MessageError, match="belong to no object"):
        protocol.objects_of(message, {"command": ARM.commands})
    with pytest.raises(wire.MessageError, match="unexpected objects"):
        protocol.objects_of(message, {})


@pytest.mark.parametrize("target, match", [
    (ArmTarget(np.array([np.nan, 0, 0.3]), np.array([1.0, 0, 0, 0]), 0.0), "not finite"),
    (ArmTarget(np.array([1e9, 0, 0.3]), np.array([1.0, 0, 0, 0]), 0.0), "beyond"),
    (ArmTarget(np.zeros(5), np.array([1.0, 0, 0, 0]), 0.0), r"shape \(3,\)"),
    (ArmTarget(np.zeros(3), np.array([2.0, 0, 0, 0]), 0.0), "unit quaternion"),
    (ArmTarget(np.zeros(3), np.array([1.0, 0, 0, 0]), math.inf), "not finite"),
])
def test_unsafe_commands_are_named(target, match):
    assert command_problem(ArmTarget(np.array([0.5, 0, 0.3]), np.array([1.0, 0, 0, 0]), 0.04)) is None
    assert re.search(match, command_problem(target) or "")
