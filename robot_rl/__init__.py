"""robot_rl: gymnasium envs for real and simulated robots, and learners that train on them."""

import os as _os
from importlib import metadata as _metadata

# Headless machines (no DISPLAY) render MuJoCo offscreen with EGL unless the user chose another
# backend (MUJOCO_GL=osmesa or glfw). MuJoCo reads this when it is first imported.
if "MUJOCO_GL" not in _os.environ and not _os.environ.get("DISPLAY"):
    _os.environ["MUJOCO_GL"] = "egl"
if _os.environ.get("MUJOCO_GL") in ("egl", "osmesa"):
    _os.environ.setdefault("PYOPENGL_PLATFORM", _os.environ["MUJOCO_GL"])

# torch's OpenMP threads spin while waiting by default; on a 2-core robot computer that shares
# its cores with a control loop (or with a second process) that makes small ops 10-70x slower.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = _metadata.version("robot-rl")
except _metadata.PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"

from robot_rl.registry import BackendEntry, TaskEntry, load_plugins, make, register, register_backend, tasks  # noqa: E402
from robot_rl.vector import make_vector  # noqa: E402

load_plugins()  # the installed packages' tasks and backends, and their gymnasium ids

__all__ = ["BackendEntry", "TaskEntry", "make", "make_vector", "register", "register_backend", "tasks", "__version__"]
