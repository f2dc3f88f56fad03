"""One franka-sim server per test session (libfranka's port 1337 is fixed), in its own venv.

The server starts on first use, is probed for readiness by franka-sim's own handshake (a deadline,
no sleeps) and gets SIGTERM at the end of the session. Tests skip, with the reason, when the
franka-sim venv (``make test`` builds it) or franky (the ``arm`` extra) is missing.
"""

from __future__ import annotations

import pathlib

import pytest

from drivers.arm.fr3_sim_venv import FrankaSimProcess, venv_python

RIG = pathlib.Path(__file__).with_name("franka_sim_rig.toml")


@pytest.fixture(scope="session")
def franka_sim(tmp_path_factory):
    python = venv_python()
    if python is None:
        pytest.skip("the franka-sim venv (.venv-franka-sim) is absent or stale: run `make test` or "
                    "`python drivers/arm/fr3_sim_venv.py`")
    pytest.importorskip("franky", reason='franky-control is not installed: pip install -e ".[arm]" -c constraints.txt')
    server = FrankaSimProcess(python, tmp_path_factory.mktemp("franka-sim") / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fr3_franka_sim(franka_sim):
    """The franka-sim server ``fr3`` connects to (a module may override it with its own server)."""
    return franka_sim


@pytest.fixture
def fr3(fr3_franka_sim):
    """``fr3(**overrides)``: an unconnected FR3 backend on the franka-sim rig (options win over the
    rig file), closed after the test: libfranka admits one client, so tests never hold two. A test
    that killed the server leaves it to the next one to start it again."""
    from drivers.arm.fr3 import Fr3Arm
    from drivers.arm.fr3_config import load_fr3_rig

    made = []

    def make(**overrides) -> Fr3Arm:
        if not fr3_franka_sim.running:
            fr3_franka_sim.start()
        made.append(Fr3Arm(load_fr3_rig(RIG, **overrides)))
        return made[-1]

    yield make
    for backend in made:
        backend.close()
