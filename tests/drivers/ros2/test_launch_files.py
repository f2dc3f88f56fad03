"""The launch files and the colcon package, checked without ROS (neither `launch` nor rclpy installs here):
each launch file is parsed with `ast`; its nodes must be console scripts of launch/ros2/setup.py in the
package package.xml names, get only parameters their node declares (with the declared type), and use only
launch arguments that are declared; package.xml is format-3 with every ROS package the nodes import;
setup.py, run as colcon runs it, installs the launch files, the manifest, the index marker and the
executables -- which, without rclpy, say what to source and exit with 2."""

from __future__ import annotations

import ast
import importlib
import os
import pathlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from drivers.ros2.families import FAMILIES
from drivers.ros2.launch_family import SHARED_LAUNCH_FILE, check_defaults
from drivers.ros2.transport import check_topic_name
from robot_rl import registry

ROOT = pathlib.Path(__file__).resolve().parents[3]
LAUNCH = ROOT / "launch"
PACKAGE_DIR = LAUNCH / "ros2"
LAUNCH_FILES = sorted(LAUNCH.glob("*.launch.py"))
FAMILY_FILES = {"arm.launch.py": "arm", "car.launch.py": "car", "quad.launch.py": "quadrotor"}
PYTHON_TYPES = {"str": "string", "float": "double", "int": "integer", "bool": "bool"}


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == name]


def literal(node: ast.AST, where: str):
    try:
        return ast.literal_eval(node)
    except ValueError:
        pytest.fail(f"{where}: {ast.unparse(node)} is not a literal: the launch tests read launch files as text")


def keywords(call: ast.Call) -> dict[str, ast.AST]:
    return {kw.arg: kw.value for kw in call.keywords}


def parse(path: pathlib.Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def declared_arguments(tree: ast.AST, path: pathlib.Path) -> dict[str, str | None]:
    """Launch argument name -> its default (None: required)."""
    found = {}
    for call in calls(tree, "DeclareLaunchArgument"):
        default = keywords(call).get("default_value")
        found[literal(call.args[0], path.name)] = None if default is None else literal(default, path.name)
    return found


def setup_call() -> dict[str, ast.AST]:
    (call,) = calls(parse(PACKAGE_DIR / "setup.py"), "setup")
    return keywords(call)


def package_name() -> str:
    """setup.py's ``name=``: a literal, or a module-level constant holding one."""
    name = setup_call()["name"]
    if isinstance(name, ast.Name):
        tree = parse(PACKAGE_DIR / "setup.py")
        (name,) = [n.value for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == name.id]
    return literal(name, "setup.py")


def console_scripts() -> dict[str, str]:
    """Executable -> "module:function" of setup.py's console_scripts."""
    entries = literal(setup_call()["entry_points"], "setup.py")["console_scripts"]
    return {name.strip(): target.strip() for name, target in (entry.split("=") for entry in entries)}


def node_module(executable: str):
    module, _, function = console_scripts()[executable].partition(":")
    loaded = importlib.import_module(module)
    assert callable(getattr(loaded, function)), f"{executable}: {module}:{function} is not callable"
    return loaded


def test_there_is_a_launch_file_per_family_and_the_shared_one():
    assert {p.name for p in LAUNCH_FILES} == {*FAMILY_FILES, SHARED_LAUNCH_FILE}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_every_launch_argument_used_is_declared(path):
    tree = parse(path)
    declared = declared_arguments(tree, path)
    used = {literal(call.args[0], path.name) for call in calls(tree, "LaunchConfiguration")}
    assert used <= set(declared), f"{path.name} uses undeclared launch arguments {sorted(used - set(declared))}"
    assert len(calls(tree, "DeclareLaunchArgument")) == len(declared), f"{path.name} declares a name twice"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_nodes_are_the_packages_executables_given_declared_parameters(path):
    scripts = console_scripts()
    for node in calls(parse(path), "Node"):
        kw = keywords(node)
        executable = literal(kw["executable"], path.name)
        assert literal(kw["package"], path.name) == package_name()
        assert executable in scripts, f"{path.name}: {executable!r} is not a console script of setup.py"
        specs = {spec.name: spec for spec in node_module(executable).PARAMETERS}
        for parameters in literal_dicts(kw.get("parameters")):
            for key, value in zip(parameters.keys, parameters.values):
                name = literal(key, path.name)
                assert name in specs, f"{path.name}: {executable} does not declare {name!r}; it declares {sorted(specs)}"
                assert value_type(value) == specs[name].type_name, f"{path.name}: {executable} {name!r}"


def literal_dicts(parameters: ast.AST | None) -> list[ast.Dict]:
    assert isinstance(parameters, ast.List) and all(isinstance(d, ast.Dict) for d in parameters.elts)
    return list(parameters.elts)


def value_type(value: ast.AST) -> str:
    """The ROS type a launch parameter value becomes: ParameterValue(..., value_type=T) -> T."""
    assert isinstance(value, ast.Call) and getattr(value.func, "id", None) == "ParameterValue", \
        f"{ast.unparse(value)}: give parameters as ParameterValue(..., value_type=...), never re-read as YAML"
    return PYTHON_TYPES[keywords(value)["value_type"].id]


def test_the_shared_launch_file_needs_the_rig_and_starts_three_nodes():
    path = LAUNCH / "robot.launch.py"
    tree = parse(path)
    assert declared_arguments(tree, path)["rig"] is None, "the rig file has no default: it is required"
    nodes = {literal(keywords(c)["executable"], path.name): keywords(c) for c in calls(tree, "Node")}
    assert set(nodes) == set(console_scripts()) == {"robot_node", "camera_node", "actor_node"}
    names = [literal(kw["name"], path.name) for kw in nodes.values()]
    assert len(set(names)) == len(names)
    assert "condition" not in nodes["robot_node"], "the robot node always runs"


@pytest.mark.parametrize("file, family", FAMILY_FILES.items())
def test_family_launch_files_are_the_shared_one_with_valid_defaults(file, family):
    (call,) = calls(parse(LAUNCH / file), "family_launch_description")
    assert [ast.unparse(a) for a in call.args] == ["__file__"], "robot.launch.py is found beside this file"
    defaults = {name: literal(value, file) for name, value in keywords(call).items()}
    assert check_defaults(defaults) == defaults
    shared = declared_arguments(parse(LAUNCH / SHARED_LAUNCH_FILE), LAUNCH / SHARED_LAUNCH_FILE)
    assert set(defaults) <= set(shared), f"{file} sets arguments robot.launch.py lacks: {sorted(set(defaults) - set(shared))}"
    assert defaults["family"] == family and registry.lookup(defaults["task"]).family == family
    assert check_topic_name(defaults["topic_prefix"]) and defaults["cameras"] in ("true", "false")


def test_launch_argument_defaults_are_text():
    with pytest.raises(ValueError, match="must be text"):
        check_defaults({"state_rate_hz": 50.0})
    with pytest.raises(ValueError, match="identifier names"):
        check_defaults({"topic-prefix": "car"})


def required_ros_packages() -> set[str]:
    """What the nodes import from ROS: every family's message packages, the ROS modules drivers/ros2 imports
    by name (import_ros("std_srvs.srv")...), and what the launch files import."""
    packages = {"rclpy", "sensor_msgs", "std_msgs"}  # images and camera info; the bridge's stop topic
    for family in FAMILIES.values():
        packages |= {topic.typename.split("/")[0] for topic in family.state_topics + family.command_topics}
    for source in (ROOT / "drivers" / "ros2").glob("*.py"):
        packages |= {m.split(".")[0] for m in re.findall(r'import_ros\("([a-z_.]+)"\)', source.read_text())}
    for path in LAUNCH_FILES:
        packages |= {n.module.split(".")[0] for n in ast.walk(parse(path)) if isinstance(n, ast.ImportFrom)}
    launch_family = parse(ROOT / "drivers" / "ros2" / "launch_family.py")
    packages |= {n.module.split(".")[0] for n in ast.walk(launch_family) if isinstance(n, ast.ImportFrom)}
    return packages - {"os", "drivers", "__future__"}


def test_package_xml_is_format_3_with_every_dependency():
    root = ET.parse(PACKAGE_DIR / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == package_name() == "robot_rl_ros"
    assert re.fullmatch(r"\d+\.\d+\.\d+", root.findtext("version"))
    assert root.findtext("description").strip() and root.findtext("license")
    assert root.find("maintainer").get("email") and root.find("maintainer").text
    assert root.find("export").findtext("build_type") == "ament_python"
    depends = {e.text for e in root.findall("exec_depend")}
    expected = required_ros_packages()
    assert {"rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "nav_msgs", "ackermann_msgs", "std_srvs", "launch",
            "launch_ros", "rcl_interfaces"} <= expected, "the scan of what the nodes import found less than it should"
    assert expected <= depends, f"package.xml lacks exec_depend {sorted(expected - depends)}"
    assert (PACKAGE_DIR / "resource" / package_name()).is_file(), "the ament index marker"


def test_setup_cfg_puts_the_executables_where_ros2_run_looks():
    text = (PACKAGE_DIR / "setup.cfg").read_text()
    assert f"script_dir=$base/lib/{package_name()}" in text and f"install_scripts=$base/lib/{package_name()}" in text


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """setup.py run as colcon's ament_python build runs it, into a temporary prefix."""
    out = tmp_path_factory.mktemp("colcon")
    command = [sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(out), "build", "--build-base",
               str(out / "build"), "install", "--prefix", str(out / "install"), "--record", str(out / "install.log"),
               "--single-version-externally-managed"]
    done = subprocess.run(command, cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return out / "install"


def test_setup_installs_launch_files_manifest_marker_and_executables(installed):
    name = package_name()
    share = installed / "share" / name
    assert sorted(p.name for p in (share / "launch").iterdir()) == [p.name for p in LAUNCH_FILES]
    assert (share / "package.xml").read_text() == (PACKAGE_DIR / "package.xml").read_text()
    assert (installed / "share" / "ament_index" / "resource_index" / "packages" / name).is_file()
    assert sorted(p.name for p in (installed / "lib" / name).iterdir()) == sorted(console_scripts())
    assert not list(PACKAGE_DIR.glob("*.egg-info")) and not (PACKAGE_DIR / "build").exists(), "the source stays clean"


@pytest.mark.parametrize("executable", ["robot_node", "camera_node", "actor_node"])
def test_installed_executables_without_rclpy_say_what_to_source(installed, executable):
    try:
        importlib.import_module("rclpy")
        pytest.skip("rclpy is importable here: the executables would start a node")
    except ImportError:
        pass
    site = next(installed.glob("lib/python3*/site-packages"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    done = subprocess.run([sys.executable, str(installed / "lib" / package_name() / executable)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"{executable}: error: cannot import rclpy") and done.stderr.count("\n") == 1
    assert "source /opt/ros/humble/setup.bash" in done.stderr
