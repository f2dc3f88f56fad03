"""Reusable checks for anything that plugs into robot_rl (see :mod:`robot_rl.testing.conformance`)."""

from robot_rl.testing.conformance import check_conformance

__all__ = ["check_conformance"]
