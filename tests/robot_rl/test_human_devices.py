"""The teleop-device registry (robot_rl.human.devices): names from the installed entry points, clear
errors for unknown names and broken entry points, and the commands' --hil/--teleop validation."""

import contextlib
import subprocess
import sys
from importlib import metadata

import gymnasium as gym
import pytest
import tyro

import drivers.teleop
from robot_rl.cli import Record, Train
from robot_rl.distributed.commands import Actor, Launch, Learner
from robot_rl.human import devices
from robot_rl.human.devices import (
    ENTRY_POINT_GROUP,
    check_device_name,
    device_names,
    load_entry_point,
    open_device,
    scan,
    teleop_devices,
    with_human,
)
from robot_rl.reward.commands import RecordLabels
from robot_rl.train.config import TrainConfig

DRIVERS = ("gamepad", "keyboard", "spacemouse")


def entry_point(name, value):
    return metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_the_drivers_devices_are_found_through_their_installed_entry_point():
    installed = {point.name: point.value for point in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert installed.get("drivers") == "drivers.teleop:TELEOP_DEVICES"
    assert device_names() == ("simulated", *DRIVERS)
    assert teleop_devices() == drivers.teleop.TELEOP_DEVICES
    assert devices.registry_errors() == []


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        check_device_name("joystick")
    assert "unknown teleop device 'joystick'; choose one of: none, simulated, gamepad, keyboard, spacemouse" in str(err.value)
    with pytest.raises(ValueError, match="choose one of: gamepad, keyboard, spacemouse$"):
        check_device_name("simulated", allowed_extra=(), simulated=False)
    assert check_device_name("none") == "none" and check_device_name("keyboard") == "keyboard"
    with pytest.raises(ValueError, match="unknown teleop device 'joystick'"):
        open_device("joystick", gym.make("Pendulum-v1"), contextlib.ExitStack())


def test_a_broken_entry_point_is_named_with_its_error():
    broken = entry_point("my_pedals", "no_such_pedals_package:DEVICES")
    with pytest.raises(ValueError, match=r"teleop entry point 'my_pedals' \(no_such_pedals_package:DEVICES\) failed "
                                         r"to load: ModuleNotFoundError: No module named 'no_such_pedals_package'"):
        load_entry_point(broken)
    not_a_mapping = entry_point("classes", "drivers.teleop:SpaceMouse")
    duplicate = entry_point("again", "drivers.teleop:TELEOP_DEVICES")
    found, errors = scan([entry_point("drivers", "drivers.teleop:TELEOP_DEVICES"), broken, not_a_mapping, duplicate])
    assert found == drivers.teleop.TELEOP_DEVICES  # the others still count
    assert len(errors) == 3
    assert "'my_pedals'" in errors[0] and "No module named 'no_such_pedals_package'" in errors[0]
    assert "'classes'" in errors[1] and "mapping of device name -> 'module:Class'" in errors[1]
    assert "'again'" in errors[2] and ("already registered: ['gamepad', 'gamepad@car', 'gamepad@quadrotor', "
                                       "'keyboard', 'keyboard@car', 'spacemouse']") in errors[2]


def test_with_human_leaves_none_alone_and_needs_an_expert_for_simulated():
    env = gym.make("Pendulum-v1")
    with contextlib.ExitStack() as stack:
        assert with_human(env, "none", stack) is env
        with pytest.raises(ValueError, match="--hil simulated needs a robot_rl task with a scripted expert"):
            with_human(env, "simulated", stack)


def test_the_commands_take_the_documented_device_names():
    assert tyro.cli(Train, args=["--hil", "simulated"]).hil == "simulated"
    assert tyro.cli(Train, args=["--hil", "keyboard"]).hil == "keyboard"
    for driver in ("expert", "spacemouse", "gamepad", "keyboard"):
        assert tyro.cli(Record, args=["--teleop", driver]).driver() == driver
    assert tyro.cli(Record, args=["--expert"]).driver() == "expert"
    assert tyro.cli(RecordLabels, args=["--source", "teleop", "--teleop", "keyboard"]).teleop == "keyboard"
    assert tyro.cli(Actor, args=["--id", "a0", "--hil", "simulated"]).hil == "simulated"
    assert tyro.cli(Launch, args=["--hil", "simulated"]).hil == "simulated"
    assert Learner(hil="gamepad").hil == "gamepad"


def test_the_commands_reject_other_names_naming_the_known_ones():
    known = "simulated, gamepad, keyboard, spacemouse"
    with pytest.raises(ValueError, match=f"unknown teleop device 'expert'; choose one of: none, {known}"):
        TrainConfig(hil="expert")
    with pytest.raises(ValueError, match=f"unknown teleop device 'wiimote'; choose one of: none, {known}"):
        Actor(id="a0", hil="wiimote")
    with pytest.raises(ValueError, match=f"choose one of: none, expert, {known}"):
        Record(teleop="wiimote")
    with pytest.raises(ValueError, match="choose one of: gamepad, keyboard, spacemouse"):
        RecordLabels(source="teleop", teleop="simulated")
    with pytest.raises(ValueError, match="launch runs simulated actors"):
        Launch(hil="keyboard")


def loaded_after(imports, modules):
    code = f"import sys, {imports}; print([m for m in {modules!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_robot_rl_human_is_cheap_and_reaches_nothing_above_it():
    above = ("robot_rl.train", "robot_rl.reward", "robot_rl.wrappers", "robot_rl.distributed")
    # (`import robot_rl` imports the plugins' registration modules, e.g. drivers/quad/__init__.py, but no driver)
    assert loaded_after("robot_rl.human", ("torch", "mujoco", "pygame", "cv2", "drivers.teleop", *above)) == "[]"
    every = ", ".join(f"robot_rl.human.{m}" for m in ("teleop", "simulated", "intervene", "devices", "recording",
                                                       "view", "labels"))
    assert loaded_after(every, ("torch", *above)) == "[]"
