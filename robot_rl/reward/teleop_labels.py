"""Label frames by hand: a person drives with a teleop device and marks when the scene shows success.

The person drives every step (with no input the robot holds still, as in ``robot-rl record``).
Frames are labelled *failure* until the person presses **success** -- from then on every frame is
labelled *success* -- and back to *failure* after **failure** is pressed (press success again when
the scene shows success again). **End episode** finishes the episode and keeps its frames;
**re-record** throws the episode's frames away and starts it again; the env's own termination or
time limit also ends an episode (the task's success does *not* label anything: the person does).
So a session is: drive to the goal, press success, hold or wiggle around the goal for a few
seconds, press failure, move away, end the episode.
"""

from __future__ import annotations

from typing import Any, Mapping

import gymnasium as gym
import numpy as np

from robot_rl.reward.dataset import CollectSummary, LabelWriter
from robot_rl.teleop import TeleopDevice


def collect_from_teleop(env: gym.Env, device: TeleopDevice, writer: LabelWriter, episodes: int, seed: int,
                        max_positives: int) -> CollectSummary:
    """Record ``episodes`` hand-labelled episodes (re-recorded ones not counted) into ``writer``."""
    from robot_rl.record import HumanDriver

    human, summary = HumanDriver(device, env.action_space), CollectSummary()
    while summary.episodes < episodes:
        frames = _episode(env, human, seed + summary.episodes)
        if frames is None:
            print(f"episode {summary.episodes + 1}/{episodes}: re-record (frames discarded)", flush=True)
            continue
        episode = writer.new_episode()
        positives_before = summary.positives
        for step, (obs, success) in enumerate(frames):
            if success and summary.positives >= max_positives:
                summary.dropped_positives += 1
                continue
            writer.add(obs, int(success), episode, step)
            summary.frames += 1
            summary.positives += int(success)
        summary.episodes += 1
        summary.successful_episodes += int(summary.positives > positives_before)
        print(f"episode {summary.episodes}/{episodes}: {len(frames)} frames, "
              f"{sum(s for _, s in frames)} labelled success", flush=True)
    return summary


def _episode(env: gym.Env, human: Any, seed: int) -> list[tuple[Mapping[str, np.ndarray], bool]] | None:
    """One episode's (observation, success label) pairs, or None when the person asked to re-record."""
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
