"""CLI dataclasses of the reward-classifier commands: ``record-labels`` and ``train-reward``.

``robot_rl.cli`` registers them; each has a ``run() -> int`` like the other commands.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Literal

from robot_rl.envs import EnvConfig, EnvOptions
from robot_rl.reward.train import RewardTrainConfig


@dataclasses.dataclass
class RecordLabels:
    """Record camera frames labelled success/failure for a reward classifier (labels.json + chunk_*.npz)."""

    env: EnvOptions = dataclasses.field(default_factory=lambda: EnvConfig(obs="pixels"))
    """The task (see `robot-rl envs`; with --source episodes the files' task is used), its backend
    and env options (--source task/teleop, e.g. image_height=64 image_width=64), and the seed of
    the first episode (episode i uses seed + i) and of the action noise. Frames are camera images:
    --obs stays pixels."""
    out: pathlib.Path = pathlib.Path("runs/labels")
    """Label directory (created; recording again appends if task, cameras and image shapes match)."""
    source: Literal["task", "episodes", "teleop"] = "task"
    """Where labels come from. task: run the env (scripted expert with noise, some random episodes)
    and label each frame by the task's own success (sim). episodes: frames of recorded episode
    files (--episodes DIR), e.g. from `robot-rl record --teleop ... --obs pixels --keep-failures`. teleop:
    a person drives with --teleop DEVICE and presses success when the scene shows success (frames
    are labelled success from then until failure is pressed)."""
    teleop: str = "keyboard"
    """Teleop device for --source teleop: a teleop device (`robot-rl envs` lists them; not
    simulated: a person presses success)."""
    num_episodes: int = 20
    """Episodes to run (--source task) or to label by hand (--source teleop)."""
    episodes: pathlib.Path | None = None
    """Directory of episode files recorded with --obs pixels (--source episodes)."""
    cameras: str = ""
    """Comma-separated cameras to store, e.g. front,wrist (empty: every camera)."""
    noise: float = 1.0
    """Expert action noise: each episode's Gaussian std is drawn uniformly from [0, noise] (normalized actions)."""
    random_fraction: float = 0.1
    """Fraction of episodes driven by uniform random actions (failures)."""
    hold_steps: int = 5
    """Steps to keep running after the first success, for more varied success frames (--source task)."""
    max_positives: int = 200
    """Success frames to keep at most; later ones are dropped (failure frames are always kept)."""
    label_from: Literal["final", "reward"] = "final"
    """--source episodes: 'final' labels the last frame of each successful episode as success;
    'reward' labels the frame after every step whose reward >= --success-reward."""
    success_reward: float = 1.0
    """Reward that means success, for --label-from reward."""
    chunk_frames: int = 256
    """Frames per chunk file (a crash loses at most the frames of one unfinished chunk)."""

    def __post_init__(self) -> None:
        if self.num_episodes < 1 or self.chunk_frames < 1:
            raise ValueError("--num-episodes and --chunk-frames must be >= 1")
        if self.max_positives < 0 or self.hold_steps < 0 or self.noise < 0:
            raise ValueError("--max-positives, --hold-steps and --noise must be >= 0")
        if not 0.0 <= self.random_fraction <= 1.0:
            raise ValueError(f"--random-fraction must be in [0, 1], got {self.random_fraction}")
        if self.env.obs != "pixels":
            raise ValueError("record-labels records camera frames: leave --obs at pixels")
        if self.source == "episodes" and self.episodes is None:
            raise ValueError("--source episodes needs --episodes DIR (episode files recorded with --obs pixels)")
        from robot_rl.human.devices import check_device_name

        check_device_name(self.teleop, allowed_extra=(), simulated=False)

    def camera_list(self) -> list[str] | None:
        return [c.strip() for c in self.cameras.split(",") if c.strip()] or None


    def run(self) -> int:
        record = {"episodes": self._record_episodes, "teleop": self._record_teleop, "task": self._record_task}[self.source]
        summary = record()
        print(f"{summary.frames} frames from {summary.episodes} episodes ({summary.successful_episodes} with success): "
              f"{summary.positives} success, {summary.frames - summary.positives} failure "
              f"({summary.dropped_positives} success frames over --max-positives dropped) -> {self.out}")
        return 0

    def _record_task(self):
        import robot_rl
        from robot_rl.reward.dataset import LabelWriter, collect_from_env, image_shapes

        options = self.env.options()
        env = robot_rl.make(self.env.task, backend=self.env.backend, obs="pixels", **options)
        try:
            shapes = image_shapes(env.observation_space, self.camera_list())
            with LabelWriter(self.out, self.env.task, shapes, "task", chunk_frames=self.chunk_frames,
                             env_options={"backend": self.env.backend, **options}) as writer:
                return collect_from_env(env, writer, self.num_episodes, self.env.seed, self.noise, self.random_fraction,
                                        self.hold_steps, self.max_positives)
        finally:
            env.close()

    def _record_teleop(self):
        import contextlib

        import robot_rl
        from robot_rl.human.devices import open_device
        from robot_rl.reward.dataset import LabelWriter, collect_from_teleop, image_shapes

        options = self.env.options()
        env = robot_rl.make(self.env.task, backend=self.env.backend, obs="pixels", **options)
        with contextlib.ExitStack() as stack:
            stack.callback(env.close)
            device = open_device(self.teleop, env, stack)
            shapes = image_shapes(env.observation_space, self.camera_list())
            writer = stack.enter_context(LabelWriter(self.out, self.env.task, shapes, self.teleop, chunk_frames=self.chunk_frames,
                                                     env_options={"backend": self.env.backend, **options}))
            print(f"{device.name} drives: press success when the scene shows success, failure when it stops, "
                  "end episode to finish it (see robot_rl/human/labels.py)", flush=True)
            return collect_from_teleop(env, device, writer, self.num_episodes, self.env.seed, self.max_positives)

    def _record_episodes(self):
        from robot_rl.data import read_episodes
        from robot_rl.reward.dataset import LabelWriter, collect_from_episodes

        episodes, _ = read_episodes(self.episodes)
        if not episodes:
            raise ValueError(f"no readable episode files in {self.episodes}")
        spec = episodes[0].metadata["observation_spec"]
        images = {k: tuple(v["shape"]) for k, v in spec.items() if v["dtype"] == "uint8" and len(v["shape"]) == 3}
        cameras = self.camera_list() or list(images)
        missing = [cam for cam in cameras if cam not in images]
        if missing or not cameras:
            raise ValueError(f"cameras {missing or cameras} are not in the episodes at {self.episodes}; they hold "
                             f"cameras {sorted(images)} (record with --obs pixels)")
        task = episodes[0].metadata["task"]
        source = f"episodes:{self.episodes}"
        with LabelWriter(self.out, task, {cam: images[cam] for cam in cameras}, source,
                         chunk_frames=self.chunk_frames) as writer:
            return collect_from_episodes(episodes, writer, self.label_from, self.success_reward, self.max_positives)


@dataclasses.dataclass
class TrainReward(RewardTrainConfig):
    """Train a reward classifier (success from camera images) on a label directory; writes the
    classifier file and a held-out confusion matrix next to it."""

    def run(self) -> int:
        from robot_rl.reward.train import train_classifier

        train_classifier(self)
        return 0
