"""A real Crazyflie: take off, hover 3 s on the shared position controller through thrust + body-rate
setpoints, land. Needs ``ROBOT_RL_HARDWARE=1``, ``ROBOT_RL_CRAZYFLIE_URI`` (e.g.
``radio://0/80/2M/E7E7E7E7E7``), a position deck (Flow, Lighthouse, Loco) or motion capture, a charged
battery and 1.5 m of free space around and above the drone; skipped otherwise."""

import os
import time

import numpy as np
import pytest

from drivers.quad.control import QuadController
from drivers.quad.crazyflie import CrazyflieBackend
from drivers.quad.crazyflie_config import CrazyflieConfig
from robot_rl.backends.quadrotor import ThrustRates

URI = os.environ.get("ROBOT_RL_CRAZYFLIE_URI")
pytestmark = [
    pytest.mark.hardware,
    pytest.mark.skipif(not URI, reason="set ROBOT_RL_CRAZYFLIE_URI (e.g. radio://0/80/2M/E7E7E7E7E7) and "
                                       "ROBOT_RL_HARDWARE=1 to fly a real Crazyflie"),
]


def test_take_off_hover_and_land_on_a_real_crazyflie():
    with CrazyflieBackend(CrazyflieConfig(uri=URI)) as drone:
        start = drone.read_state()
        assert start.battery_v > drone.spec.min_battery_v + 0.3, f"charge the battery first ({start.battery_v} V)"
        target = start.pos_m + np.array([0.0, 0.0, 0.5])
        drone.set_state(target, np.array([1.0, 0, 0, 0]), np.zeros(3), np.zeros(3))  # take off, fly to target
        controller = QuadController.from_spec(drone.spec)
        errors = []
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            state = drone.read_state()
            collective, rates = controller.position_to_thrust_rates(state.pos_m, state.vel_m_s, state.quat_wxyz,
                                                                    target, 0.0, np)
            drone.command(ThrustRates(collective_thrust_frac=float(collective), body_rates_rad_s=rates))
            errors.append(np.linalg.norm(state.pos_m - target))
            drone.sync(0.01)
        status = drone.link_status()
        assert status.mode == "flying" and status.setpoint_rate_hz >= 100 and status.state_rate_hz >= 90, status
        assert np.sqrt(np.mean(np.square(errors))) < 0.15
        drone.stop()
        deadline = time.monotonic() + drone.config.land_timeout_s
        while drone.read_state().armed and time.monotonic() < deadline:
            drone.sync(0.05)
        assert not drone.read_state().armed
