"""ROS 2 parameters, as plain data: a rig's config <-> flat parameters, and the nodes' declared ones.

A ROS parameter holds a bool, an int, a float, a string or a homogeneous array of one of those; its
name is dotted where a YAML parameter file nests (``options.max_speed_m_s``). So a TOML rig table
maps onto parameters one to one: a nested table becomes a dotted prefix, an array an array
parameter. :func:`flatten` and :func:`unflatten` convert between the two; :func:`config_to_params`
and :func:`params_to_config` do it for a backend's config dataclass (``VescConfig``,
``CrazyflieConfig``, ``Fr3Config`` with its nested gain sets), and :func:`rig_to_params` for a whole
rig file (what ``ros2 param dump`` of a node configured from it would show); :func:`unflatten` of
those gives the rig's table back exactly, for the driver's own parser (which may merge defaults, as
the FR3's gain sets do). A value ROS cannot hold, or one the config rejects, is a
:class:`ParameterError` naming the parameter.

The nodes declare their parameters from :class:`ParamSpec` tuples (plain data, so a test can check
that a launch file gives a node only parameters it declares); :func:`resolve` checks the values a
node got against them. :func:`declare` is the thin rclpy part.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import typing
from typing import Any, Mapping, Sequence

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ParamValue = typing.Union[bool, int, float, str, list]
SCALAR_TYPES = (bool, int, float, str)
#: ROS's name of each parameter type (rcl_interfaces/msg/ParameterType), for descriptions and errors.
ROS_TYPE_NAMES = {bool: "bool", int: "integer", float: "double", str: "string"}


class ParameterError(ValueError):
    """A parameter value is missing, of a type ROS cannot hold, or rejected; names the parameter."""


def _scalar_type(value: Any) -> type | None:
    for kind in SCALAR_TYPES:  # bool before int: True is an int to Python, not to ROS
        if isinstance(value, kind):
            return kind
    return None


def check_value(name: str, value: Any) -> ParamValue:
    """``value`` as a ROS parameter value (tuples become lists, an int array with floats becomes a
    float array), or ParameterError naming ``name``."""
    if hasattr(value, "tolist") and not isinstance(value, SCALAR_TYPES):  # array.array (rclpy), numpy
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(f"parameter {name!r}: {value!r} is not a finite number")
    if _scalar_type(value) is not None:
        return value
    if isinstance(value, (list, tuple)):
        kinds = {_scalar_type(v) for v in value}
        if not value:
            raise ParameterError(f"parameter {name!r}: an empty array has no ROS parameter type; leave it out")
        if None in kinds or (len(kinds) > 1 and kinds != {int, float}):
            raise ParameterError(f"parameter {name!r}: an array parameter holds one type (bool, integer, double or "
                                 f"string), got {list(value)!r}")
        if kinds == {int, float}:
            value = [float(v) for v in value]
        for v in value:
            check_value(name, v)
        return list(value)
    raise ParameterError(f"parameter {name!r}: a ROS parameter holds a bool, an integer, a double, a string or an "
                         f"array of one of them, got {type(value).__name__} {value!r}")


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, ParamValue]:
    """A nested table (TOML-shaped: tables, arrays, scalars) as flat dotted parameters under ``prefix``."""
    params: dict[str, ParamValue] = {}
    for key, value in table.items():
        if not isinstance(key, str) or not key or "." in key:
            raise ParameterError(f"parameter name part {key!r} under {prefix or 'the top level'!r}: must be a "
                                 f"non-empty string without '.'")
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            params.update(flatten(value, name))
        else:
            params[name] = check_value(name, value)
    return params


def unflatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The nested table of the parameters under ``prefix`` (others are ignored); arrays stay lists."""
    table: dict[str, Any] = {}
    start = f"{prefix}." if prefix else ""
    for name in sorted(params):  # "a.b" before "a.b.c": a value that is also a prefix is met as the parent
        if not name.startswith(start):
            continue
        *parents, leaf = name[len(start):].split(".")
        node = table
        for i, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ParameterError(f"parameter {name!r} is under {start + '.'.join(parents[:i + 1])!r}, which is "
                                     f"also a value")
        node[leaf] = check_value(name, params[name])
    return table


def config_to_table(config: Any) -> dict[str, Any]:
    """A config dataclass as a TOML-shaped table: nested dataclasses and mappings become tables, tuples
    lists; ``rig`` (where the config came from) is left out, and so is a None field whose default is
    None (ROS and TOML have no null); another None is a ParameterError naming the field."""
    table: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name == "rig" or field.name.startswith("_"):
            continue
        if value is None:
            if field.default is None:
                continue
            raise ParameterError(f"{type(config).__name__}.{field.name} is None, which a ROS parameter cannot hold "
                                 f"(its default is {field.default!r})")
        table[field.name] = _plain(value)
    return table


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_table(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):  # a numpy scalar
        return value.item()
    return value


def config_to_params(config: Any, prefix: str = "") -> dict[str, ParamValue]:
    """A config dataclass as flat parameters under ``prefix``."""
    return flatten(config_to_table(config), prefix)


def params_to_config(config_cls: type, params: Mapping[str, Any], prefix: str = "") -> Any:
    """The config dataclass from the parameters under ``prefix`` (absent fields keep their defaults);
    arrays become tuples, tables of a dataclass-typed field (or a ``Mapping[str, Dataclass]``) become
    those dataclasses. An unknown name or a value the config rejects is a ParameterError naming the
    parameter."""
    return _build(config_cls, unflatten(params, prefix), prefix)


def _build(config_cls: type, table: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(config_cls)
    fields = {f.name for f in dataclasses.fields(config_cls) if f.init and f.name != "rig"}
    unknown = sorted(set(table) - fields)
    if unknown:
        raise ParameterError(f"unknown parameter(s) {[_join(prefix, n) for n in unknown]}; {config_cls.__name__} "
                             f"has {sorted(fields)}")
    values = {name: _field_value(hints[name], value, _join(prefix, name)) for name, value in table.items()}
    try:
        return config_cls(**values)
    except (TypeError, ValueError) as err:
        message = str(err)
        named = [n for n in values if f"{config_cls.__name__}.{n} " in message]
        named += [n for n in sorted(values, key=len, reverse=True) if n in message]
        where = f"parameter {_join(prefix, named[0])!r}" if named else f"parameters under {prefix or 'the top level'!r}"
        raise ParameterError(f"{where}: {err}") from err


def _field_value(hint: Any, value: Any, name: str) -> Any:
    target = _dataclass_in(hint)
    if target is not None and isinstance(value, Mapping):
        return _build(target, value, name)
    if typing.get_origin(hint) in (collections.abc.Mapping, dict) and isinstance(value, Mapping):
        item = _dataclass_in(typing.get_args(hint)[-1])
        return {k: _build(item, v, _join(name, k)) if item and isinstance(v, Mapping) else v for k, v in value.items()}
    return tuple(value) if isinstance(value, list) else value


def _dataclass_in(hint: Any) -> type | None:
    options = typing.get_args(hint) if typing.get_origin(hint) is typing.Union else (hint,)
    return next((h for h in options if isinstance(h, type) and dataclasses.is_dataclass(h)), None)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def rig_to_params(path: Any, section: str = "") -> dict[str, ParamValue]:
    """A rig file's table ``section`` (dotted; "" = the whole file) as flat parameters named from the
    file's top level (``car.vesc.port``); errors name the file or the parameter."""
    from robot_rl.rig import read_rig_table

    table = read_rig_table(path, section, ParameterError) if section else _read_whole(path)
    return flatten(table, section)


def _read_whole(path: Any) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as err:
        raise ParameterError(f"{path}: cannot read the rig file: {err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ParameterError(f"{path}: not valid TOML: {err}") from err


# ----------------------------------------------------------------------------- the nodes' parameters
@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One declared node parameter: its name, default (whose type is the parameter's type) and the
    description ``ros2 param describe`` shows."""

    name: str
    default: ParamValue
    description: str

    def __post_init__(self) -> None:
        check_value(self.name, self.default)

    @property
    def type_name(self) -> str:
        if isinstance(self.default, list):
            return ROS_TYPE_NAMES[_scalar_type(self.default[0])] + "_array"
        return ROS_TYPE_NAMES[_scalar_type(self.default)]


def checked(name: str, check: typing.Callable[[Any], Any], value: Any) -> Any:
    """``check(value)``, its ValueError turned into a ParameterError naming the parameter ``name``."""
    try:
        return check(value)
    except ValueError as err:
        raise ParameterError(f"parameter {name!r}: {err}") from err


def topic_prefix(name: str, value: str) -> str:
    """A namespace parameter: ``""`` (the node's own) or a valid ROS 2 topic name, else a ParameterError."""
    from drivers.ros2.transport import check_topic_name

    return checked(name, check_topic_name, value) if value else value


def split_names(text: str) -> tuple[str, ...]:
    """A comma-separated list parameter (``"front, wrist"``) as names; ``""`` is none."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def names(specs: Sequence[ParamSpec]) -> tuple[str, ...]:
    """The declared names, in order (what the launch tests compare against)."""
    return tuple(spec.name for spec in specs)


def resolve(specs: Sequence[ParamSpec], given: Mapping[str, Any], dynamic_prefixes: Sequence[str] = ()) -> dict[str, ParamValue]:
    """Every declared parameter's value: ``given`` where set, else the default. A value of another
    type than the default's (an integer is accepted for a double) or an undeclared name outside
    ``dynamic_prefixes`` (``"options"`` takes ``options.*``) is a ParameterError naming it."""
    declared = {spec.name: spec for spec in specs}
    stray = sorted(n for n in given if n not in declared and not any(n.startswith(p + ".") for p in dynamic_prefixes))
    if stray:
        raise ParameterError(f"undeclared parameter(s) {stray}; this node declares {sorted(declared)}"
                             + (f" and {', '.join(p + '.*' for p in dynamic_prefixes)}" if dynamic_prefixes else ""))
    values = {name: check_value(name, value) for name, value in given.items()}
    for spec in specs:
        if spec.name in values:
            values[spec.name] = _typed(spec, values[spec.name])
        else:
            values[spec.name] = spec.default
    return values


def _typed(spec: ParamSpec, value: ParamValue) -> ParamValue:
    want = _scalar_type(spec.default[0]) if isinstance(spec.default, list) else _scalar_type(spec.default)
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) != isinstance(spec.default, list) or not all(
            _scalar_type(v) is want or (want is float and _scalar_type(v) is int) for v in items):
        raise ParameterError(f"parameter {spec.name!r} has type {spec.type_name}, got {value!r}")
    if want is float:
        return [float(v) for v in value] if isinstance(value, list) else float(value)
    return value


def declare(node: Any, specs: Sequence[ParamSpec], dynamic_prefixes: Sequence[str] = ()) -> dict[str, ParamValue]:
    """Declare ``specs`` on an rclpy node (with descriptions) and return :func:`resolve` of what it
    holds; parameters under ``dynamic_prefixes`` are those the node was given (the node must be made
    with ``automatically_declare_parameters_from_overrides=True``, which declares what it was given)."""
    from drivers.ros2.qos import import_ros

    descriptor = import_ros("rcl_interfaces.msg").ParameterDescriptor
    for spec in specs:
        if not node.has_parameter(spec.name):
            node.declare_parameter(spec.name, spec.default, descriptor(description=spec.description))
    given = {p.name: p.value for p in node.get_parameters([s.name for s in specs])}
    for prefix in dynamic_prefixes:
        given.update({f"{prefix}.{n}": p.value for n, p in node.get_parameters_by_prefix(prefix).items()})
    return resolve(specs, given, dynamic_prefixes)
