"""Tasks and backends by name: ``robot_rl.make(task, backend, obs, **overrides)`` and gymnasium ids.

robot_rl lists no robot and no task. A task declares its robot *family* (``"arm"``, ``"car"``,
``"quadrotor"``, or one an outside package defines); a backend is registered for a family; any
backend of a task's family runs it. Registrations live beside the code they register and are
found through package entry points::

    [project.entry-points."robot_rl.tasks"]
    arm = "tasks.arm:TASKS"              # a TaskEntry or an iterable of them
    [project.entry-points."robot_rl.backends"]
    arm_sim = "sim.arm:BACKENDS"         # a BackendEntry or an iterable of them

so installing a package adds its robots and tasks. ``ROBOT_RL_PLUGINS`` (comma-separated
``module:attribute`` strings of the same kind) adds registrations without packaging, and
:func:`register` / :func:`register_backend` do it from code. Entries name their factories by
import string, so nothing heavy (MuJoCo, JAX, device libraries) is imported until an env is made.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from importlib import metadata
from typing import Any, Callable, Sequence

import gymnasium as gym

TASK_GROUP = "robot_rl.tasks"
BACKEND_GROUP = "robot_rl.backends"
PLUGINS_ENV = "ROBOT_RL_PLUGINS"
#: Keyword options that go to :class:`robot_rl.env.RobotEnv` rather than the task or the backend.
ENV_OPTIONS = ("control_hz", "render_mode", "render_camera", "render_size")


@dataclasses.dataclass(frozen=True)
class TaskEntry:
    """A registered task.

    Attributes:
        name: registry name (``pick_cube``).
        family: the robot family it runs on (``arm``...).
        entry_point: ``"module:factory"``; ``factory(**options) -> Task``.
        description: one line for ``robot-rl envs``.
        config: ``"module:Dataclass"`` whose fields are the factory's options (None: no options).
    """

    name: str
    family: str
    entry_point: str
    description: str
    config: str | None = None

    @property
    def gym_id(self) -> str:
        return "robot_rl/" + "".join(part.title() for part in self.name.split("_")) + "-v0"


@dataclasses.dataclass(frozen=True)
class BackendEntry:
    """A registered backend of one robot family.

    Attributes:
        name: backend name, unique within its family (``sim``, ``fr3``, ``vesc``...).
        family: the family whose contract it keeps.
        entry_point: ``"module:factory"``. ``factory(task, obs, **options) -> Backend`` (one robot);
            with ``batched``, ``factory(task, obs, num_envs, **options) -> gymnasium VectorEnv``
            (a natively batched simulator, e.g. in JAX).
        description: one line for ``robot-rl envs``.
        config: ``"module:Dataclass"`` whose fields are the factory's options (None: no options).
        batched: the factory makes a whole vector env (see :func:`robot_rl.vector.make_vector`).
    """

    name: str
    family: str
    entry_point: str
    description: str
    config: str | None = None
    batched: bool = False


_TASKS: dict[str, TaskEntry] = {}
_BACKENDS: dict[tuple[str, str], BackendEntry] = {}
_PLUGIN_ERRORS: list[str] = []
_plugins_loaded = False


# ------------------------------------------------------------------------------ registering
def register(entry: TaskEntry) -> None:
    """Add a task (and its gymnasium id). Re-registering a name replaces it."""
    if not isinstance(entry, TaskEntry):
        raise TypeError(f"register() takes a TaskEntry, got {entry!r}")
    _TASKS[entry.name] = entry
    if entry.gym_id not in gym.registry or gym.registry[entry.gym_id].kwargs.get("task") != entry.name:
        gym.register(entry.gym_id, entry_point="robot_rl.registry:make", kwargs={"task": entry.name}, disable_env_checker=True)


def register_backend(entry: BackendEntry) -> None:
    """Add a backend to its family. Re-registering (family, name) replaces it."""
    if not isinstance(entry, BackendEntry):
        raise TypeError(f"register_backend() takes a BackendEntry, got {entry!r}")
    _BACKENDS[(entry.family, entry.name)] = entry


def _register_any(value: Any, source: str) -> None:
    entries = [value] if isinstance(value, (TaskEntry, BackendEntry)) else list(value)
    for entry in entries:
        if isinstance(entry, TaskEntry):
            register(entry)
        elif isinstance(entry, BackendEntry):
            register_backend(entry)
        else:
            raise TypeError(f"{source} holds {entry!r}, not a TaskEntry or BackendEntry")


def load_plugins(reload: bool = False) -> list[str]:
    """Register what the installed packages' entry points and ``ROBOT_RL_PLUGINS`` name (once).

    A plugin that fails to load does not stop the others: its error is kept (:func:`plugin_errors`)
    and shown by ``robot-rl envs`` and by lookups that fail.
    """
    global _plugins_loaded
    if _plugins_loaded and not reload:
        return list(_PLUGIN_ERRORS)
    _plugins_loaded = True
    _PLUGIN_ERRORS.clear()
    sources: list[tuple[str, Callable[[], Any]]] = []
    for group in (TASK_GROUP, BACKEND_GROUP):
        for point in metadata.entry_points(group=group):
            sources.append((f"entry point {point.name!r} ({point.value}) of {point.dist.name if point.dist else '?'}", point.load))
    for item in filter(None, (s.strip() for s in os.environ.get(PLUGINS_ENV, "").split(","))):
        sources.append((f"{PLUGINS_ENV} item {item!r}", lambda item=item: load(item)))
    for source, loader in sources:
        try:
            _register_any(loader(), source)
        except Exception as err:  # a broken plugin is reported, never fatal to the others
            _PLUGIN_ERRORS.append(f"{source} failed to load: {type(err).__name__}: {err}")
    return list(_PLUGIN_ERRORS)


def plugin_errors() -> list[str]:
    load_plugins()
    return list(_PLUGIN_ERRORS)


# ------------------------------------------------------------------------------ looking up
def tasks() -> dict[str, TaskEntry]:
    """Registered tasks by name."""
    load_plugins()
    return dict(_TASKS)


def backends(family: str | None = None) -> dict[tuple[str, str], BackendEntry]:
    """Registered backends by (family, name), all or one family's."""
    load_plugins()
    return {key: entry for key, entry in _BACKENDS.items() if family is None or entry.family == family}


def families() -> list[str]:
    """Every family a task or a backend is registered for."""
    load_plugins()
    return sorted({e.family for e in _TASKS.values()} | {e.family for e in _BACKENDS.values()})


def _broken() -> str:
    errors = plugin_errors()
    return f" ({len(errors)} plugin(s) failed to load: {'; '.join(errors)})" if errors else ""


def listing() -> list[str]:
    """``robot-rl envs``: per family its backends and tasks, then broken plugins."""
    lines: list[str] = []
    for family in families():
        lines.append(f"{family} family")
        for (_, name), entry in sorted(backends(family).items()):
            lines.append(f"  backend {name:12s} {'(batched) ' if entry.batched else ''}{entry.description}")
        for name, entry in sorted(tasks().items()):
            if entry.family == family:
                lines.append(f"  task    {name:12s} {entry.description}  [gym id {entry.gym_id}]")
    lines += [f"plugin error: {error}" for error in plugin_errors()]
    return lines


def lookup(name: str) -> TaskEntry:
    load_plugins()
    try:
        return _TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(_TASKS)}{_broken()}") from None


def lookup_backend(task: TaskEntry, name: str) -> BackendEntry:
    """The backend ``name`` of ``task``'s family."""
    found = _BACKENDS.get((task.family, name))
    if found is None:
        known = sorted(n for f, n in backends(task.family))
        raise ValueError(f"task {task.name!r} ({task.family} family) has no backend {name!r}; known backends: {known}{_broken()}")
    return found


def load(import_string: str) -> Callable[..., Any]:
    """Resolve ``"package.module:attribute"``."""
    module_name, _, attr = import_string.partition(":")
    if not attr:
        raise ValueError(f"import string must look like 'module:attribute', got {import_string!r}")
    return getattr(importlib.import_module(module_name), attr)


def option_names(config: str | None) -> tuple[str, ...]:
    """Field names of a registry entry's ``config`` dataclass."""
    return tuple(f.name for f in dataclasses.fields(load(config))) if config else ()


# ------------------------------------------------------------------------------ making
def make_parts(task: str, backend: str, obs: str, overrides: dict[str, Any]) -> tuple[Any, BackendEntry, dict, dict]:
    """The task object, the backend's entry, and the backend's and the env's options."""
    entry = lookup(task)
    backend_entry = lookup_backend(entry, backend)
    routed = split_overrides(overrides, task=option_names(entry.config), backend=option_names(backend_entry.config), env=ENV_OPTIONS)
    task_obj = load(entry.entry_point)(**routed["task"])
    if getattr(task_obj, "family", entry.family) != entry.family:
        raise ValueError(f"task {task!r} is registered for family {entry.family!r} but its object says {task_obj.family!r}")
    return task_obj, backend_entry, routed["backend"], routed["env"]


def make(task: str, backend: str = "sim", obs: str = "state", **overrides: Any) -> gym.Env:
    """Build the env of a registered task on one backend of its family.

    Args:
        task: task name (see ``robot-rl envs``).
        backend: a backend registered for the task's family (``sim``, a robot's name...).
        obs: ``state`` or ``pixels``.
        **overrides: fields of the task's, the backend's or the env's config, by name.
    """
    from robot_rl.env import RobotEnv

    task_obj, backend_entry, backend_options, env_options = make_parts(task, backend, obs, overrides)
    if backend_entry.batched:
        raise ValueError(f"backend {backend!r} of the {backend_entry.family} family is natively batched: make it with "
                         f"robot_rl.make_vector({task!r}, backend={backend!r}, num_envs=N) (robot-rl train --num-envs N)")
    robot = load(backend_entry.entry_point)(task_obj, obs, **backend_options)
    return RobotEnv(robot, task_obj, obs=obs, **env_options)


def split_overrides(overrides: dict[str, Any], **targets: Any) -> dict[str, dict[str, Any]]:
    """Route keyword overrides to the dataclass (or list of names) that has a field of that name.

    ``split_overrides({"dense_reward": True}, task=PickCubeConfig, env=("control_hz",))`` returns
    ``{"task": {"dense_reward": True}, "env": {}}``. Unknown names fail with the full list.
    """
    fields = {
        key: {f.name for f in dataclasses.fields(t)} if dataclasses.is_dataclass(t) else set(t) for key, t in targets.items()
    }
    routed: dict[str, dict[str, Any]] = {key: {} for key in targets}
    for name, value in overrides.items():
        owner = next((key for key, names in fields.items() if name in names), None)
        if owner is None:
            known = sorted(set().union(*fields.values()))
            raise ValueError(f"unknown option {name!r}; known options: {known}")
        routed[owner][name] = value
    return routed


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (``--env-kwargs``) -> keyword overrides; a value is read as JSON when
    it parses (``true``, ``64``, ``["front"]``), else kept as a string. A malformed item is named."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--env-kwargs items look like KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options
