"""Shared test set-up: headless rendering, and `hardware` tests skipped unless asked for."""

import os

# Before anything imports mujoco: render offscreen with EGL unless the caller chose (osmesa).
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
# Before anything imports torch: one OpenMP thread in this process and the robot-rl processes tests start.
# The tests' nets are tiny and CI has 2 cores shared by pytest and its subprocesses; OpenMP's spin-waiting
# threads made torch tests ~5x slower whenever another process held a core (a 3-env training test: 28 s -> 6 s).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if os.environ.get("ROBOT_RL_HARDWARE") == "1":
        return
    skip = pytest.mark.skip(reason="needs a real device; set ROBOT_RL_HARDWARE=1 (and the device address) to run")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)
