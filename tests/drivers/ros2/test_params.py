"""Rig configs <-> flat ROS parameters: round trips through the real backends' config dataclasses and
rig files, values ROS cannot hold refused naming the parameter, and the nodes' declared parameters."""

from __future__ import annotations

import array
import dataclasses
import math

import numpy as np
import pytest

from drivers.arm.fr3_config import Fr3Config, GainSet, load_fr3_rig, parse_fr3_table
from drivers.car.config import VescConfig, load_vesc_rig
from drivers.quad.crazyflie_config import CrazyflieConfig
from drivers.ros2 import params
from drivers.ros2.params import ParameterError, ParamSpec
from robot_rl.rig import read_rig_table

RIG = """
[car.vesc]
port = "/dev/ttyACM0"
max_speed_m_s = 1.5
io_hz = 50

[arm.fr3]
host = "172.16.0.2"
workspace_low_m = [0.3, -0.25, 0.02]
workspace_high_m = [0.7, 0.25, 0.45]
[arm.fr3.gains.precise]
stiffness_pos_n_m = 2500.0
stiffness_rot_nm_rad = 120.0
clip_pos_m = 0.008
clip_rot_rad = 0.05

[cameras.front]
kind = "opencv"
source = 2
width = 640
height = 480
fps = 30
resize = [128, 128]
"""


@pytest.fixture
def rig_file(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text(RIG)
    return path


def test_flatten_and_unflatten_are_inverse():
    table = {"a": 1, "b": {"c": [1.0, 2.5], "d": {"e": "x", "f": True}}, "g": ["p", "q"], "h": [1, 2]}
    flat = params.flatten(table, "root")
    assert flat == {"root.a": 1, "root.b.c": [1.0, 2.5], "root.b.d.e": "x", "root.b.d.f": True,
                    "root.g": ["p", "q"], "root.h": [1, 2]}
    assert params.unflatten(flat, "root") == table
    assert params.unflatten({**flat, "other.x": 1}, "root") == table, "names under another prefix are ignored"


@pytest.mark.parametrize("value, complaint", [
    (None, "a ROS parameter holds"),
    (math.nan, "not a finite number"),
    ([], "empty array"),
    ([1, "a"], "holds one type"),
    ([True, 1], "holds one type"),
    ([[1, 2], [3, 4]], "holds one type"),
    ({"x": 1}.items(), "a ROS parameter holds"),
])
def test_values_ros_cannot_hold_are_refused_naming_the_parameter(value, complaint):
    with pytest.raises(ParameterError, match=rf"parameter 'options\.x'.*{complaint}"):
        params.check_value("options.x", value)


def test_mixed_numbers_become_a_double_array_and_rclpy_arrays_lists():
    assert params.check_value("p", (1, 2.5)) == [1.0, 2.5]
    assert params.check_value("p", array.array("d", [1.0, 2.0])) == [1.0, 2.0]  # rclpy's DOUBLE_ARRAY values
    assert params.check_value("p", np.array([3, 4])) == [3, 4]


def test_clashing_names_are_refused():
    with pytest.raises(ParameterError, match="'a.b.c' is under 'a.b', which is also a value"):
        params.unflatten({"a.b": 1, "a.b.c": 2})
    with pytest.raises(ParameterError, match="'a.b.c' is under 'a.b'"):
        params.unflatten({"a.b.c": 2, "a.b": 1})
    with pytest.raises(ParameterError, match="must be a non-empty string without '.'"):
        params.flatten({"a.b": 1})


@pytest.mark.parametrize("config", [
    VescConfig(port="/dev/ttyACM0", max_speed_m_s=1.5, min_battery_v=10.5),
    CrazyflieConfig(uri="radio://0/80/2M/E7E7E7E7E7", geofence_low_m=(-2.0, -2.0, 0.0), level="attitude"),
    Fr3Config(host="172.16.0.2", gains={"soft": GainSet(300.0, 20.0, 0.02, 0.1),
                                        "compliant": GainSet(400.0, 30.0, 0.02, 0.1)}, gain_set="soft"),
], ids=["vesc", "crazyflie", "fr3"])
def test_backend_configs_round_trip_through_parameters(config):
    flat = params.config_to_params(config, "options")
    assert all(name.startswith("options.") for name in flat)
    assert all(isinstance(v, (bool, int, float, str, list)) for v in flat.values())
    assert params.params_to_config(type(config), flat, "options") == config


def test_nested_dataclasses_become_dotted_names():
    flat = params.config_to_params(Fr3Config(host="h"))
    assert flat["gains.precise.stiffness_pos_n_m"] == 2000.0
    assert flat["workspace_low_m"] == [0.25, -0.35, 0.02] and "rig" not in flat


def test_a_none_that_is_not_the_default_cannot_be_a_parameter():
    assert "port" not in params.config_to_params(VescConfig()), "None defaults are left out (the default applies)"
    with pytest.raises(ParameterError, match="VescConfig.max_battery_v is None"):
        params.config_to_params(VescConfig(max_battery_v=None))


@pytest.mark.parametrize("name, value, named", [
    ("options.max_speed_m_s", -1.0, "options.max_speed_m_s"),
    ("options.throttle_control", "torque", "options.throttle_control"),
])
def test_a_value_the_config_rejects_names_the_parameter(name, value, named):
    flat = {**params.config_to_params(VescConfig(port="/dev/x"), "options"), name: value}
    with pytest.raises(ParameterError, match=rf"parameter '{named}'"):
        params.params_to_config(VescConfig, flat, "options")


def test_nested_errors_name_the_nested_parameter():
    flat = params.config_to_params(Fr3Config(host="h"), "options")
    with pytest.raises(ParameterError, match=r"parameter 'options.gains.precise.clip_pos_m'.*GainSet.clip_pos_m"):
        params.params_to_config(Fr3Config, {**flat, "options.gains.precise.clip_pos_m": 5.0}, "options")
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) \['options.gains.precise.bogus'\]"):
        params.params_to_config(Fr3Config, {**flat, "options.gains.precise.bogus": 1.0}, "options")
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) \['options.max_sped_m_s'\]"):
        params.params_to_config(VescConfig, {"options.max_sped_m_s": 1.0}, "options")


def test_a_rig_file_becomes_parameters_and_back_to_the_drivers_configs(rig_file):
    flat = params.rig_to_params(rig_file)
    assert flat["car.vesc.max_speed_m_s"] == 1.5 and flat["car.vesc.io_hz"] == 50 and flat["cameras.front.resize"] == [128, 128]
    assert flat["arm.fr3.gains.precise.clip_pos_m"] == 0.008
    vesc = params.params_to_config(VescConfig, flat, "car.vesc")
    assert vesc == dataclasses.replace(load_vesc_rig(rig_file), rig=None)
    table = params.unflatten(params.rig_to_params(rig_file, "arm.fr3"), "arm.fr3")
    assert table == read_rig_table(rig_file, "arm.fr3"), "the parameters give back the rig's table exactly"
    assert parse_fr3_table(table, rig_file) == load_fr3_rig(rig_file), "which the driver's own parser reads"


def test_unreadable_rig_files_are_named(tmp_path):
    with pytest.raises(ParameterError, match="cannot read the rig file"):
        params.rig_to_params(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[car\n")
    with pytest.raises(ParameterError, match="bad.toml: not valid TOML"):
        params.rig_to_params(bad)


SPECS = (ParamSpec("rig", "", "the rig file"), ParamSpec("rate_hz", 50.0, "rate"), ParamSpec("on", True, "switch"),
         ParamSpec("names", ["a"], "names"))


def test_resolve_fills_defaults_and_checks_types():
    assert params.resolve(SPECS, {}) == {"rig": "", "rate_hz": 50.0, "on": True, "names": ["a"]}
    got = params.resolve(SPECS, {"rate_hz": 20, "options.port": "/dev/x"}, dynamic_prefixes=("options",))
    assert got["rate_hz"] == 20.0 and isinstance(got["rate_hz"], float), "an integer is taken for a double"
    assert got["options.port"] == "/dev/x"
    assert [s.type_name for s in SPECS] == ["string", "double", "bool", "string_array"]


@pytest.mark.parametrize("given, complaint", [
    ({"rate_hz": "fast"}, r"parameter 'rate_hz' has type double, got 'fast'"),
    ({"on": 1}, r"parameter 'on' has type bool, got 1"),
    ({"rig": ["a.toml"]}, r"parameter 'rig' has type string"),
    ({"names": "a"}, r"parameter 'names' has type string_array"),
    ({"rte_hz": 5.0}, r"undeclared parameter\(s\) \['rte_hz'\]"),
    ({"options.port": "x"}, r"undeclared parameter\(s\) \['options.port'\]"),
])
def test_resolve_names_the_bad_parameter(given, complaint):
    with pytest.raises(ParameterError, match=complaint):
        params.resolve(SPECS, given)


def test_a_spec_default_must_be_a_ros_value():
    with pytest.raises(ParameterError, match="parameter 'x'"):
        ParamSpec("x", None, "no type")  # type: ignore[arg-type]
