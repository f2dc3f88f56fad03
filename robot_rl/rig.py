"""One component's table of a per-rig TOML file, validated: what every rig loader repeats.

A rig file holds the tables of several drivers and services (``[arm.fr3]``, ``[cameras.front]``,
``[car.vesc]``, ``[serve]``, ...); each reads its own table with :func:`read_rig_table` and turns it
into its typed config dataclass with :func:`build_rig_config` (or checks its names with
:func:`check_fields`). Every error names the file and the table (and the field,
where the config's ``__post_init__`` names it), raised as the driver's own ``ValueError`` subclass.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
from typing import Any, Collection, Mapping, TypeVar

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

Config = TypeVar("Config")


def read_rig_table(path: str | os.PathLike, section: str, error: type[ValueError] = ValueError,
                   missing_ok: bool = False) -> dict[str, Any]:
    """The table ``section`` (dotted, e.g. ``"arm.fr3"``) of the TOML file ``path``, or ``error``
    naming the file: unreadable, not TOML, or no such table (an empty one if ``missing_ok``)."""
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as f:
            table: Any = tomllib.load(f)
    except OSError as err:
        raise error(f"{path}: cannot read the rig file: {err}") from err
    except tomllib.TOMLDecodeError as err:
        raise error(f"{path}: not valid TOML: {err}") from err
    for key in section.split("."):
        table = table.get(key, {} if missing_ok else None) if isinstance(table, Mapping) else None
    if not isinstance(table, Mapping):
        raise error(f"{path}: no [{section}] table" if table is None else f"{path}: [{section}] must be a table")
    return dict(table)


def check_fields(table: Mapping[str, Any], allowed: Collection[str], path: str | os.PathLike, section: str,
                 error: type[ValueError] = ValueError) -> None:
    """``error`` naming the file, the table and every field of ``table`` not in ``allowed``."""
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise error(f"{path}: [{section}]: unknown field(s) {unknown}; allowed: {sorted(allowed)}")


def build_rig_config(config_cls: type[Config], table: Mapping[str, Any], path: str | os.PathLike, section: str,
                     error: type[ValueError]) -> Config:
    """``config_cls(**table, rig=str(path))`` with TOML arrays as tuples; an unknown field, or a value
    its ``__post_init__`` rejects, is ``error`` naming the file and the table."""
    check_fields(table, {f.name for f in dataclasses.fields(config_cls)} - {"rig"}, path, section, error)  # type: ignore[arg-type]
    values = {name: tuple(value) if isinstance(value, list) else value for name, value in table.items()}
    try:
        return config_cls(**values, rig=str(path))
    except (TypeError, ValueError) as err:
        raise error(f"{path}: [{section}]: {err}") from err


def float_vector(owner: object, name: str, size: int) -> tuple[float, ...]:
    """``owner.name`` as ``size`` finite floats, or a ValueError naming the field."""
    value = getattr(owner, name)
    try:
        vector = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        vector = ()
    if len(vector) != size or not all(math.isfinite(v) for v in vector):
        raise ValueError(f"{type(owner).__name__}.{name} must be {size} finite numbers, got {value!r}")
    return vector


def check_choice(owner: object, name: str, allowed: tuple[str, ...]) -> None:
    """A ValueError naming ``owner.name`` unless its value is one of ``allowed``."""
    value = getattr(owner, name)
    if value not in allowed:
        raise ValueError(f"{type(owner).__name__}.{name} must be one of {list(allowed)}, got {value!r}")
