"""A Franka with a Robotiq 2F in place of the Franka Hand, from one rig file: the gripper through the
real driver over a pty to the Modbus RTU emulator; the Panda over its signature-checked panda-python
fakes (the full arm checks), the FR3 over franka-sim (widths reach the gripper's registers)."""

from __future__ import annotations

import pathlib

import pytest
from panda_py_fakes import FakePandaRig
from robotiq_emulator import RobotiqEmulator

from drivers.arm.fr3_config import load_fr3_rig
from drivers.arm.grippers import load_rig_gripper
from drivers.arm.panda_py_backend import PandaPyArm
from drivers.arm.panda_py_config import PandaConfig
from robot_rl.backends.arm import ArmTarget
from robot_rl.testing.arm_backend import check_arm_backend

pytest.importorskip("minimalmodbus", reason='the Robotiq driver needs minimalmodbus: pip install -e ".[gripper]"')

RIG = pathlib.Path(__file__).with_name("franka_sim_rig.toml")  # the FR3 on franka-sim


@pytest.fixture
def gripper_rig(tmp_path):
    with RobotiqEmulator() as emulator:
        path = tmp_path / "rig.toml"
        path.write_text(f'[gripper.robotiq_2f]\nport = "{emulator.port}"\nreply_timeout_s = 0.5\n'
                        'activation_timeout_s = 3.0\n')
        yield path, emulator


def sent_width(emulator, width_m: float) -> bool:
    request = emulator.position_of_width(width_m)
    return emulator.wait_for(lambda: any(w.position == request and w.go_to for w in emulator.writes), timeout_s=3.0)


def test_a_panda_with_a_robotiq_passes_the_arm_checks_and_drives_the_fingers(gripper_rig):
    path, emulator = gripper_rig
    gripper = load_rig_gripper(path)
    arm = PandaPyArm(PandaConfig(host="172.16.0.2", gripper="none"), library=FakePandaRig().library, gripper=gripper)
    assert arm.spec.gripper_max_width_m == pytest.approx(0.085)
    check_arm_backend(arm)
    assert not arm.connected and not gripper.connected  # closed with the arm
    with PandaPyArm(PandaConfig(host="172.16.0.2", gripper="none"), library=FakePandaRig().library,
                    gripper=load_rig_gripper(path)) as again:
        state = again.read_state()
        again.command(ArmTarget(state.tcp_pos_m, state.tcp_quat_wxyz, 0.04))
        assert sent_width(emulator, 0.04)
    with pytest.raises(ValueError, match="either its Franka Hand or a separate gripper"):
        PandaPyArm(PandaConfig(host="172.16.0.2"), gripper=load_rig_gripper(path))  # the rig's default: franka_hand


def test_an_fr3_with_a_robotiq_drives_the_fingers(gripper_rig, fr3_franka_sim):
    from drivers.arm.fr3 import Fr3Arm

    path, emulator = gripper_rig
    if not fr3_franka_sim.running:
        fr3_franka_sim.start()
    with Fr3Arm(load_fr3_rig(RIG, gripper="none"), gripper=load_rig_gripper(path)) as arm:
        state = arm.read_state()
        sent = arm.command(ArmTarget(state.tcp_pos_m, state.tcp_quat_wxyz, 0.03))
        assert sent.gripper_width_m == pytest.approx(0.03) and sent_width(emulator, 0.03)
        assert 0.0 <= arm.read_state().gripper_width_m <= 0.085
    assert not arm.connected
