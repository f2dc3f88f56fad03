"""Our FR3 MJCF (the model franka-sim runs) against the published FR3 numbers: joint limits as in
drivers/arm/fr3_constants.py, and forward kinematics equal to the modified-DH chain, computed here
independently of MuJoCo; the TCP frame the backend reports equals the sim arm's ``tcp`` site."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from drivers.arm import fr3_constants as fr3
from drivers.arm.fr3_safety import TcpFrame
from drivers.arm.fr3_sim_venv import FR3_MJCF
from sim.arm.backend import ASSET as SIM_ARM_ASSET

DH_A_M = (0.0, 0.0, 0.0, 0.0825, -0.0825, 0.0, 0.088, 0.0)
DH_D_M = (0.333, 0.0, 0.316, 0.0, 0.384, 0.0, 0.0, 0.107)
DH_ALPHA_RAD = (0.0, -np.pi / 2, np.pi / 2, np.pi / 2, -np.pi / 2, np.pi / 2, np.pi / 2, 0.0)


def dh_flange(q: np.ndarray) -> np.ndarray:
    """Flange pose (4x4, base frame) of the modified (Craig) DH chain."""
    pose = np.eye(4)
    for a, d, alpha, theta in zip(DH_A_M, DH_D_M, DH_ALPHA_RAD, list(q) + [0.0]):
        ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
        pose = pose @ np.array([[ct, -st, 0, a], [st * ca, ct * ca, -sa, -d * sa], [st * sa, ct * sa, ca, d * ca], [0, 0, 0, 1]])
    return pose


@pytest.fixture(scope="module")
def model():
    return mujoco.MjModel.from_xml_path(str(FR3_MJCF))


def random_configurations(count: int, seed: int = 0) -> np.ndarray:
    limits = fr3.JOINT_LIMITS_RAD
    return np.random.default_rng(seed).uniform(limits[:, 0], limits[:, 1], size=(count, 7))


def test_joint_limits_are_the_datasheet_numbers(model):
    names = [f"fr3_joint{i}" for i in range(1, 8)]
    np.testing.assert_array_equal([model.joint(n).range for n in names], fr3.JOINT_LIMITS_RAD)
    assert model.njnt == 7 and model.nu == 0
    assert all(model.geom_contype == 0) and all(model.geom_conaffinity == 0)  # no contacts in this model


def test_forward_kinematics_match_the_dh_chain(model):
    data = mujoco.MjData(model)
    flange = model.body("fr3_link8").id
    for q in np.vstack([np.zeros(7), random_configurations(20)]):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        expected = dh_flange(q)
        np.testing.assert_allclose(data.xpos[flange], expected[:3, 3], atol=1e-6)
        np.testing.assert_allclose(data.xmat[flange].reshape(3, 3), expected[:3, :3], atol=1e-6)
    data.qpos[:] = 0.0
    mujoco.mj_kinematics(model, data)
    np.testing.assert_allclose(data.xpos[flange], [0.088, 0.0, 0.926], atol=1e-9)  # the well-known zero pose


def test_the_link7_tcp_frame_is_the_sim_arms_tcp_site():
    """franka-sim reports link 7; the backend adds flange + hand offsets: that must land on the same
    TCP (position and orientation) the MuJoCo arm's tasks see."""
    sim = mujoco.MjModel.from_xml_path(str(SIM_ARM_ASSET))
    data = mujoco.MjData(sim)
    frame = TcpFrame.from_reported("link7")
    link7, tcp = sim.body("link7").id, sim.site("tcp").id
    for q in random_configurations(10, seed=1):
        data.qpos[:7] = np.clip(q, sim.jnt_range[:7, 0], sim.jnt_range[:7, 1])
        mujoco.mj_kinematics(sim, data)
        link7_quat = np.zeros(4)
        mujoco.mju_mat2Quat(link7_quat, data.xmat[link7])
        pos, quat = frame.tcp_from_ee(data.xpos[link7], link7_quat)
        np.testing.assert_allclose(pos, data.site_xpos[tcp], atol=1e-6)
        site_quat = np.zeros(4)
        mujoco.mju_mat2Quat(site_quat, data.site_xmat[tcp])
        assert abs(abs(np.dot(quat, site_quat)) - 1.0) < 1e-9
