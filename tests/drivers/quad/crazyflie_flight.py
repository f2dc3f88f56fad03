"""Small steps the Crazyflie tests share: arm and hover, put the simulated vehicle in the air, wait for a
condition with a deadline."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pytest

from drivers.quad.crazyflie import CrazyflieBackend
from robot_rl.backends.quadrotor import ThrustRates

#: Short deadlines and a quick landing keep each test within seconds; the limits are the defaults. The link
#: timeout is 1 s (default 0.3 s) so that a peer process starved by a loaded machine is not taken for a lost
#: link; the link-loss tests set it back.
FAST = dict(connect_timeout_s=3.0, land_speed_m_s=1.0, touchdown_height_m=0.03, land_timeout_s=5.0,
            reset_timeout_s=5.0, deadman_hold_s=0.3, status_hz=20.0, link_timeout_s=1.0)


def hover(drone: CrazyflieBackend, rates=(0.0, 0.0, 0.0)) -> ThrustRates:
    return drone.command(ThrustRates(collective_thrust_frac=drone.spec.hover_thrust_frac, body_rates_rad_s=rates))


def airborne(drone: CrazyflieBackend, peer, pos=(0.0, 0.0, 0.3), quat_wxyz=(1.0, 0.0, 0.0, 0.0),
             vel_m_s=(0.0, 0.0, 0.0)) -> None:
    """Arm with a hover command, then put the simulated vehicle in the air (world frame)."""
    hover(drone)
    peer.call("vehicle.place", np.array(pos, dtype=float), np.array(quat_wxyz, dtype=float),
              np.array(vel_m_s, dtype=float))
    poll(lambda: drone.read_state().pos_m[2] > pos[2] - 0.1, 1.0, every=lambda: hover(drone))  # seen by the backend


def poll(predicate: Callable[[], object], timeout_s: float, every: Callable[[], object] | None = None) -> object:
    """Wait for ``predicate`` (truthy result returned), calling ``every`` (e.g. a policy command) at 50 Hz;
    fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if every is not None:
            every()
        time.sleep(0.02)
    pytest.fail(f"not within {timeout_s} s: {predicate.__doc__ or predicate}")
