"""Terminal keyboard through a real pty: the driver gets the slave side, the test types on the master."""

import logging
import os
import termios
import time

import numpy as np
import pytest

from drivers.teleop.keyboard import KeyboardConfig, TerminalKeyboard, decode_keys
from drivers.teleop.testing import wait_for


@pytest.fixture
def pty():
    master, slave = os.openpty()
    yield master, slave
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


@pytest.fixture
def keyboard(pty):
    _, slave = pty
    with TerminalKeyboard(KeyboardConfig(fd=slave, hold_s=0.2)) as device:
        yield device


def type_keys(pty, data: bytes) -> None:
    os.write(pty[0], data)


def test_cbreak_while_connected_and_restored_on_close(pty):
    _, slave = pty
    before = termios.tcgetattr(slave)
    keyboard = TerminalKeyboard(KeyboardConfig(fd=slave))
    assert termios.tcgetattr(slave) == before  # nothing happens in __init__
    keyboard.connect()
    lflag = termios.tcgetattr(slave)[3]
    assert not lflag & termios.ECHO and not lflag & termios.ICANON and lflag & termios.ISIG  # Ctrl-C works
    keyboard.close()
    assert termios.tcgetattr(slave) == before


def test_terminal_restored_when_the_body_raises(pty):
    _, slave = pty
    before = termios.tcgetattr(slave)
    with pytest.raises(ZeroDivisionError):
        with TerminalKeyboard(KeyboardConfig(fd=slave)):
            1 / 0
    assert termios.tcgetattr(slave) == before


@pytest.mark.parametrize(
    "key, expected_base",
    [(b"w", [1, 0, 0]), (b"s", [-1, 0, 0]), (b"a", [0, 1, 0]), (b"d", [0, -1, 0]), (b"r", [0, 0, 1]), (b"f", [0, 0, -1])],
)
def test_motion_keys_in_the_base_frame(pty, keyboard, key, expected_base):
    type_keys(pty, key)
    event = wait_for(lambda: (e := keyboard.poll()).intervening and e)
    np.testing.assert_allclose(event.action[:3], 0.5 * np.array(expected_base))  # default scale 0.5


def test_a_key_press_moves_for_hold_s_then_hands_back(pty, keyboard):
    type_keys(pty, b"w")
    wait_for(lambda: keyboard.poll().intervening)
    assert keyboard.poll().action[0] == 0.5  # still moving without a new key
    time.sleep(0.25)
    assert not keyboard.poll().intervening


def test_space_toggles_control_and_g_toggles_the_gripper(pty, keyboard):
    policy = np.array([0.2, 0.0, 0.0, 1.0], dtype=np.float32)
    type_keys(pty, b" ")
    event = wait_for(lambda: (e := keyboard.poll(policy)).intervening and e)
    assert event.action.tolist() == [0.0, 0.0, 0.0, 1.0]  # held still, gripper as the policy had it
    type_keys(pty, b"g")
    wait_for(lambda: keyboard.poll(policy).action[-1] == -1.0)
    time.sleep(0.3)
    assert keyboard.poll(policy).action[-1] == -1.0  # stays closed, still in control
    type_keys(pty, b" ")
    wait_for(lambda: not keyboard.poll(policy).intervening)


@pytest.mark.parametrize(
    "data, flag",
    [(b"\r", "success"), (b"\n", "success"), (b"\x7f", "failure"), (b"\x08", "failure"),
     (b"x", "rerecord"), (b"q", "end_episode")],
)
def test_episode_keys_are_edge_triggered(pty, keyboard, data, flag):
    type_keys(pty, data)
    event = wait_for(lambda: (e := keyboard.poll()) and getattr(e, flag) and e)
    assert not event.intervening
    assert not getattr(keyboard.poll(), flag)


def test_escape_sequences_are_ignored():
    assert decode_keys(b"\x1b[A\x1b[1;5Dw\x1bOdq\x1b") == ["w", "q"]
    assert decode_keys(b"a\rb\x08") == ["a", "\n", "b", "\x7f"]


def test_hung_up_terminal_disconnects_and_warns_once(pty, keyboard, caplog):
    type_keys(pty, b" ")
    wait_for(lambda: keyboard.poll().intervening)
    with caplog.at_level(logging.WARNING):
        os.close(pty[0])
        event = wait_for(lambda: (e := keyboard.poll()) and not e.connected and e)
        keyboard.poll()
    assert not event.intervening and event.action is None
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_not_a_tty_is_a_clear_error():
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(RuntimeError, match="not a tty"):
            TerminalKeyboard(KeyboardConfig(fd=read_end)).connect()
    finally:
        os.close(read_end)
        os.close(write_end)


def test_poll_before_connect_is_disconnected():
    assert not TerminalKeyboard().poll().connected
