"""Aligned bag ticks -> robot_rl episodes (replayed through a RobotEnv), and writing them all or nothing.

:func:`segment_episodes` replays one :class:`~drivers.ros2.bag_align.Segment` through a
:class:`robot_rl.env.RobotEnv` over a :class:`~drivers.ros2.bag_replay.ReplayBackend`, so every
stored quantity is computed by the same code as in ``robot-rl record``: the task's reset begins an
episode at a recorded state, ``env.step`` gives the observation, the executed action (the recorded
command through ``task.command_to_action``), the reward and the episode's end. :func:`write_all`
writes the episodes of one import into a temporary directory beside the output directory and then
moves them in, removing everything of this import if any step fails.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import pathlib
import re
import shutil
import tempfile
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from drivers.ros2.bag_align import Segment
from drivers.ros2.bag_reader import BagError
from drivers.ros2.bag_replay import ReplayBackend
from robot_rl.data import Episode, EpisodeRecorder, write_episode
from robot_rl.data.episodes import _fsync_directory

_EPISODE_FILE = re.compile(r"^episode_(\d+)\.npz$")


@dataclasses.dataclass(frozen=True)
class Tick:
    """What one segment holds per tick, converted: family states and commands, camera frames."""

    states: list[Any]
    commands: list[Any]
    frames: dict[str, list[np.ndarray]]


def segment_ticks(segment: Segment, data: Mapping[str, Mapping[int, Any]], family: Any, spec: Any,
                  state_roles: Sequence[str], command_roles: Sequence[str], cameras: Mapping[str, str],
                  where: str) -> Tick:
    """Per tick the family state (``state_from_messages`` of the messages held), the command
    (``command_from_messages``) and the camera frames.

    ``cameras`` maps camera name -> role; ``where`` names the bag in errors.
    """
    states, commands = [], []
    for k, tick_ns in enumerate(segment.ticks_ns):
        held = {role: data[role][int(segment.picks[role][k])] for role in (*state_roles, *command_roles)
                if segment.picks[role][k] >= 0}
        try:
            states.append(family.state_from_messages({r: held[r] for r in state_roles if r in held}, spec))
            commands.append(family.command_from_messages({r: held[r] for r in command_roles}, spec))
        except ValueError as err:
            raise BagError(f"{where}: the messages held at {int(tick_ns)} ns (bag time) are not a valid state and "
                           f"command: {err}") from err
    frames = {cam: [data[role][int(i)] for i in segment.picks[role]] for cam, role in cameras.items()}
    return Tick(states, commands, frames)


@dataclasses.dataclass
class Unstartable:
    """Ticks at which the task could not begin an episode (its reset raised RuntimeError there, e.g.
    car_lap with the car against a wall): they are skipped. ``reason`` is the first error."""

    ticks: int = 0
    reason: str = ""

    def add(self, err: Exception) -> None:
        self.ticks += 1
        self.reason = self.reason or f"{type(err).__name__}: {err}"


def segment_episodes(env_factory: Callable[[ReplayBackend], Any], replay: ReplayBackend, recorder: EpisodeRecorder,
                     ticks_ns: np.ndarray, human: bool, seed: int, unstartable: Unstartable) -> list[Episode]:
    """Replay one segment into episodes (ticks where the task cannot begin one go to ``unstartable``).

    ``env_factory(replay)`` makes the RobotEnv; episode k resets with seed ``seed + k`` (a fresh
    start for tasks that keep state between resets).
    """
    env = env_factory(replay)
    episodes, tick = [], 0
    while tick < replay.ticks - 1:
        replay.hold(tick)
        try:
            obs, _ = env.reset(seed=seed + len(episodes))
        except RuntimeError as err:
            unstartable.add(err)
            tick += 1
            continue
        except (TypeError, ValueError) as err:  # the task cannot begin from a recording at all (it must place the robot)
            raise BagError(f"task {env.task.name!r} cannot begin an episode at a recorded state: {err}") from err
        replay.play()
        recorder.start(obs)
        episodes.append(_play_episode(env, replay, recorder, ticks_ns, human))
        tick = replay.tick
    return episodes


def _play_episode(env: Any, replay: ReplayBackend, recorder: EpisodeRecorder, ticks_ns: np.ndarray,
                  human: bool) -> Episode:
    """Step from the current tick until the env ends the episode or the segment runs out (truncated)."""
    first = replay.tick
    while True:
        # The action asked for is the recorded one (as a teleop device's would be); it is computed on a
        # copy of the task, so bookkeeping in command_to_action (a quadrotor's action history) runs once.
        state = replay.read_state()
        action = copy.copy(env.task).command_to_action(replay.command(None), state, replay.spec)
        try:
            obs, reward, terminated, truncated, info = env.step(action)
        except RuntimeError as err:  # e.g. a reward that needs what no topic carries (an object's pose)
            raise BagError(f"task {env.task.name!r} cannot run on the recorded states: {err}") from err
        ran_out = replay.tick == replay.ticks - 1
        recorder.add(info["executed_action"], reward, terminated, truncated or ran_out, obs, intervention=human)
        if terminated or truncated or ran_out:
            break
    reason = "terminated" if terminated else "truncated" if truncated else "end_of_recording"
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return recorder.finish(success=bool(info["success"]), end_reason=reason, created_utc=created,
                           bag_start_ns=int(ticks_ns[first]), bag_end_ns=int(ticks_ns[replay.tick]))


# ----------------------------------------------------------------------------- writing
def next_index(directory: pathlib.Path) -> int:
    """One past the largest ``episode_NNNNNN.npz`` index in ``directory`` (0 if none)."""
    found = [int(m.group(1)) for p in directory.iterdir() if (m := _EPISODE_FILE.match(p.name))] \
        if directory.is_dir() else []
    return max(found) + 1 if found else 0


def write_all(episodes: Sequence[Episode], out: pathlib.Path) -> list[pathlib.Path]:
    """Write ``episodes`` as ``out/episode_NNNNNN.npz`` (numbering continues), all or nothing.

    They are written into a temporary directory beside ``out``, then hard-linked into ``out`` (an
    existing file is never replaced); on any failure the files this call put into ``out`` are removed,
    and ``out`` too if this call created it.
    """
    out = pathlib.Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.import-", dir=out.parent))
    moved: list[pathlib.Path] = []
    try:
        first = next_index(out)
        staged = [write_episode(ep, staging, name=f"episode_{first + i:06d}.npz") for i, ep in enumerate(episodes)]
        for path in staged:
            os.link(path, out / path.name)
            moved.append(out / path.name)
        if os.name == "posix":
            _fsync_directory(out)
    except BaseException:
        for path in moved:
            path.unlink(missing_ok=True)
        if created and not any(out.iterdir()):
            out.rmdir()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return moved

