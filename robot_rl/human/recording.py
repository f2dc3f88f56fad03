"""Record episodes into episode files, driven by a policy (the task's scripted expert) or a human.

- **A policy** (``record(env, expert_policy, ...)``): ``episodes`` episodes are run; the successes
  are written, the failures too with ``keep_failures``.
- **A human** (``record(env, None, ..., device=device)``, a connected
  :class:`~robot_rl.human.teleop.TeleopDevice`) drives every step. When the device reports no action
  (nothing pressed, not intervening) the robot *holds still*: the task's ``hold_action`` (zero
  motion; a car brakes, a quadrotor hovers in place), with the last gripper command kept (the
  action's last dimension, absolute, see :mod:`robot_rl.human.teleop`; it starts open, the action
  space's upper bound) where the device drives a gripper. Every step is stored with
  ``intervention=True``. Episodes are recorded until ``episodes`` are *kept*: successes, or every
  finished one with ``keep_failures``. Buttons as in :class:`~robot_rl.human.intervene.InterveneWithTeleop`:
  *success* ends the episode as a success (terminated, reward raised to 1), *failure* and *end
  episode* end it unsuccessful (truncated), *re-record* discards it (not written, not counted)
  and records the same seed again. The task ends episodes too (``terminated``, with
  ``info["success"]``; its time limit truncates). A device that stops delivering input stops the
  recording (:class:`DeviceUnavailable`).

Each episode's fate gets a line on stdout and ``metadata["end_reason"]`` (:data:`END_REASONS`).
Files are written atomically as episodes finish: Ctrl-C loses only the episode in progress.
Devices are opened by name with :func:`robot_rl.human.devices.open_device`.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import pathlib
import time
from typing import TYPE_CHECKING, Any, Callable

import gymnasium as gym
import numpy as np

from robot_rl.data import Episode, EpisodeRecorder, write_episode
from robot_rl.data.episode_metadata import episode_metadata
from robot_rl.data.schema import ObsSpec
from robot_rl.human.devices import DeviceUnavailable
from robot_rl.human.intervene import InterveneWithTeleop
from robot_rl.human.teleop import TeleopDevice, TeleopEvent
from robot_rl.human.view import LiveView, StatusLine
from robot_rl.video import VideoWriter

if TYPE_CHECKING:
    from robot_rl.env import RobotEnv

log = logging.getLogger(__name__)

Policy = Callable[[gym.Env], np.ndarray]  # a RobotEnv, or a wrapper around one -> an action

#: ``metadata["end_reason"]`` values: who or what ended the episode.
END_REASONS = ("task_success", "task_failure", "human_success", "human_failure", "end_episode", "rerecord", "time_limit")


def expert_policy(env: gym.Env) -> np.ndarray:
    """The task's scripted expert, acting on the env's (privileged in sim) backend state; ``env``
    is a :class:`RobotEnv` or a wrapper around one."""
    base = env.unwrapped
    return base.task.expert(base.state)


def robot_env_metadata(env: RobotEnv, backend: str, source: str) -> dict:
    """The episode-file metadata (:func:`robot_rl.data.episode_metadata.episode_metadata`) of a RobotEnv."""
    spec = ObsSpec.from_space(env.observation_space)
    return episode_metadata(env.task.name, env.obs_mode, spec, env.action_space, env.control_hz, source, backend=backend,
                            state_parts=env.state_layout)


# ---------------------------------------------------------------------- the human as a driver
def _has_gripper(device: TeleopDevice) -> bool:
    """The device's last action dimension is an absolute gripper command: the drivers in
    ``drivers.teleop`` say so in ``config.axis_map.gripper``; other devices are assumed to."""
    axis_map = getattr(getattr(device, "config", None), "axis_map", None)
    return bool(getattr(axis_map, "gripper", True))


class HumanDriver:
    """A teleop device as the recorder uses it.

    It is the :class:`TeleopDevice` given to ``InterveneWithTeleop`` (it passes ``poll`` through
    and remembers the last event: the end-episode button is not in ``info``) and the *policy* that
    the human's action replaces: hold still (``hold_action``, else zero motion; the last executed
    gripper command).
    Passing that hold action to ``poll`` also lets the device keep the gripper when the human
    takes over again. A disconnected device raises :class:`DeviceUnavailable` from ``poll``.
    """

    def __init__(self, device: TeleopDevice, action_space: gym.spaces.Box,
                 hold_action: np.ndarray | None = None) -> None:
        self.device = device
        self._hold_action = None if hold_action is None else np.asarray(hold_action, dtype=np.float32)
        self.name = device.name
        self.action_shape = tuple(device.action_shape)
        self.last: TeleopEvent | None = None
        self._gripper = _has_gripper(device)
        self._gripper_open = float(action_space.high[-1])
        self._hold = self._initial_hold()

    def _initial_hold(self) -> np.ndarray:
        if self._hold_action is not None:
            return self._hold_action.copy()
        hold = np.zeros(self.action_shape, dtype=np.float32)
        if self._gripper:
            hold[-1] = self._gripper_open
        return hold

    def new_episode(self) -> None:
        self.device.new_episode()
        self.last = None
        self._hold = self._initial_hold()

    def poll(self, policy_action: np.ndarray | None = None) -> TeleopEvent:
        self.last = self.device.poll(policy_action)
        if not self.last.connected:
            raise DeviceUnavailable(f"{self.name} stopped delivering input (unplugged? out of range?); "
                                    "the episode in progress is discarded")
        return self.last

    def __call__(self, env: gym.Env) -> np.ndarray:
        """The hold-still action (what runs while the human sends no action)."""
        return self._hold.copy()

    def executed(self, action: np.ndarray) -> None:
        """After a step: the following hold-still steps keep this step's gripper command."""
        if self._gripper:
            self._hold[-1] = float(np.asarray(action)[-1])


def task_hold_action(env: gym.Env) -> np.ndarray | None:
    """The robot_rl task's ``hold_action`` for the env's backend (None for other envs)."""
    base = env.unwrapped
    task, backend = getattr(base, "task", None), getattr(base, "backend", None)
    if not hasattr(task, "hold_action") or backend is None:
        return None
    return np.asarray(task.hold_action(backend.spec), dtype=np.float32)


# ---------------------------------------------------------------------- live status and view
@dataclasses.dataclass
class RecordSummary:
    episodes: int = 0  # finished episodes (re-recorded ones not counted)
    successes: int = 0
    kept: int = 0
    steps: int = 0
    rerecorded: int = 0
    files: list[pathlib.Path] = dataclasses.field(default_factory=list)
    video: pathlib.Path | None = None


@dataclasses.dataclass
class _Live:
    """The per-step status line and live view of a recording."""

    env: gym.Env
    summary: RecordSummary
    status: StatusLine | None
    view: LiveView | None
    human: bool

    def on_step(self, label: str) -> Callable[[int, float, dict], None] | None:
        if self.status is None and self.view is None:
            return None
        max_steps = getattr(self.env.unwrapped, "max_episode_steps", "?")

        def on_step(step: int, reward: float, info: dict) -> None:
            who = "HUMAN" if info.get("intervention") else ("idle" if self.human else "expert")
            text = f"{label}  step {step}/{max_steps}  {who:6s} reward {reward:+.3f}  successes {self.summary.successes}"
            if self.status is not None:
                self.status.update(text)
            if self.view is not None:
                self.view.show(self.env.render(), text)

        return on_step

    def clear(self) -> None:
        if self.status is not None:
            self.status.clear()


def _end_reason(info: dict, terminated: bool, policy: Any) -> str:
    end_pressed = isinstance(policy, HumanDriver) and policy.last is not None and policy.last.end_episode
    flags = {
        "rerecord": info.get("rerecord"), "task_success": info["success"], "human_success": info.get("human_success"),
        "human_failure": info.get("human_failure"), "task_failure": terminated, "end_episode": end_pressed,
    }
    return next((reason for reason, flag in flags.items() if flag), "time_limit")


def run_episode(env: gym.Env, policy: Policy, seed: int, recorder: EpisodeRecorder, video: VideoWriter | None,
                label: str, on_step: Callable[[int, float, dict], None] | None = None) -> Episode:
    """One episode: reset, act until terminated or truncated; stores the executed actions.

    With a :class:`HumanDriver` as ``policy`` (and ``env`` an ``InterveneWithTeleop`` around it)
    every step is stored as an intervention. ``on_step(step, reward, info)`` runs after each step.
    """
    human = isinstance(policy, HumanDriver)
    obs, info = env.reset(seed=seed)
    recorder.start(obs)
    done, step = False, 0
    while not done:
        if video is not None:
            video.add(env.render(), f"{label} step {step}")
        obs, reward, terminated, truncated, info = env.step(policy(env))
        recorder.add(info["executed_action"], reward, terminated, truncated, obs, intervention=human)
        if human:
            policy.executed(info["executed_action"])
        done, step = terminated or truncated, step + 1
        if on_step is not None:
            on_step(step, reward, info)
    success = bool(info["success"] or info.get("human_success"))
    if video is not None:
        video.add(env.render(), f"{label} step {step} {'success' if success else 'failure'}")
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return recorder.finish(seed=seed, success=success, end_reason=_end_reason(info, terminated, policy), created_utc=created)


def _file_episode(episode: Episode, summary: RecordSummary, out: pathlib.Path, keep_failures: bool) -> str:
    """Count ``episode`` and write it if it is kept; returns what happened to it, for the log line."""
    reason = episode.metadata["end_reason"]
    if reason == "rerecord":
        summary.rerecorded += 1
        return f"re-record after {len(episode)} steps -> discarded; recording it again (same seed)"
    summary.episodes += 1
    summary.successes += episode.success
    summary.steps += len(episode)
    outcome = f"{'success' if episode.success else 'failure'} ({reason}) in {len(episode)} steps"
    if not (episode.success or keep_failures):
        return f"{outcome} -> discarded (only successes are kept; --keep-failures keeps failures too)"
    summary.files.append(write_episode(episode, out))
    summary.kept += 1
    return f"{outcome} -> {summary.files[-1].name}"


def record(
    env: gym.Env, policy: Policy | None, out: pathlib.Path, episodes: int, seed: int, backend: str, source: str,
    video_episodes: int = 0, keep_failures: bool = False, device: TeleopDevice | None = None,
    view: LiveView | None = None, status: bool = False,
) -> RecordSummary:
    """Record into ``out`` (one file per kept episode), printing a line per episode.

    ``env`` is a :class:`RobotEnv` or a wrapper around one (e.g. a learned reward): rewards and
    ends of episodes are the wrapper's, metadata the RobotEnv's.

    Exactly one driver: ``policy`` (``episodes`` episodes are run) or a connected teleop ``device``
    (episodes are recorded until ``episodes`` are kept; see the module docstring). Episode k (not
    counting re-records) uses seed ``seed + k``. The first ``video_episodes`` episodes run go to
    ``<out>/demo.mp4``; ``view`` shows every step live; ``status`` prints a live status line.
    """
    if (policy is None) == (device is None):
        raise ValueError("record() needs exactly one driver: a policy or a teleop device")
    human = HumanDriver(device, env.action_space, task_hold_action(env)) if device is not None else None
    metadata = robot_env_metadata(env.unwrapped, backend, source)
    if human is not None:
        metadata["teleop_device"] = human.name
    recorder = EpisodeRecorder(metadata)
    runner, driver = (env, policy) if human is None else (InterveneWithTeleop(env, human), human)
    summary = RecordSummary()
    live = _Live(runner, summary, StatusLine() if status else None, view, human is not None)
    video = VideoWriter(out / "demo.mp4", fps=env.unwrapped.control_hz) if video_episodes > 0 else None
    if human is not None:
        print(f"{human.name} drives; recording until {episodes} episodes are kept in {out} (Ctrl-C stops)", flush=True)
    try:
        for attempt in itertools.count():
            done = summary.kept if human is not None else summary.episodes
            if done >= episodes:
                break
            label = f"episode {done + 1}/{episodes}"
            start = time.perf_counter()
            rendering = video if attempt < video_episodes else None
            episode = run_episode(runner, driver, seed + summary.episodes, recorder, rendering, label, live.on_step(label))
            rate = len(episode) / max(time.perf_counter() - start, 1e-9)
            what = _file_episode(episode, summary, out, keep_failures)
            live.clear()
            print(f"{label}: {what} ({rate:.0f} steps/s)", flush=True)
    except KeyboardInterrupt:
        live.clear()
        print(f"\ninterrupted: the episode in progress was discarded; the {summary.kept} episode files "
              f"written to {out} are complete", flush=True)
        raise
    finally:
        live.clear()
        if video is not None:
            summary.video = video.close()
    return summary
