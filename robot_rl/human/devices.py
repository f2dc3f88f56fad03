"""Teleop devices by name, and opening one for an env: the one list behind ``--hil`` and ``--teleop``.

``simulated`` is built in: the simulated human (:mod:`robot_rl.human.simulated`), which needs the
env. Every other device registers beside its code, through a package entry point in the group
:data:`ENTRY_POINT_GROUP` whose value is a mapping *device name -> import string* of a class whose
no-argument constructor returns a :class:`~robot_rl.human.teleop.TeleopDevice`::

    [project.entry-points."robot_rl.teleop"]
    drivers = "drivers.teleop:TELEOP_DEVICES"   # {"keyboard": "drivers.teleop:TerminalKeyboard", ...}

A name ``"<device>@<family>"`` (e.g. ``"gamepad@car"``) registers the device's bindings for the tasks
of one robot family: ``--teleop gamepad`` on a car task opens it instead of the plain ``"gamepad"``.
A class with a ``for_env(env)`` classmethod is built by it (bindings that need the task's action
mapping or the robot's state), any other with no arguments.

robot_rl imports no driver: entry points are read on the first lookup of a name that is not
built in, and a device's class is imported when it is opened. An entry point that fails to load
does not hide the others; its name and error are shown by ``robot-rl envs`` and by a failed lookup.
"""

from __future__ import annotations

import contextlib
import logging
import pkgutil
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import gymnasium as gym

from robot_rl.human.intervene import InterveneWithTeleop
from robot_rl.human.simulated import SimulatedHuman

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "robot_rl.teleop"
#: ``"<device>@<family>"``: the device's bindings for one robot family (module docstring).
FAMILY_SEPARATOR = "@"
#: The built-in device: the task's scripted expert taking over (needs the env).
SIMULATED = "simulated"


class DeviceUnavailable(ValueError):
    """A teleop device or the live view cannot be used: missing, no permission, unplugged, no GUI.

    A ``ValueError`` so that ``robot-rl`` reports it as one line (exit code 2), not a traceback.
    """


# ---------------------------------------------------------------------- the registry
def load_entry_point(point: metadata.EntryPoint) -> dict[str, str]:
    """The devices one entry point declares; a ``ValueError`` naming it and saying why if it cannot."""
    where = f"teleop entry point {point.name!r} ({point.value})"
    try:
        devices = point.load()
    except Exception as err:  # whatever importing a plugin raises, it is reported with its name
        raise ValueError(f"{where} failed to load: {type(err).__name__}: {err}") from err
    if not isinstance(devices, Mapping) or not all(
        isinstance(name, str) and isinstance(target, str) and ":" in target for name, target in devices.items()
    ):
        raise ValueError(f"{where} failed to load: it must be a mapping of device name -> 'module:Class', "
                         f"got {devices!r}")
    return dict(devices)


def scan(points: Iterable[metadata.EntryPoint]) -> tuple[dict[str, str], list[str]]:
    """The devices the entry points declare, and one error line per entry point that failed (or
    that names a device already taken: the first one keeps it)."""
    devices: dict[str, str] = {}
    errors: list[str] = []
    for point in points:
        try:
            found = load_entry_point(point)
        except ValueError as err:
            errors.append(str(err))
            continue
        taken = sorted(name for name in found if name in devices or name == SIMULATED)
        if taken:
            errors.append(f"teleop entry point {point.name!r} ({point.value}) names devices that are already "
                          f"registered: {taken}; it is ignored")
            continue
        devices.update(found)
    return devices, errors


_found: tuple[dict[str, str], list[str]] | None = None


def _registry() -> tuple[dict[str, str], list[str]]:
    """The installed packages' devices and entry-point errors, read once."""
    global _found
    if _found is None:
        _found = scan(metadata.entry_points(group=ENTRY_POINT_GROUP))
        for error in _found[1]:
            log.warning("%s", error)
    return _found


def teleop_devices() -> dict[str, str]:
    """Device name -> import string of its class, for the devices the installed packages register."""
    return dict(_registry()[0])


def registry_errors() -> list[str]:
    """One line per teleop entry point that failed to load."""
    return list(_registry()[1])


def device_names() -> tuple[str, ...]:
    """Every device that :func:`open_device` opens: ``simulated``, then the registered ones (family
    bindings ``"<device>@<family>"`` under their device's name)."""
    return (SIMULATED, *sorted({name.split(FAMILY_SEPARATOR)[0] for name in teleop_devices()}))


def check_device_name(name: str, allowed_extra: Iterable[str] = ("none",), *, simulated: bool = True) -> str:
    """``name`` if it is a device (``simulated`` only when ``simulated``) or in ``allowed_extra``,
    else a ``ValueError`` listing the known names (and any entry point that failed to load)."""
    extra = tuple(allowed_extra)
    if name in extra or (simulated and name == SIMULATED):
        return name  # the registry is not read: no driver package is imported
    devices = tuple(n for n in device_names() if simulated or n != SIMULATED)
    if name in devices:
        return name
    errors = registry_errors()
    broken = f" ({len(errors)} teleop entry point(s) failed: {'; '.join(errors)})" if errors else ""
    raise ValueError(f"unknown teleop device {name!r}; choose one of: {', '.join((*extra, *devices))}{broken}")


# ---------------------------------------------------------------------- opening a device
def open_device(name: str, env: gym.Env, stack: contextlib.ExitStack, sim_config: Any = None) -> Any:
    """The connected teleop device ``name`` for ``env``, closed when ``stack`` closes.

    ``sim_config`` (a :class:`~robot_rl.human.simulated.SimulatedHumanConfig`) configures
    ``simulated``. A device that cannot be opened (its library missing, no permission, unplugged)
    is a one-line :class:`DeviceUnavailable` naming it; the drivers' messages say what they see
    and how to list devices. An unknown name is a ``ValueError`` listing the known ones.
    """
    check_device_name(name, allowed_extra=())
    try:
        device = _build(name, env, sim_config)
        device.connect()
    except ImportError as err:
        raise DeviceUnavailable(
            f"teleop device {name!r} needs the Python package {err.name!r}, which is missing; "
            "install the device extras: pip install 'robot-rl[devices]'"
        ) from err
    except (RuntimeError, OSError) as err:
        raise DeviceUnavailable(f"teleop device {name!r} is not available: {_one_line(str(err))}") from err
    stack.callback(device.close)
    return device


def _build(name: str, env: gym.Env, sim_config: Any) -> Any:
    """The device object, not yet connected."""
    if name == SIMULATED:
        if not hasattr(env.unwrapped, "task") or not hasattr(env.unwrapped.task, "expert"):
            raise ValueError("--hil simulated needs a robot_rl task with a scripted expert (see `robot-rl envs`)")
        return SimulatedHuman.for_env(env, sim_config)
    device_class = pkgutil.resolve_name(_device_target(name, env))
    return device_class.for_env(env) if hasattr(device_class, "for_env") else device_class()


def _device_target(name: str, env: gym.Env) -> str:
    """The import string of ``name``'s bindings for ``env``'s robot family, else of the plain device."""
    devices = teleop_devices()
    family = getattr(getattr(env.unwrapped, "task", None), "family", None)
    target = devices.get(f"{name}{FAMILY_SEPARATOR}{family}", devices.get(name))
    if target is None:
        bound = sorted(n.split(FAMILY_SEPARATOR)[1] for n in devices if n.startswith(name + FAMILY_SEPARATOR))
        raise ValueError(f"teleop device {name!r} has bindings only for the families {bound}; this task's family "
                         f"is {family!r}")
    return target


def _one_line(text: str) -> str:
    """A multi-line message (a driver's device listing) as one line."""
    joined = ""
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        joined += (" " if joined.endswith((":", ".")) else "; ") + line if joined else line
    return joined


def with_human(env: gym.Env, hil: str, stack: contextlib.ExitStack, sim_config: Any = None) -> gym.Env:
    """``env`` wrapped so that the human of ``hil`` can take over (``hil == "none"``: unchanged)."""
    if hil == "none":
        return env
    return InterveneWithTeleop(env, open_device(hil, env, stack, sim_config))
