"""Task registry: ``robot_rl.make(task, backend, obs, **overrides)`` and gymnasium ids.

robot_rl imports no task, simulator or driver: entries are import strings resolved on use.
An entry point is a factory ``(backend: str, obs: str, **overrides) -> RobotEnv``.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Sequence

import gymnasium as gym


@dataclasses.dataclass(frozen=True)
class TaskEntry:
    """A registered task.

    Attributes:
        name: registry name (``pick_cube``).
        entry_point: ``"module:function"`` building the env.
        backends: backend names this task supports (``sim``, a robot name...).
        description: one line for ``robot-rl envs``.
        gym_id: gymnasium id, ``robot_rl/<CamelName>-v0``.
    """

    name: str
    entry_point: str
    backends: tuple[str, ...]
    description: str

    @property
    def gym_id(self) -> str:
        return "robot_rl/" + "".join(part.title() for part in self.name.split("_")) + "-v0"


_REGISTRY: dict[str, TaskEntry] = {}


def register(entry: TaskEntry) -> None:
    """Add a task (and its gymnasium id). Re-registering a name replaces it."""
    _REGISTRY[entry.name] = entry
    if entry.gym_id not in gym.registry or gym.registry[entry.gym_id].kwargs.get("task") != entry.name:
        gym.register(entry.gym_id, entry_point="robot_rl.registry:make", kwargs={"task": entry.name}, disable_env_checker=True)


def tasks() -> dict[str, TaskEntry]:
    """Registered tasks by name."""
    return dict(_REGISTRY)


def lookup(name: str) -> TaskEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(_REGISTRY)}") from None


def load(import_string: str) -> Callable[..., Any]:
    """Resolve ``"package.module:attribute"``."""
    module_name, _, attr = import_string.partition(":")
    if not attr:
        raise ValueError(f"import string must look like 'module:attribute', got {import_string!r}")
    return getattr(importlib.import_module(module_name), attr)


def make(task: str, backend: str = "sim", obs: str = "state", **overrides: Any) -> gym.Env:
    """Build the env of a registered task.

    Args:
        task: task name (see ``robot-rl envs``).
        backend: ``sim`` or the name of a real-robot backend the task supports.
        obs: ``state`` or ``pixels``.
        **overrides: fields of the task's, the backend's or the env's config, by name.
    """
    entry = lookup(task)
    if backend not in entry.backends:
        raise ValueError(f"task {task!r} has no backend {backend!r}; known backends: {list(entry.backends)}")
    return load(entry.entry_point)(backend=backend, obs=obs, **overrides)


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


register(
    TaskEntry(
        name="pick_cube",
        entry_point="tasks.pick_cube:make_env",
        backends=("sim",),
        description="7-DoF arm picks up a 5 cm cube and lifts it 5 cm (sparse reward, 100 steps, expert included)",
    )
)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (``--env-kwargs``) -> keyword overrides; a value is read as JSON when
    it parses (``true``, ``64``, ``["front"]``), else kept as a string. A malformed item is named."""
    import json

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
