"""``robot-rl learner``, ``robot-rl actor`` and ``robot-rl launch``: the commands (configs in
:mod:`robot_rl.distributed.config`), each running its process."""

from __future__ import annotations

import dataclasses
import logging
import sys

from robot_rl.distributed.config import ActorConfig, LaunchConfig, LearnerConfig
from robot_rl.signals import stop_on_sigterm


def setup_process() -> None:
    """robot_rl's INFO lines and everyone's warnings on stdout, one line each, in order with prints;
    SIGTERM stops the process like Ctrl-C (final checkpoint, flushed spool)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stdout, force=True)
    logging.getLogger("robot_rl").setLevel(logging.INFO)
    stop_on_sigterm()


@dataclasses.dataclass
class Learner(LearnerConfig):
    __doc__ = LearnerConfig.__doc__

    def run(self) -> int:
        from robot_rl.distributed.learner import run_learner

        setup_process()
        return run_learner(self)


@dataclasses.dataclass
class Actor(ActorConfig):
    __doc__ = ActorConfig.__doc__

    def run(self) -> int:
        from robot_rl.distributed.actor import run_actor

        setup_process()
        return run_actor(self)


@dataclasses.dataclass
class Launch(LaunchConfig):
    __doc__ = LaunchConfig.__doc__

    def run(self) -> int:
        from robot_rl.distributed.launch import run_launch

        stop_on_sigterm()  # `kill <launch>` stops everything in order, like Ctrl-C
        return run_launch(self)
