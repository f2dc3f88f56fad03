"""Gamepad through pygame, against a real SDL virtual joystick (SDL_JoystickAttachVirtual)."""

import logging
import os
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless, as on a robot computer

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pygame = pytest.importorskip("pygame")

from drivers.teleop.gamepad import Gamepad, GamepadConfig  # noqa: E402
from drivers.teleop.testing import VirtualJoystick, sdl_library, wait_for  # noqa: E402
from robot_rl.human.teleop import AxisMap, ButtonMap  # noqa: E402

LT, RT = 2, 5
A, B, X, Y, RB = 0, 1, 2, 3, 5


@pytest.fixture
def pad():
    joystick = VirtualJoystick(num_axes=6, num_buttons=11, num_hats=1)
    joystick.attach()
    joystick.set_axis(LT, -1.0)  # triggers rest at -1
    joystick.set_axis(RT, -1.0)
    yield joystick
    joystick.detach()


@pytest.fixture
def gamepad(pad):
    with Gamepad(GamepadConfig(index=pad.index)) as device:
        yield device


def test_only_the_joystick_subsystems_are_initialized(gamepad):
    sdl = sdl_library()
    sdl_init_audio, sdl_init_video, sdl_init_joystick = 0x10, 0x20, 0x200
    assert sdl.SDL_WasInit(sdl_init_joystick)
    assert not sdl.SDL_WasInit(sdl_init_video) and not sdl.SDL_WasInit(sdl_init_audio)
    assert "Virtual" in gamepad.name


def test_resting_pad_does_not_intervene(pad, gamepad):
    time.sleep(0.03)
    event = gamepad.poll()
    assert event.connected and not event.intervening and event.action is None


@pytest.mark.parametrize(
    "axis, value, expected_base",
    [
        (1, -1.0, [1.0, 0.0, 0.0]),  # left stick up (SDL: y negative) -> +x forward
        (1, 1.0, [-1.0, 0.0, 0.0]),
        (0, -1.0, [0.0, 1.0, 0.0]),  # left stick left -> +y left
        (0, 1.0, [0.0, -1.0, 0.0]),
        (4, -1.0, [0.0, 0.0, 1.0]),  # right stick up -> +z up
    ],
)
def test_sticks_map_to_the_base_frame(pad, gamepad, axis, value, expected_base):
    pad.set_axis(axis, value)
    event = wait_for(lambda: (e := gamepad.poll()).intervening and e)
    np.testing.assert_allclose(event.action[:3], expected_base, atol=1e-4)


def test_rb_holds_control_still_and_a_b_drive_the_gripper(pad, gamepad):
    policy = np.array([0.3, 0.0, 0.0, 1.0], dtype=np.float32)
    pad.set_button(RB, True)
    event = wait_for(lambda: (e := gamepad.poll(policy)).intervening and e)
    assert event.action.tolist() == [0.0, 0.0, 0.0, 1.0]  # still, gripper as the policy had it
    pad.set_button(A, True)
    wait_for(lambda: gamepad.poll(policy).action[-1] == -1.0)
    pad.set_button(A, False)
    pad.set_button(B, True)
    wait_for(lambda: gamepad.poll(policy).action[-1] == 1.0)
    pad.set_button(B, False)
    pad.set_button(RB, False)
    wait_for(lambda: not gamepad.poll(policy).intervening)


def test_a_tap_between_polls_is_caught_by_the_sampler(pad, gamepad):
    gamepad.poll()
    pad.set_button(Y, True)
    time.sleep(0.1)  # sampled at 200 Hz
    pad.set_button(Y, False)
    time.sleep(0.1)
    event = gamepad.poll()
    assert event.success and not event.failure
    assert not gamepad.poll().success


def test_sampling_in_poll_without_a_thread(pad):
    with Gamepad(GamepadConfig(index=pad.index, sample_hz=None)) as gamepad:
        pad.set_axis(1, -1.0)
        pad.set_button(X, True)
        event = gamepad.poll()
        assert event.intervening and event.action[0] == pytest.approx(1.0, abs=1e-4) and event.failure


def test_unplug_stops_intervention_and_warns_once(pad, gamepad, caplog):
    pad.set_axis(1, -1.0)
    wait_for(lambda: gamepad.poll().intervening)
    with caplog.at_level(logging.WARNING):
        pad.detach()
        event = wait_for(lambda: (e := gamepad.poll()) and not e.connected and e)
        event = gamepad.poll()
    assert not event.intervening and event.action is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Virtual" in warnings[0].getMessage()


def test_missing_pad_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no gamepad at index 7.*joystick"):
        Gamepad(GamepadConfig(index=7)).connect()


def test_too_few_axes_is_a_clear_error():
    with VirtualJoystick(num_axes=2, num_buttons=2, num_hats=0) as small:
        index = small.index
        with pytest.raises(RuntimeError, match="has 2 axes and 2 buttons"):
            Gamepad(GamepadConfig(index=index)).connect()
        config = GamepadConfig(index=index, axis_map=AxisMap.from_axes([(1, -1.0)], device_dim=2), buttons=ButtonMap())
        with Gamepad(config) as gamepad:
            assert gamepad.action_shape == (2,)


@pytest.mark.hardware
def test_real_gamepad_left_stick_forward():
    """Needs a pad: ROBOT_RL_HARDWARE=1; push the left stick up during the test."""
    with Gamepad() as gamepad:
        deadline = time.monotonic() + float(os.environ.get("ROBOT_RL_TELEOP_WAIT_S", "10"))
        while time.monotonic() < deadline:
            event = gamepad.poll()
            if event.intervening and event.action[0] > 0.5:
                return
            time.sleep(0.02)
    pytest.fail("no left-stick-up (+x) seen from the gamepad")
