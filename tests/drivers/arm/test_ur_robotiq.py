"""A UR with a Robotiq 2F from one rig file: the UR over its signature-checked ur_rtde fakes, the
gripper through the real driver over a pty to the Modbus RTU emulator. The arm checks pass with the
gripper in the loop, and the widths the arm is commanded reach the gripper's registers."""

from __future__ import annotations

import numpy as np
import pytest
from robotiq_emulator import RobotiqEmulator
from ur_fakes import FakeUr

from drivers.arm.grippers import load_rig_gripper
from drivers.arm.robotiq import Robotiq2F
from drivers.arm.ur import UrArm
from drivers.arm.ur_config import load_ur_rig
from robot_rl.backends.arm import ArmTarget
from robot_rl.testing.arm_backend import check_arm_backend

pytest.importorskip("minimalmodbus", reason='the Robotiq driver needs minimalmodbus: pip install -e ".[gripper]"')


@pytest.fixture
def rig(tmp_path):
    with RobotiqEmulator() as emulator:
        path = tmp_path / "rig.toml"
        path.write_text('[arm.ur]\nhost = "192.0.2.10"\nscript_watchdog_hz = 0.25\n'
                        f'[gripper.robotiq_2f]\nport = "{emulator.port}"\nreply_timeout_s = 0.5\n'
                        'activation_timeout_s = 3.0\n')
        yield path, emulator


def test_a_ur_with_the_rigs_robotiq_passes_the_arm_checks_and_drives_the_fingers(rig):
    path, emulator = rig
    gripper = load_rig_gripper(path)
    assert isinstance(gripper, Robotiq2F)
    robot = FakeUr()
    check_arm_backend(UrArm(load_ur_rig(path), gripper=gripper, library=robot.fake_library))
    assert not gripper.connected  # closed with the arm
    with UrArm(load_ur_rig(path), gripper=load_rig_gripper(path), library=robot.fake_library) as arm:
        arm.reset()
        state = arm.read_state()
        sent = arm.command(ArmTarget(state.tcp_pos_m, state.tcp_quat_wxyz, 0.02))
        assert sent.gripper_width_m == pytest.approx(0.02, abs=0.001)
        request = emulator.position_of_width(0.02)
        assert emulator.wait_for(lambda: any(w.position == request and w.go_to for w in emulator.writes), timeout_s=3.0)
        assert np.isfinite(arm.read_state().gripper_width_m)
