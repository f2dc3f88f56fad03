"""Reusable checks for anything that plugs into robot_rl: :mod:`robot_rl.testing.conformance` for envs
and tasks, :mod:`robot_rl.testing.arm_backend`, :mod:`robot_rl.testing.car_backend` and
:mod:`robot_rl.testing.quad_backend` for robot backends (a new backend runs the same checks as the
simulated one), :mod:`robot_rl.testing.library_fakes` for fakes of a vendor library."""

from robot_rl.testing.conformance import check_conformance

__all__ = ["check_conformance"]
