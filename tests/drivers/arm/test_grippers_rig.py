"""drivers.arm.grippers: the rig file's [gripper.<kind>] table becomes an unconnected Gripper."""

from __future__ import annotations

import pytest

from drivers.arm.grippers import load_rig_gripper
from robot_rl.backends.gripper import Gripper


def rig(tmp_path, text: str):
    path = tmp_path / "rig.toml"
    path.write_text(text)
    return path


def test_no_gripper_table_means_no_separate_gripper(tmp_path):
    assert load_rig_gripper(rig(tmp_path, '[arm.ur]\nhost = "10.0.0.2"\n')) is None


def test_a_robotiq_table_gives_an_unconnected_robotiq(tmp_path):
    gripper = load_rig_gripper(rig(tmp_path, '[gripper.robotiq_2f]\nport = "/dev/ttyUSB7"\nmodel = "2F-140"\n'
                                             'open_position = 3\nclosed_position = 230\n'))
    assert isinstance(gripper, Gripper) and not gripper.connected
    assert gripper.config.port == "/dev/ttyUSB7" and gripper.max_width_m == pytest.approx(0.140)


@pytest.mark.parametrize("text, match", [
    ('[gripper.schunk]\nport = "x"\n', r"one table of a known kind \(\['robotiq_2f'\]\), got \['schunk'\]"),
    ('[gripper.robotiq_2f]\nport = "x"\nspeed = 1\n', r"\[gripper.robotiq_2f\]: unknown field\(s\) \['speed'\]"),
    ('[gripper.robotiq_2f]\nport = "x"\nmodel = "3F"\n', r"\[gripper.robotiq_2f\]: RobotiqConfig.model must be one of"),
])
def test_bad_gripper_tables_name_the_file_table_and_field(tmp_path, text, match):
    with pytest.raises(ValueError, match=match) as err:
        load_rig_gripper(rig(tmp_path, text))
    assert "rig.toml" in str(err.value)
