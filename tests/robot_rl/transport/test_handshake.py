"""Handshake contents, the compatibility check and the bind-address rule."""

import dataclasses

import numpy as np
import pytest

import robot_rl
from robot_rl.transport import handshake
from robot_rl.transport.handshake import ActionSpec, ArraySpec, Hello, check_bind_address, compare_hello


def hello(**changes) -> Hello:
    base = Hello(
        "arm-1", "pick_cube",
        {"state": ArraySpec((30,), "float32"), "front": ArraySpec((128, 128, 3), "uint8")},
        ActionSpec((7,), (-1.0,) * 7, (1.0,) * 7),
        {"encoder": "resnet10", "hidden": [256, 256], "params": "abc"},
    )
    return dataclasses.replace(base, **changes)


def test_identical_hellos_are_compatible_even_with_other_ids_and_library_versions():
    assert compare_hello(hello(), hello(actor="car-2", library_version="9.9")) == []
    assert hello().library_version == robot_rl.__version__


def test_differences_name_the_field_and_both_values():
    actor = hello(
        task="reach",
        schema_version=2,
        observation={"state": ArraySpec((30,), "float64"), "front": ArraySpec((64, 64, 3), "uint8"), "wrist": ArraySpec((64, 64, 3), "uint8")},
        action=ActionSpec((7,), (-1.0,) * 7, (0.5,) * 7),
        agent={"encoder": "resnet10", "hidden": [64, 64], "extra": 1, "params": "abc"},
    )
    assert compare_hello(hello(), actor) == [
        "schema version: learner has 1, actor has 2",
        "task: learner has 'pick_cube', actor has 'reach'",
        "observation 'front' shape: learner (128, 128, 3), actor (64, 64, 3)",
        "observation 'state' dtype: learner float32, actor float64",
        "observation 'wrist': only the actor has it",
        f"action high: learner {(1.0,) * 7}, actor {(0.5,) * 7}",
        "agent 'extra': only the actor has it",
        "agent 'hidden': learner [256, 256], actor [64, 64]",
    ]


def test_float32_rounding_of_bounds_is_not_a_difference():
    low = tuple(float(x) for x in np.full(7, -0.1, np.float32))
    assert compare_hello(hello(action=ActionSpec((7,), (-0.1,) * 7, (1.0,) * 7)), hello(action=ActionSpec((7,), low, (1.0,) * 7))) == []


def test_hello_meta_round_trip_and_builders():
    class Box:  # what a gymnasium Box offers
        shape = (2,)
        low = np.array([-1.0, -2.0], np.float32)
        high = np.array([1.0, 2.0], np.float32)

    spec = handshake.observation_spec({"state": ((5,), np.float32), "front": ((8, 8, 3), np.dtype("uint8"))})
    made = Hello("a", "t", spec, ActionSpec.from_box(Box()), {"params": handshake.parameter_shapes_hash({"w": (2, 3)})})
    assert made.observation["front"] == ArraySpec((8, 8, 3), "uint8") and made.action.high == (1.0, 2.0)
    assert Hello.from_meta(made.to_meta()) == made


def test_parameter_shapes_hash_depends_on_names_and_shapes_only():
    first = handshake.parameter_shapes_hash({"a": np.zeros((2, 3)), "b": np.zeros(4)})
    assert first == handshake.parameter_shapes_hash({"b": (4,), "a": [2, 3]})
    assert first != handshake.parameter_shapes_hash({"a": (3, 2), "b": (4,)})


@pytest.mark.parametrize("endpoint", [
    "tcp://127.0.0.1:5555", "tcp://localhost:5556", "tcp://127.0.0.1:*", "tcp://[::1]:5555", "tcp://127.0.0.2:6000",
    "ipc:///tmp/robot_rl.sock", "inproc://learner",
])
def test_loopback_and_local_endpoints_are_accepted(endpoint):
    assert check_bind_address(endpoint, allow_remote=False) == endpoint


@pytest.mark.parametrize("endpoint", ["tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://192.168.1.20:5555", "tcp://[::]:5555", "tcp://eth0:5555"])
def test_remote_endpoints_need_bind_remote(endpoint):
    with pytest.raises(ValueError, match="--bind-remote") as info:
        check_bind_address(endpoint, allow_remote=False)
    assert "tcp://127.0.0.1:5555" in str(info.value)
    assert check_bind_address(endpoint, allow_remote=True) == endpoint


@pytest.mark.parametrize("endpoint, error", [
    ("127.0.0.1:5555", "must look like"), ("udp://127.0.0.1:5555", "transport 'udp'"),
    ("tcp://127.0.0.1", "needs a host and a port"), ("tcp://127.0.0.1:99999", "needs a host and a port"),
])
def test_malformed_endpoints(endpoint, error):
    with pytest.raises(ValueError, match=error):
        check_bind_address(endpoint, allow_remote=True)


def test_default_endpoints_are_loopback():
    assert check_bind_address(handshake.DEFAULT_TRANSITIONS_ENDPOINT) == "tcp://127.0.0.1:5555"
    assert check_bind_address(handshake.DEFAULT_WEIGHTS_ENDPOINT) == "tcp://127.0.0.1:5556"
