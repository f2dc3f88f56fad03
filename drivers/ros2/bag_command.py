"""``robot-rl import-bag``: the CLI of :mod:`drivers.ros2.bag_import` (registered as a plugin command
through the ``robot_rl.commands`` entry point; imports nothing heavy until it runs)."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Literal, Optional

import tyro


def _pairs(items: tuple[str, ...], flag: str) -> dict[str, str]:
    """``KEY=VALUE`` items -> dict; a malformed item is named."""
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{flag} items look like NAME=/topic, got {item!r}")
        pairs[key] = value
    return pairs


@dataclasses.dataclass
class ImportBag:
    """Import a ROS 2 bag (rosbag2, sqlite3 or MCAP) of teleoperation as demonstration episodes.

    The bag's state, command (and, with --obs pixels, camera) topics are sampled at the task's control
    rate, each holding its newest message at or before each tick; the task computes observations,
    actions, rewards and episode ends as when recording live. Writes one .npz per episode into --out
    (numbering continues), or nothing if the bag cannot be imported.
    """

    bag: tyro.conf.Positional[pathlib.Path]
    """A rosbag2 directory (metadata.yaml + .db3/.mcap files), or one .db3 or .mcap file."""
    task: str
    """The robot_rl task the episodes are for (`robot-rl envs`)."""
    backend: str = "sim"
    """The backend whose spec (limits, cameras) the robot in the bag has: a registered backend of the
    task's family (it is never connected); with --rig, a real robot's rig file gives its settings."""
    rig: Optional[pathlib.Path] = None
    """A rig file (TOML) for the backend (passed as its `rig=` option)."""
    obs: Literal["state", "pixels"] = "state"
    """Observations to store; pixels needs an image topic per camera of the backend's spec."""
    out: pathlib.Path = pathlib.Path("runs/bag_demos")
    """Directory for the episode files (created; existing files are kept, numbering continues)."""
    topics: tuple[str, ...] = ()
    """ROLE=/topic items overriding the default topic of a role (car: odom, drive_state, imu, battery,
    ackermann, cmd_vel; arm: joint_states, ...)."""
    cameras: tuple[str, ...] = ()
    """CAMERA=/topic items: the image topic of a camera (default <namespace>/camera/CAMERA/image_raw)."""
    namespace: str = "/"
    """Prefix of the default topic names (e.g. /car1)."""
    command: Optional[str] = None
    """Where the family's command travels on one of several topics (car: ackermann or cmd_vel), which
    one to read (default: the first the bag has). The arm reads both of its (tcp_target, gripper_cmd)."""
    rate_hz: Optional[float] = None
    """Tick rate (default: the task's control rate); stored as the episodes' control_hz."""
    episode_topic: Optional[str] = None
    """A std_msgs/Bool (True while an episode runs) or std_msgs/Empty (each message starts a new
    episode) topic of episode boundaries."""
    episode_gap_s: float = 2.0
    """A pause longer than this in the command stream ends the episode (the command is held until then)."""
    max_age_s: float = 0.25
    """A state or camera message older than this at a tick is stale: the episode is split there."""
    human: bool = True
    """Store every step as a human intervention (the bag is teleoperation), as `robot-rl record` does
    for a teleop device; --no-human for a bag of an autonomous controller."""
    distro: Optional[Literal["humble", "jazzy"]] = None
    """ROS 2 distro of the message definitions a bag does not carry itself (default: the bag's, else humble)."""
    env_kwargs: tuple[str, ...] = ()
    """KEY=VALUE options for the task, backend or env, as for `robot-rl record`."""

    def settings(self):
        """The :class:`~drivers.ros2.bag_import.BagImport` of these flags."""
        from drivers.ros2.bag_import import BagImport
        from robot_rl.registry import parse_overrides

        options = parse_overrides(self.env_kwargs) | ({"rig": str(self.rig)} if self.rig is not None else {})
        return BagImport(bag=self.bag, task=self.task, out=self.out, backend=self.backend, obs=self.obs,
                         topics=_pairs(self.topics, "--topics"), cameras=_pairs(self.cameras, "--cameras"),
                         namespace=self.namespace, command=self.command, rate_hz=self.rate_hz,
                         episode_topic=self.episode_topic, episode_gap_s=self.episode_gap_s, max_age_s=self.max_age_s,
                         human=self.human, distro=self.distro, options=options)

    def run(self) -> int:
        from drivers.ros2.bag_import import import_bag

        def progress(line: str) -> None:
            print(line, flush=True)

        summary = import_bag(self.settings(), progress)
        print(f"{len(summary.files)} episodes ({summary.steps} steps, {summary.successes} successful) written to "
              f"{self.out}" + (f"; skipped {summary.unstartable.ticks} ticks where the task could not begin an "
                               f"episode ({summary.unstartable.reason})" if summary.unstartable.ticks else ""))
        return 0
