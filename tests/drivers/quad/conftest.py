"""Fixtures of the Crazyflie tests: a CRTP peer on a free 127.0.0.1 port (:mod:`crazyflie_peer`), in one
process shared by the session, and the cflib backend connected to it through cflib's own ``udp://``
link driver."""

from __future__ import annotations

from typing import Callable

import pytest

from crazyflie_flight import FAST
from crazyflie_peer import PeerProcess

from drivers.quad.crazyflie import CrazyflieBackend
from drivers.quad.crazyflie_config import CrazyflieConfig


@pytest.fixture(scope="session")
def peer_process():
    process = PeerProcess()
    yield process
    process.close()


@pytest.fixture
def peer(peer_process) -> PeerProcess:
    """A fresh peer (new port, new vehicle on the floor) in the shared peer process."""
    peer_process.restart()
    return peer_process


@pytest.fixture
def make_drone(peer) -> Callable[..., CrazyflieBackend]:
    """``make_drone(**config)``: a backend connected to ``peer``; closed (landing first) after the test."""
    made: list[CrazyflieBackend] = []

    def make(**options) -> CrazyflieBackend:
        drone = CrazyflieBackend(CrazyflieConfig(uri=peer.uri, **{**FAST, **options}))
        drone.connect()
        made.append(drone)
        return drone

    yield make
    for drone in made:
        drone.close()
