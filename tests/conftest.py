"""Shared test set-up: headless rendering, and `hardware` tests skipped unless asked for."""

import os

# Before anything imports mujoco: render offscreen with EGL unless the caller chose (osmesa).
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if os.environ.get("ROBOT_RL_HARDWARE") == "1":
        return
    skip = pytest.mark.skip(reason="needs a real device; set ROBOT_RL_HARDWARE=1 (and the device address) to run")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)
