"""End to end, the robot-side server in front of a real-protocol arm: an actor-side ``remote``
backend -> ``robot-rl serve-robot`` (a real process, CURVE keys) -> the FR3 backend (franky,
libfranka 0.21) -> franka-sim. The arm checks hold through the whole chain, and the server gives
libfranka's single connection back when the client closes."""

from __future__ import annotations

import pathlib

import pytest

from robot_rl.remote.client import RemoteBackend, RemoteConfig
from robot_rl.remote.testing import ServeRobotProcess
from robot_rl.testing.arm_backend import check_arm_backend
from robot_rl.transport.auth import generate_keys

RIG = pathlib.Path(__file__).with_name("franka_sim_rig.toml")


@pytest.fixture
def fr3_server(franka_sim, tmp_path):
    if not franka_sim.running:
        franka_sim.start()
    generate_keys(tmp_path / "keys")
    server = ServeRobotProcess(RIG, tmp_path / "server.log", "--backend", "fr3", "--keys", str(tmp_path / "keys"))
    server.start()
    yield server, tmp_path / "keys"
    assert server.stop() in (0, None), server.text


def test_the_fr3_over_franka_sim_passes_the_arm_checks_through_serve_robot(fr3_server):
    server, keys = fr3_server
    arm = RemoteBackend(RemoteConfig(server=server.endpoint, keys=str(keys), timeout_s=3.0), "arm")
    check_arm_backend(arm)
    server.wait_for(r"client '.+' gone \(closed by the client\)", 10.0)  # the FR3 backend is closed: libfranka is free again
