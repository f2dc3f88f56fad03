"""`robot-rl record` driven by a human: the real pick_cube sim with a terminal keyboard over a pty, a
SpaceMouse over a fake hidapi and a gamepad on an SDL virtual joystick (hardware faked at the
library boundary only); plus the expert, missing devices, --view without a GUI, the status line
and Ctrl-C."""

import io
import os
import signal
import subprocess
import sys
import threading
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless, as on a robot computer

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import robot_rl  # noqa: E402
from drivers.teleop.keyboard import KeyboardConfig, TerminalKeyboard  # noqa: E402
from drivers.teleop.spacemouse import SpaceMouse, SpaceMouseConfig, is_spacemouse, known_models  # noqa: E402
from drivers.teleop.testing import FakeHidApi, FakeHidDevice, wait_for  # noqa: E402
from robot_rl import cli  # noqa: E402
from robot_rl.data import read_episode, read_episodes  # noqa: E402
from robot_rl.human.devices import DeviceUnavailable  # noqa: E402
from robot_rl.human.recording import expert_policy, record  # noqa: E402
from robot_rl.human.view import StatusLine, gui_problem  # noqa: E402

pytestmark = pytest.mark.timeout(60)

SUCCESS, FAILURE, RERECORD, END = b"\n", b"\x7f", b"x", b"q"  # the keyboard's default bindings


@pytest.fixture(scope="module")
def env():
    env = robot_rl.make("pick_cube", obs="state", render_mode="rgb_array", max_episode_steps=3000)
    yield env.unwrapped
    env.close()


def tcp(env, episode):
    return episode.observations["state"][:, env.state_layout["tcp_pos_m"]]


# ---------------------------------------------------------------------- keyboard over a pty
@pytest.fixture
def keyboard():
    master, slave = os.openpty()
    device = TerminalKeyboard(KeyboardConfig(fd=slave, hold_s=0.2))
    device.connect()
    yield device, master
    device.close()
    os.close(master)
    os.close(slave)


def typist(master, *keys):
    """A person at the keyboard: types each ``(delay_s, bytes)`` in turn, from a thread. Keys typed
    before the recording polls are read at its first poll."""

    def type_all():
        for delay_s, data in keys:
            time.sleep(delay_s)
            os.write(master, data)

    thread = threading.Thread(target=type_all, daemon=True)
    thread.start()
    return thread


def test_keys_move_the_arm_and_the_success_key_writes_a_human_episode(env, keyboard, tmp_path, capsys):
    device, master = keyboard
    typist(master, (0.0, b"w"), (0.4, SUCCESS))
    summary = record(env, None, tmp_path, 1, 7, "sim", "keyboard", device=device, status=True)
    assert summary.kept == summary.successes == summary.episodes == 1 and summary.rerecorded == 0
    episode = read_episode(summary.files[0], task="pick_cube")
    assert episode.intervention.all() and episode.success and episode.terminated[-1] and episode.rewards[-1] == 1.0
    meta = episode.metadata
    assert meta["source"] == "keyboard" and "terminal keyboard" in meta["teleop_device"]
    assert meta["end_reason"] == "human_success" and meta["seed"] == 7
    np.testing.assert_allclose(episode.actions[0], [0.5, 0.0, 0.0, 1.0], atol=1e-3)  # "w": +x at half speed
    assert tcp(env, episode)[-1, 0] - tcp(env, episode)[0, 0] > 0.01
    np.testing.assert_allclose(episode.actions[-1], [0.0, 0.0, 0.0, 1.0], atol=1e-3)  # idle: hold still
    out = capsys.readouterr().out
    assert "step 1/3000  HUMAN" in out and "episode 1/1: success (human_success)" in out


def test_rerecord_discards_the_episode_and_records_the_same_seed_again(env, keyboard, tmp_path, capsys):
    device, master = keyboard
    typist(master, (0.0, RERECORD), (0.3, SUCCESS))
    summary = record(env, None, tmp_path, 1, 3, "sim", "keyboard", device=device)
    assert summary.rerecorded == 1 and summary.episodes == summary.kept == 1
    [file] = tmp_path.glob("*.npz")
    assert read_episode(file).metadata["seed"] == 3
    assert "re-record after 1 steps -> discarded" in capsys.readouterr().out


@pytest.mark.parametrize("key, reason", [(FAILURE, "human_failure"), (END, "end_episode")])
def test_failure_and_end_keys_write_an_unsuccessful_episode_with_keep_failures(env, keyboard, tmp_path, key, reason):
    device, master = keyboard
    typist(master, (0.0, key))
    summary = record(env, None, tmp_path, 1, 0, "sim", "keyboard", keep_failures=True, device=device)
    episode = read_episode(summary.files[0])
    assert not episode.success and episode.truncated[-1] and not episode.terminated.any() and episode.intervention.all()
    assert episode.metadata["end_reason"] == reason and summary.successes == 0


def test_without_keep_failures_a_failure_is_discarded_and_recording_goes_on(env, keyboard, tmp_path, capsys):
    device, master = keyboard
    typist(master, (0.0, FAILURE), (0.3, SUCCESS))
    summary = record(env, None, tmp_path, 1, 0, "sim", "keyboard", device=device)
    assert summary.episodes == 2 and summary.kept == summary.successes == 1
    [file] = tmp_path.glob("*.npz")
    assert read_episode(file).metadata["seed"] == 1  # the failed episode used seed 0
    assert "failure (human_failure) in 1 steps -> discarded" in capsys.readouterr().out


# ---------------------------------------------------------------------- SpaceMouse over a fake hidapi
def test_spacemouse_pushed_forward_moves_the_tcp_forward(tmp_path):
    env = robot_rl.make("pick_cube", obs="state", max_episode_steps=10)
    hid_device = FakeHidDevice()
    with SpaceMouse(SpaceMouseConfig(stale_after_s=None), hid_api=FakeHidApi([hid_device])) as mouse:
        hid_device.send_translation(0, -350, 0)  # cap pushed away from the user, full deflection
        wait_for(lambda: mouse.poll().intervening)
        summary = record(env.unwrapped, None, tmp_path, 1, 0, "sim", "spacemouse", keep_failures=True, device=mouse)
    env.close()
    episode = read_episode(summary.files[0])
    assert episode.metadata["source"] == "spacemouse" and "SpaceMouse" in episode.metadata["teleop_device"]
    assert episode.metadata["end_reason"] == "time_limit" and episode.truncated[-1] and len(episode) == 10
    assert episode.intervention.all() and (episode.actions[:3, 0] > 0.9).all()
    moved = tcp(env.unwrapped, episode)[-1] - tcp(env.unwrapped, episode)[0]
    assert moved[0] > 0.05 and abs(moved[1]) < 0.01 and abs(moved[2]) < 0.01  # +x of the base frame


def test_an_unplugged_device_stops_the_recording_with_a_clear_error(env, tmp_path):
    hid_device = FakeHidDevice()
    with SpaceMouse(hid_api=FakeHidApi([hid_device])) as mouse:
        hid_device.unplug()
        wait_for(lambda: not mouse.poll().connected)
        with pytest.raises(DeviceUnavailable, match="stopped delivering input"):
            record(env, None, tmp_path, 1, 0, "sim", "spacemouse", device=mouse)
    assert not list(tmp_path.glob("*.npz"))


# ---------------------------------------------------------------------- gamepad on an SDL virtual joystick
def test_gamepad_idle_steps_keep_the_gripper_closed(env, tmp_path):
    pytest.importorskip("pygame")
    from drivers.teleop.gamepad import Gamepad, GamepadConfig
    from drivers.teleop.testing import VirtualJoystick

    with VirtualJoystick() as pad:
        for trigger in (2, 5):
            pad.set_axis(trigger, -1.0)  # triggers rest at -1
        with Gamepad(GamepadConfig(index=pad.index)) as gamepad:
            pad.set_axis(1, -1.0)  # left stick up: +x
            pad.set_button(0, True)  # A: close the gripper
            wait_for(lambda: gamepad.poll().intervening)

            def person():
                time.sleep(0.2)
                pad.set_axis(1, 0.0)
                pad.set_button(0, False)
                time.sleep(0.2)
                pad.set_button(3, True)  # Y: success

            threading.Thread(target=person, daemon=True).start()
            summary = record(env, None, tmp_path, 1, 0, "sim", "gamepad", device=gamepad)
    episode = read_episode(summary.files[0])
    assert episode.metadata["end_reason"] == "human_success" and episode.intervention.all()
    assert episode.actions[0, 0] > 0.9 and episode.actions[0, 3] == pytest.approx(-1.0, abs=1e-3)
    np.testing.assert_allclose(episode.actions[-1], [0.0, 0.0, 0.0, -1.0], atol=1e-3)  # idle, still closed


# ---------------------------------------------------------------------- the command
def test_teleop_expert_records_expert_episodes(tmp_path, capsys):
    argv = ["record", "--teleop", "expert", "--episodes", "1", "--out", str(tmp_path), "--video-episodes", "0"]
    assert cli.main(argv) == 0
    episode = read_episode(tmp_path / "episode_000000.npz", task="pick_cube")
    assert episode.success and episode.metadata["source"] == "expert" and not episode.intervention.any()
    assert "1/1 episodes succeeded" in capsys.readouterr().out


def test_a_missing_spacemouse_is_a_one_line_error(tmp_path, capsys):
    try:
        import hid
    except ImportError:
        hid = None  # the error then names the missing package
    if hid is not None and any(is_spacemouse(d, known_models()) for d in hid.enumerate()):
        pytest.skip("a SpaceMouse is plugged in")
    assert cli.main(["record", "--teleop", "spacemouse", "--episodes", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robot-rl: error: teleop device 'spacemouse'") and err.count("\n") == 1
    assert "hid.enumerate()" in err or "robot-rl[devices]" in err
    assert not list(tmp_path.glob("*.npz"))


def test_no_driver_or_two_drivers_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["record", "--episodes", "1", "--out", str(tmp_path)]) == 2
    assert "--teleop expert" in capsys.readouterr().err
    assert cli.main(["record", "--expert", "--teleop", "keyboard", "--out", str(tmp_path)]) == 2
    assert "disagree" in capsys.readouterr().err


def test_view_without_a_gui_fails_at_the_start(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if gui_problem() is None:
        pytest.skip("this OpenCV and platform can open a window without DISPLAY")
    assert cli.main(["record", "--teleop", "expert", "--view", "--episodes", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--view cannot open a window" in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_gui_problem_says_why_and_what_to_install():
    headless = gui_problem("  GUI:                           NONE\n", {"DISPLAY": ":0"}, "linux")
    assert "opencv-python-headless" in headless and "pip install opencv-python" in headless
    no_display = gui_problem("  GUI:  GTK3\n", {}, "linux")
    assert "DISPLAY" in no_display and "opencv" not in no_display
    assert gui_problem("  GUI:  GTK3\n", {"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert gui_problem("  GUI:  COCOA\n", {}, "darwin") is None


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_status_line_rewrites_itself_on_a_terminal_and_prints_plain_lines_otherwise():
    terminal = Terminal()
    line = StatusLine(terminal, tty_interval_s=0.0)
    line.update("episode 1/2  step 10  HUMAN")
    line.update("episode 1/2  step 11  idle")
    line.clear()
    assert terminal.getvalue() == (
        "\repisode 1/2  step 10  HUMAN" + "\repisode 1/2  step 11  idle " + "\r" + " " * 27 + "\r"
    )
    plain = io.StringIO()
    line = StatusLine(plain, plain_interval_s=60.0)
    line.update("first")
    line.update("second")  # within the interval: not printed
    line.clear()
    assert plain.getvalue() == "first\n"


# ---------------------------------------------------------------------- Ctrl-C
def test_an_interrupt_discards_only_the_episode_in_progress(env, tmp_path, capsys):
    steps_after_first_file = []

    def expert_until_interrupted(robot):
        if any(tmp_path.glob("*.npz")):
            steps_after_first_file.append(1)
            if len(steps_after_first_file) > 5:
                raise KeyboardInterrupt
        return expert_policy(robot)

    with pytest.raises(KeyboardInterrupt):
        record(env, expert_until_interrupted, tmp_path, 3, 0, "sim", "expert")
    episodes, errors = read_episodes(tmp_path, task="pick_cube", strict=True)
    assert len(episodes) == 1 and not errors and not list(tmp_path.glob("*.tmp"))
    assert "interrupted: the episode in progress was discarded" in capsys.readouterr().out


def test_ctrl_c_exits_130_with_the_written_episodes_readable(tmp_path):
    command = [sys.executable, "-m", "robot_rl.cli", "record", "--teleop", "expert", "--episodes", "1000",
               "--out", str(tmp_path), "--video-episodes", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(tmp_path.glob("*.npz")) or process.poll() is not None, timeout_s=30.0)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, err
    episodes, errors = read_episodes(tmp_path, task="pick_cube", strict=True)
    assert episodes and not errors and len(episodes) < 1000
