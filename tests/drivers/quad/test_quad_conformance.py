"""The quadrotor backend checks (robot_rl.testing.quad_backend) on the MuJoCo quadrotor and on the Crazyflie through
cflib over the CRTP peer: the same observable contract, simulated and through the real packet layout."""

import numpy as np
from crazyflie_flight import FAST
from robot_rl.testing.quad_backend import check_quad_backend

from drivers.quad.crazyflie import CrazyflieBackend
from drivers.quad.crazyflie_config import CrazyflieConfig
from sim.quad.backend import MujocoQuad


def test_the_mujoco_quad_passes_the_quadrotor_checks():
    check_quad_backend(MujocoQuad(), np.array([0.2, -0.1, 0.8]))


def test_the_crazyflie_over_the_peer_passes_the_quadrotor_checks(peer):
    check_quad_backend(CrazyflieBackend(CrazyflieConfig(uri=peer.uri, **FAST)), np.array([0.2, -0.1, 0.5]))


def test_the_crazyflie_at_the_attitude_level_passes_the_quadrotor_checks(peer):
    config = CrazyflieConfig(uri=peer.uri, level="attitude", **FAST)
    check_quad_backend(CrazyflieBackend(config), np.array([0.0, 0.0, 0.5]))
