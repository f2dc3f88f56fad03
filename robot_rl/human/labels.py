"""Label frames by hand: a person drives with a teleop device and marks when the scene shows success.

The person drives every step (with no input the robot holds still, as in ``robot-rl record``).
Frames are labelled *failure* until the person presses **success** -- from then on every frame is
labelled *success* -- and back to *failure* after **failure** is pressed (press success again when
the scene shows success again). **End episode** finishes the episode and keeps its frames;
**re-record** throws the episode's frames away and starts it again; the env's own termination or
time limit also ends an episode (the task's success does *not* label anything: the person does).
So a session is: drive to the goal, press success, hold or wiggle around the goal for a few
seconds, press failure, move away, end the episode.

:class:`HandLabeller` runs such episodes; ``robot_rl.reward.dataset.collect_from_teleop`` writes
them into a label directory (``robot-rl record-labels --source teleop``).
"""

from __future__ import annotations

from typing import Mapping

import gymnasium as gym
import numpy as np

from robot_rl.human.recording import HumanDriver
from robot_rl.human.teleop import TeleopDevice

#: One episode's (observation, success label) pairs, the reset observation first.
LabelledFrames = list[tuple[Mapping[str, np.ndarray], bool]]


class HandLabeller:
    """A person labelling episodes of ``env`` with a connected teleop ``device`` (see the module docstring)."""

    def __init__(self, env: gym.Env, device: TeleopDevice) -> None:
        self.env = env
        self.human = HumanDriver(device, env.action_space)

    def episode(self, seed: int) -> LabelledFrames | None:
        """One episode's labelled frames, or None when the person asked to re-record."""
        env, human = self.env, self.human
        human.new_episode()
        obs, _ = env.reset(seed=seed)
        frames, success = [(obs, False)], False
        while True:
            event = human.poll(human(env))
            action = event.action if event.intervening and event.action is not None else human(env)
            obs, _, terminated, truncated, info = env.step(np.asarray(action, dtype=np.float32))
            human.executed(info.get("executed_action", action))
            if event.rerecord:
                return None
            success = (success or event.success) and not event.failure
            frames.append((obs, success))
            if terminated or truncated or event.end_episode:
                return frames
