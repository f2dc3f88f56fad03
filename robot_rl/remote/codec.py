"""A backend's typed dataclasses (spec, state, command) as wire meta plus named arrays, and the
checks the robot server applies to what a client asks the robot to do.

An object travels as an entry ``{"type": class name, "fields": {name: [tag, value]}}`` in the
message meta, plus one array per array-valued field, named ``<prefix>.<field>``:

=========  ==============================================  ==================================
tag        field type                                      where the value travels
=========  ==============================================  ==================================
array      ``np.ndarray``                                  array ``<prefix>.<field>`` (float)
float      ``float``                                       0-d float64 array (NaN/inf exact)
int/bool   ``int`` / ``bool``                              meta value
str, none  ``str`` / ``None``                              meta value
strs       ``tuple[str, ...]``                             meta list
arrays     ``Mapping[str, np.ndarray]`` (``objects``)      arrays ``<prefix>.<field>/<key>``
cameras    ``Mapping[str, CameraSpec]``                    meta ``{name: [height, width]}``
=========  ==============================================  ==================================

Decoding is strict: the type must be one the receiver expects, every field's tag must match the
class's annotation, required fields must be there and no others, arrays must be float; anything
else is a :class:`~robot_rl.transport.wire.MessageError`. Decoded arrays are writable copies.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import importlib
import math
import types
import typing
from typing import Any, Mapping

import numpy as np

from robot_rl.backends.base import CameraSpec
from robot_rl.transport.wire import MessageError

FAMILY_TYPES = {
    "arm": ("robot_rl.backends.arm", "ArmSpec", "ArmState", ("ArmTarget",)),
    "car": ("robot_rl.backends.car", "CarSpec", "CarState", ("CarCommand",)),
    "quadrotor": ("robot_rl.backends.quadrotor", "QuadSpec", "QuadState",
                  ("MotorThrusts", "ThrustRates", "AttitudeCommand", "VelocityCommand")),
}
"""The families whose spec/state/command dataclasses this codec knows: module, spec, state, commands."""
MAX_ABS_COMMAND = 1e3
"""Largest magnitude of any number in a command (SI units: metres, radians, m/s, fractions)."""
COMMAND_SHAPES = {"ArmTarget": {"tcp_pos_m": (3,), "tcp_quat_wxyz": (4,)}, "MotorThrusts": {"thrust_frac": (4,)},
                  "ThrustRates": {"body_rates_rad_s": (3,)}, "VelocityCommand": {"vel_m_s": (3,)}}
"""The array shapes each command type must have."""
QUATERNION_TOLERANCE = 0.01
MAX_FIELDS = 64


@dataclasses.dataclass(frozen=True)
class FamilyTypes:
    """One family's dataclasses: its spec, its state and the commands its backends accept, by name."""

    family: str
    spec: type
    state: type
    commands: Mapping[str, type]


def family_types(family: str) -> FamilyTypes:
    """The dataclasses of ``family``; NotImplementedError for a family this codec does not know."""
    if family not in FAMILY_TYPES:
        raise NotImplementedError(f"the remote backend encodes the {sorted(FAMILY_TYPES)} families' dataclasses; "
                                  f"family {family!r} would need its spec/state/command types added to "
                                  "robot_rl.remote.codec.FAMILY_TYPES")
    module_name, spec, state, commands = FAMILY_TYPES[family]
    module = importlib.import_module(module_name)
    return FamilyTypes(family, getattr(module, spec), getattr(module, state), {name: getattr(module, name) for name in commands})


# ------------------------------------------------------------------------------------ encode


_TAG_TESTS = (
    ("bool", lambda v: isinstance(v, (bool, np.bool_))),
    ("int", lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)),
    ("float", lambda v: isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))),
    ("str", lambda v: isinstance(v, str)),
    ("strs", lambda v: isinstance(v, (tuple, list)) and all(isinstance(x, str) for x in v)),
    ("cameras", lambda v: isinstance(v, Mapping) and all(isinstance(x, CameraSpec) for x in v.values())),
    ("arrays", lambda v: isinstance(v, Mapping)),
    ("array", lambda v: not isinstance(v, (str, Mapping))),
)


def _tag(value: Any, allowed: set[str]) -> str:
    """How ``value`` travels, given the tags its field's annotation allows."""
    if value is None and "none" in allowed:
        return "none"
    for tag, test in _TAG_TESTS:
        if tag in allowed and test(value):
            return tag
    raise TypeError(f"cannot encode {type(value).__name__} {str(value)[:40]} as one of {sorted(allowed)}")


def encode_object(obj: Any, prefix: str) -> tuple[dict, dict[str, np.ndarray]]:
    """A spec/state/command dataclass -> (its meta entry, its arrays named ``<prefix>.<field>``)."""
    fields, arrays = {}, {}
    for field_name, allowed in field_tags(type(obj)).items():
        value, name = getattr(obj, field_name), f"{prefix}.{field_name}"
        tag = _tag(value, allowed)
        if tag == "array":
            arrays[name] = np.ascontiguousarray(value, dtype=np.float64)
        elif tag == "float":
            arrays[name] = np.array(float(value), dtype=np.float64)
        elif tag == "arrays":
            arrays.update({f"{name}/{key}": np.ascontiguousarray(v, dtype=np.float64) for key, v in value.items()})
        fields[field_name] = [tag, _meta_value(tag, value)]
    return {"type": type(obj).__name__, "fields": fields}, arrays


def _meta_value(tag: str, value: Any) -> Any:
    if tag in ("bool", "int"):
        return bool(value) if tag == "bool" else int(value)
    if tag in ("str", "none"):
        return value
    if tag == "strs":
        return list(value)
    if tag == "arrays":
        return sorted(value)
    if tag == "cameras":
        return {key: [camera.height, camera.width] for key, camera in value.items()}
    return None


# ------------------------------------------------------------------------------------ decode


def _allowed_tags(hint: Any) -> set[str]:
    """The tags a field annotated ``hint`` may arrive with."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_allowed_tags(arg) for arg in args))
    if hint is type(None):
        return {"none"}
    simple = {float: "float", int: "int", bool: "bool", str: "str", np.ndarray: "array"}
    if hint in simple:
        return {simple[hint]}
    if origin is tuple and args and args[0] is str:
        return {"strs"}
    if origin in (collections.abc.Mapping, dict):
        return {"cameras"} if args and args[-1] is CameraSpec else {"arrays"}
    return set()


@functools.lru_cache(maxsize=64)
def field_tags(cls: type) -> dict[str, frozenset[str]]:
    """Each field of dataclass ``cls`` -> the tags it may travel with (from its annotations; cached)."""
    hints = typing.get_type_hints(cls)
    return {field.name: frozenset(_allowed_tags(hints[field.name])) for field in dataclasses.fields(cls)}


def _float_array(arrays: Mapping[str, np.ndarray], name: str, ndim: int | None = None) -> np.ndarray:
    value = arrays.get(name)
    if value is None:
        raise MessageError(f"array {name!r} is missing")
    if value.dtype.kind != "f" or (ndim is not None and value.ndim != ndim) or value.ndim > 2:
        raise MessageError(f"array {name!r} must be a float array{'' if ndim is None else f' of {ndim} dimensions'}, "
                           f"got {value.dtype} {value.shape}")
    return np.array(value, dtype=np.float64)


def _decode_field(tag: str, raw: Any, arrays: Mapping[str, np.ndarray], name: str, used: set[str]) -> Any:
    if tag in ("array", "float"):
        used.add(name)
        value = _float_array(arrays, name, 0 if tag == "float" else None)
        return float(value) if tag == "float" else value
    if tag == "arrays":
        if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw) or len(raw) > MAX_FIELDS:
            raise MessageError(f"{name}: the keys of a mapping of arrays must be a list of at most {MAX_FIELDS} strings")
        used.update(f"{name}/{key}" for key in raw)
        return {key: _float_array(arrays, f"{name}/{key}") for key in raw}
    if tag == "cameras":
        if not isinstance(raw, dict) or not all(isinstance(v, list) and len(v) == 2 for v in raw.values()):
            raise MessageError(f"{name}: cameras must map names to [height, width]")
        return {key: CameraSpec(key, *size) for key, size in raw.items()}
    expected = {"bool": bool, "int": int, "str": str, "none": type(None), "strs": list}[tag]
    if type(raw) is not expected or (tag == "strs" and not all(isinstance(v, str) for v in raw)):
        raise MessageError(f"{name}: a {tag} field cannot hold {str(raw)[:40]!r}")
    return tuple(raw) if tag == "strs" else raw


def decode_object(entry: Any, arrays: Mapping[str, np.ndarray], prefix: str, allowed: Mapping[str, type],
                  used: set[str]) -> Any:
    """The dataclass an entry and its arrays describe; its type must be one of ``allowed`` (by name).
    The names of the arrays it used are added to ``used``. Raises MessageError only."""
    if not isinstance(entry, dict) or entry.keys() != {"type", "fields"} or not isinstance(entry["fields"], dict):
        raise MessageError(f"{prefix}: an object entry is {{type, fields}}")
    cls = allowed.get(entry["type"]) if isinstance(entry["type"], str) else None
    if cls is None:
        raise MessageError(f"{prefix}: type {str(entry['type'])[:40]!r} is not one of {sorted(allowed)}")
    tags, fields = field_tags(cls), {f.name: f for f in dataclasses.fields(cls)}
    given = entry["fields"]
    required = {n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    if not set(given) <= set(fields) or not required <= set(given):
        raise MessageError(f"{prefix}: {cls.__name__} needs the fields {sorted(required)} (allowed: {sorted(fields)}), "
                           f"got {sorted(given)[:MAX_FIELDS]}")
    values = {}
    for name, item in given.items():
        if not isinstance(item, list) or len(item) != 2 or item[0] not in tags[name]:
            raise MessageError(f"{prefix}.{name}: {cls.__name__}.{name} travels as {sorted(tags[name])}, got {str(item)[:60]}")
        values[name] = _decode_field(item[0], item[1], arrays, f"{prefix}.{name}", used)
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise MessageError(f"{prefix}: not a valid {cls.__name__}: {err}") from err


# ------------------------------------------------------------------------------------ checks


def command_problem(command: Any) -> str | None:
    """What makes a decoded command unsafe to hand to a backend (None: nothing): a number that is
    not finite or larger than :data:`MAX_ABS_COMMAND`, a wrong shape, a quaternion that is not unit."""
    name = type(command).__name__
    for field in dataclasses.fields(command):
        value = getattr(command, field.name)
        if value is None or isinstance(value, (str, bool, tuple)):
            continue
        array = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(array)) or np.any(np.abs(array) > MAX_ABS_COMMAND):
            return f"{name}.{field.name} = {np.round(array, 4).tolist()} is not finite or beyond +-{MAX_ABS_COMMAND:g}"
        shape = COMMAND_SHAPES.get(name, {}).get(field.name, ())
        if array.shape != shape:
            return f"{name}.{field.name} must have shape {shape}, got {array.shape}"
    quat = getattr(command, "tcp_quat_wxyz", None)
    if quat is not None and not math.isclose(float(np.linalg.norm(quat)), 1.0, abs_tol=QUATERNION_TOLERANCE):
        return f"{name}.tcp_quat_wxyz {np.round(quat, 4).tolist()} is not a unit quaternion"
    return None
