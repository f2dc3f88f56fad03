"""MuJoCo (and later JAX) implementations of the backend contracts."""

import robot_rl  # noqa: F401  (sets the headless MUJOCO_GL default before mujoco is imported)
