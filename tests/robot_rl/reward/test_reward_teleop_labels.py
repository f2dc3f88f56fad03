"""Hand labelling for reward classifiers: a person at a terminal keyboard (a real pty) drives the
real pixel pick_cube sim and marks success; frames are labelled by those presses."""

import os
import threading
import time

import gymnasium as gym
import numpy as np
import pytest

import robot_rl
from drivers.teleop.keyboard import KeyboardConfig, TerminalKeyboard
from robot_rl.reward.dataset import LabelWriter, collect_from_teleop, image_shapes, read_labels

pytestmark = pytest.mark.timeout(60)
SUCCESS, FAILURE, RERECORD, END = b"\n", b"\x7f", b"x", b"q"


class CountSteps(gym.Wrapper):
    """Counts env steps, so the typist paces its keys by frames, not by wall time."""

    def __init__(self, env):
        super().__init__(env)
        self.steps = 0

    def step(self, action):
        self.steps += 1
        return self.env.step(action)


def type_keys(master, env: CountSteps, *keys):
    """Write each key once the env has taken ``steps`` more steps since the previous key (a loaded
    machine steps the pixel sim slowly; wall-clock pacing then crowds keys into one step)."""
    def run():
        for steps, data in keys:
            target, deadline = env.steps + steps, time.monotonic() + 30
            while env.steps < target and time.monotonic() < deadline:
                time.sleep(0.01)
            os.write(master, data)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_presses_label_the_frames_and_rerecord_discards_an_episode(tmp_path):
    env = CountSteps(robot_rl.make("pick_cube", obs="pixels", image_height=16, image_width=16, max_episode_steps=100_000))
    master, slave = os.openpty()
    device = TerminalKeyboard(KeyboardConfig(fd=slave, hold_s=0.05))
    device.connect()
    try:
        # Episode 1: re-recorded. Episode 1 again: success pressed, then failure, then end. Episode 2: end at once.
        keys = type_keys(master, env, (3, RERECORD), (3, b"w"), (3, SUCCESS), (4, FAILURE), (3, END), (3, END))
        with LabelWriter(tmp_path, "pick_cube", image_shapes(env.observation_space), "keyboard") as writer:
            summary = collect_from_teleop(env, device, writer, episodes=2, seed=0, max_positives=10_000)
        keys.join(timeout=5)
    finally:
        device.close()
        os.close(master)
        os.close(slave)
        env.close()
    labels = read_labels(tmp_path)
    assert summary.episodes == 2 and summary.frames == len(labels.labels)
    first = labels.labels[labels.episodes == 0]
    # failure ... success (a contiguous run) ... failure, in that order
    runs = np.flatnonzero(np.diff(first.astype(int))) + 1
    assert first[0] == 0 and first[-1] == 0 and len(runs) == 2 and first[runs[0]:runs[1]].all()
    assert not labels.labels[labels.episodes == 1].any()
    assert set(np.unique(labels.episodes)) == {0, 1}  # the re-recorded attempt left no frames
