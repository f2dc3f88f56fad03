"""robot_rl: gymnasium envs for real and simulated robots, and learners that train on them."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("robot-rl")
except _metadata.PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"

from robot_rl.registry import TaskEntry, make, register, tasks  # noqa: E402

__all__ = ["TaskEntry", "make", "register", "tasks", "__version__"]
