"""Fixtures of the teleop driver tests."""

import pytest

from pad_person import rest


@pytest.fixture
def pad():
    """A real SDL virtual gamepad (Xbox layout: 6 axes, 11 buttons, a hat) at rest, unplugged after
    the test. test_gamepad.py has its own."""
    pytest.importorskip("pygame")
    from drivers.teleop.testing import VirtualJoystick

    with VirtualJoystick(num_axes=6, num_buttons=11, num_hats=1) as joystick:
        rest(joystick)
        yield joystick
