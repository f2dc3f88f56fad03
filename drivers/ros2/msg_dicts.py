"""ROS 2 messages as plain dicts, and their CDR encoding through rosbags.

A *message dict* (:data:`Message`) maps every field name of a ROS type to its value: a nested
message is a dict, ``builtin_interfaces/msg/Time`` is ``{"sec": int, "nanosec": int}``, numeric
arrays are numpy arrays of the ROS element dtype (``float64[]`` -> float64, ``uint8[]`` -> uint8),
a sequence of messages is a list of dicts, strings are ``str``. The same complete dict fills an
rclpy message (:func:`dict_to_rclpy`) and a rosbags message (:func:`dict_to_rosbags`); rosbags'
CDR serializer (:func:`serialize`, :func:`deserialize`) is the reference for the wire layout that
DDS and rosbag2 carry. Type names are in rosbags' form ``"sensor_msgs/msg/JointState"``. Time
stamps are integer nanoseconds (``time_ns``) in our API.
"""

from __future__ import annotations

import array
import dataclasses
import functools
import importlib
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

Message = dict[str, Any]

NS_PER_S = 1_000_000_000
DISTROS = ("humble", "jazzy")
MSG_DIR = Path(__file__).parent / "msg"
# Our extra types: type name -> .msg file in MSG_DIR (interface specifications written from the field lists).
EXTRA_TYPES = {
    "ackermann_msgs/msg/AckermannDrive": "AckermannDrive.msg",
    "ackermann_msgs/msg/AckermannDriveStamped": "AckermannDriveStamped.msg",
    "mavros_msgs/msg/AttitudeTarget": "AttitudeTarget.msg",
}
_INT_RANGES = {f"{sign}int{bits}": ((-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if sign == "" else (0, 2 ** bits - 1))
               for sign in ("", "u") for bits in (8, 16, 32, 64)}
_INT_RANGES.update({"byte": (0, 255), "char": (0, 255), "octet": (0, 255)})
_DTYPES = {name: np.dtype(name if name[0] in "iu" else "uint8") for name in _INT_RANGES}
_DTYPES.update({"float32": np.dtype("float32"), "float64": np.dtype("float64"), "bool": np.dtype("bool")})


# ----------------------------------------------------------------------------- time and headers
def stamp(time_ns: int) -> Message:
    """A ``builtin_interfaces/msg/Time`` dict for integer nanoseconds (``nanosec`` in ``[0, 1e9)``)."""
    if isinstance(time_ns, bool) or not isinstance(time_ns, (int, np.integer)):
        raise ValueError(f"time_ns must be an integer number of nanoseconds, got {time_ns!r}")
    sec, nanosec = divmod(int(time_ns), NS_PER_S)
    if not -(2 ** 31) <= sec < 2 ** 31:
        raise ValueError(f"time_ns {time_ns} does not fit builtin_interfaces/msg/Time (int32 seconds)")
    return {"sec": sec, "nanosec": nanosec}


def stamp_to_ns(stamp_msg: Message) -> int:
    """Integer nanoseconds of a ``builtin_interfaces/msg/Time`` dict."""
    try:
        sec, nanosec = stamp_msg["sec"], stamp_msg["nanosec"]
    except (KeyError, TypeError):
        raise ValueError(f"a time stamp needs fields sec and nanosec, got {stamp_msg!r}") from None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (sec, nanosec)) \
            or not 0 <= nanosec < NS_PER_S:
        raise ValueError(f"a time stamp needs integer sec and nanosec in [0, 1e9), got {stamp_msg!r}")
    return int(sec) * NS_PER_S + int(nanosec)


def header(time_ns: int, frame_id: str) -> Message:
    """A ``std_msgs/msg/Header`` dict."""
    if not isinstance(frame_id, str):
        raise ValueError(f"frame_id must be a str, got {frame_id!r}")
    return {"stamp": stamp(time_ns), "frame_id": frame_id}


# ----------------------------------------------------------------------------- typestores
@functools.cache
def typestore(distro: str = "humble"):
    """The rosbags typestore of ``distro`` ("humble" or "jazzy") with our extra types (:data:`EXTRA_TYPES`); cached."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    stores = {"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY}
    if distro not in stores:
        raise ValueError(f"unknown ROS 2 distro {distro!r}; known: {DISTROS}")
    store = get_typestore(stores[distro])
    types: dict = {}
    for typename, filename in EXTRA_TYPES.items():
        types.update(get_types_from_msg((MSG_DIR / filename).read_text(), typename))
    store.register(types)
    return store


def _fields(store, typename: str) -> list:
    try:
        return store.fielddefs[typename][1]
    except KeyError:
        raise ValueError(f"unknown message type {typename!r} (not in this typestore; names look like "
                         f"'sensor_msgs/msg/JointState')") from None


# ----------------------------------------------------------------------------- dict -> rosbags object
def dict_to_rosbags(store, typename: str, data: Message):
    """The rosbags message object of ``typename`` filled from ``data``.

    Raises:
        ValueError: naming ``typename.field`` (the path, for nested fields) for a missing, extra or
            mistyped field, or an unknown type.
    """
    return _build(store, typename, data, typename)


def _build(store, typename: str, data: Message, where: str):
    fields = _fields(store, typename)
    if not isinstance(data, Mapping):
        _wrong(where, f"a {typename} message dict", data)
    names = [name for name, _ in fields]
    problems = [f"missing field {where}.{n}" for n in names if n not in data]
    problems += [f"unknown field {where}.{n}" for n in data if n not in names]
    if problems:
        raise ValueError(f"{typename}: " + "; ".join(problems))
    values = {name: _to_rosbags_value(store, f"{where}.{name}", desc, data[name]) for name, desc in fields}
    return store.types[typename](**values)


def _to_rosbags_value(store, where: str, desc: tuple, value: Any):
    kind, detail = desc
    kind = int(kind)  # rosbags.interfaces.Nodetype: BASE 1, NAME 2, ARRAY 3, SEQUENCE 4
    if kind == 1:
        return _scalar(where, detail, value)
    if kind == 2:
        return _build(store, detail, value, where)
    (element_kind, element), bound = detail
    exact = kind == 3
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__") or np.ndim(value) == 0:
        _wrong(where, "an array or list", value)
    n = len(value)
    if (exact and n != bound) or (not exact and bound and n > bound):
        raise ValueError(f"{where}: needs {'exactly' if exact else 'at most'} {bound} elements, got {n}")
    if int(element_kind) == 2:
        return [_build(store, element, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if element[0] == "string":
        return [_scalar(f"{where}[{i}]", element, v) for i, v in enumerate(value)]
    return _numeric_array(where, element[0], value)


def _wrong(where: str, wanted: str, value: Any):
    raise ValueError(f"{where}: needs {wanted}, got {type(value).__name__} {value!r:.80}")


def _scalar(where: str, base: tuple, value: Any):
    name, bound = base
    if name == "string":
        if not isinstance(value, str):
            _wrong(where, "a str", value)
        if bound and len(value) > bound:
            raise ValueError(f"{where}: at most {bound} characters, got {len(value)}")
        return value
    if name == "bool":
        return bool(value) if isinstance(value, (bool, np.bool_)) else _wrong(where, "a bool", value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        _wrong(where, f"a number ({name})", value)
    if name in ("float32", "float64"):
        return float(value)
    if not isinstance(value, (int, np.integer)):
        _wrong(where, f"an integer ({name})", value)
    low, high = _INT_RANGES[name]
    if not low <= value <= high:
        raise ValueError(f"{where}: {name} must be in [{low}, {high}], got {value}")
    return int(value)


def _numeric_array(where: str, name: str, value: Any) -> np.ndarray:
    given = np.asarray(value)
    if given.ndim != 1:
        raise ValueError(f"{where}: needs a 1-D array of {name}, got shape {given.shape}")
    dtype = _DTYPES[name]
    if given.dtype == dtype:
        return np.ascontiguousarray(given)
    allowed = {"b": "b", "f": "fiu", "i": "iu", "u": "iu"}[dtype.kind]
    if given.size and given.dtype.kind not in allowed:
        raise ValueError(f"{where}: needs {name} elements, got dtype {given.dtype}")
    if dtype.kind in "iu" and given.size:
        low, high = _INT_RANGES[name]
        if given.min() < low or given.max() > high:
            raise ValueError(f"{where}: {name} elements must be in [{low}, {high}]")
    return np.ascontiguousarray(given, dtype=dtype)


# ----------------------------------------------------------------------------- message object -> dict
def message_to_dict(msg) -> Message:
    """The complete message dict of a rosbags or rclpy message object (recursive, arrays copied)."""
    if dataclasses.is_dataclass(msg) and hasattr(msg, "__msgtype__"):
        # rosbags lists a type's constants as upper-case fields; ROS 2 field names are lower case
        names = [f.name for f in dataclasses.fields(msg) if f.name != "__msgtype__" and not f.name.isupper()]
    elif hasattr(type(msg), "get_fields_and_field_types"):
        names = list(type(msg).get_fields_and_field_types())
    else:
        raise ValueError(f"not a rosbags or rclpy message: {type(msg).__name__}")
    return {name: _to_plain(getattr(msg, name)) for name in names}


def _to_plain(value: Any):
    if isinstance(value, np.ndarray):
        return np.array(value)
    if isinstance(value, array.array):
        return np.array(value, dtype=np.dtype(value.typecode))
    if isinstance(value, (bytes, bytearray)):
        return np.frombuffer(bytes(value), dtype=np.uint8).copy()
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, bytes) for v in value):  # rclpy byte[]: a list of 1-byte bytes
            return np.frombuffer(b"".join(value), dtype=np.uint8).copy()
        return [_to_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (bool, int, float, str)):
        return value
    return message_to_dict(value)


# ----------------------------------------------------------------------------- CDR through rosbags
def serialize(store, typename: str, data: Message) -> bytes:
    """CDR bytes (little-endian, with the encapsulation header) of a message dict, as DDS and rosbag2 carry it."""
    return bytes(store.serialize_cdr(dict_to_rosbags(store, typename, data), typename))


def deserialize(store, typename: str, raw: bytes) -> Message:
    """The message dict of CDR bytes; a truncated or malformed buffer raises ValueError naming the type."""
    _fields(store, typename)
    try:
        msg = store.deserialize_cdr(raw, typename)
    except Exception as error:  # rosbags raises struct/index/assertion errors on bad buffers
        raise ValueError(f"{typename}: cannot decode {len(raw)} bytes of CDR: {type(error).__name__}: {error}") \
            from error
    return message_to_dict(msg)


# ----------------------------------------------------------------------------- dict -> rclpy object
def dict_to_rclpy(typename: str, data: Message):
    """The rclpy message of ``typename`` filled from ``data`` (imports the ROS Python package lazily)."""
    instance = _rclpy_class(typename)()
    _fill_rclpy(instance, typename, data)
    return instance


def _rclpy_class(typename: str):
    parts = typename.split("/")
    if len(parts) == 2:  # rclpy's field types name nested messages "pkg/Type"
        parts = [parts[0], "msg", parts[1]]
    package, kind, name = parts
    try:
        module = importlib.import_module(f"{package}.{kind}")
    except ImportError as error:
        raise ImportError(f"the ROS 2 Python package {package!r} is not importable ({error}); source your ROS 2 "
                          f"installation first (`source /opt/ros/humble/setup.bash`) or build the package "
                          f"in your workspace") from error
    return getattr(module, name)


_RCLPY_SEQUENCE = re.compile(r"^sequence<([^,>]+)(?:, *\d+)?>$")
_RCLPY_ARRAY = re.compile(r"^(.+)\[\d+\]$")
_RCLPY_TYPECODES = {"double": "d", "float": "f", "int8": "b", "uint8": "B", "int16": "h", "uint16": "H",
                    "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q"}


def _fill_rclpy(instance, typename: str, data: Message) -> None:
    field_types = type(instance).get_fields_and_field_types()
    if not isinstance(data, Mapping) or set(data) != set(field_types):
        got = sorted(data) if isinstance(data, Mapping) else type(data).__name__
        raise ValueError(f"{typename}: needs exactly the fields {sorted(field_types)}, got {got}")
    for name, ros_type in field_types.items():
        value = data[name]
        element = _RCLPY_SEQUENCE.match(ros_type) or _RCLPY_ARRAY.match(ros_type)
        element_type = element.group(1) if element else ros_type
        if "/" in element_type:
            cls = _rclpy_class(element_type)
            if element:
                value = [_filled(cls, element_type, v) for v in value]
            else:
                _fill_rclpy(getattr(instance, name), element_type, value)
                continue
        elif isinstance(value, np.ndarray) and _RCLPY_SEQUENCE.match(ros_type):
            value = _rclpy_sequence(element_type, value)
        try:
            setattr(instance, name, value)
        except (AssertionError, TypeError, ValueError) as error:
            raise ValueError(f"{typename}.{name}: rclpy rejected {value!r:.80} for {ros_type}: {error}") from error


def _rclpy_sequence(element_type: str, value: np.ndarray):
    """What rclpy's setter of a ``sequence<...>`` field accepts: array.array for numbers, bytes for octets."""
    if element_type in _RCLPY_TYPECODES:
        code = _RCLPY_TYPECODES[element_type]
        return array.array(code, value.astype(np.dtype(code)).tobytes())
    if element_type in ("octet", "byte"):
        return [bytes([int(b)]) for b in value]
    return value.tolist()


def _filled(cls, typename: str, data: Message):
    instance = cls()
    _fill_rclpy(instance, typename, data)
    return instance


# ----------------------------------------------------------------------------- comparing
def message_differences(actual: Message, expected: Message, rtol: float = 1e-6, where: str = "") -> list[str]:
    """Paths (``header.stamp.sec``) where two message dicts differ: keys, types, dtypes, values.

    Floats compare within ``rtol`` (float32 fields come back rounded), nan equal to nan; the rest exactly.
    """
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping) or set(actual) != set(expected):
            got = sorted(actual) if isinstance(actual, Mapping) else actual
            return [f"{where or '.'}: keys {got!r:.80} != {sorted(expected)}"]
        return [d for key in expected for d in message_differences(actual[key], expected[key], rtol, f"{where}.{key}")]
    if isinstance(expected, np.ndarray):
        same = (isinstance(actual, np.ndarray) and actual.dtype == expected.dtype and actual.shape == expected.shape
                and (np.allclose(actual, expected, rtol=rtol, atol=0.0, equal_nan=True) if expected.dtype.kind == "f"
                     else np.array_equal(actual, expected)))
        return [] if same else [f"{where}: {actual!r:.80} != {expected!r:.80}"]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: {actual!r:.80} != {expected!r:.80}"]
        return [d for i, (a, e) in enumerate(zip(actual, expected))
                for d in message_differences(a, e, rtol, f"{where}[{i}]")]
    if isinstance(expected, float) and isinstance(actual, float):
        same = (np.isnan(actual) and np.isnan(expected)) or np.isclose(actual, expected, rtol=rtol, atol=0.0)
        return [] if same else [f"{where}: {actual!r} != {expected!r}"]
    same = type(actual) is type(expected) and actual == expected
    return [] if same else [f"{where}: {actual!r:.80} != {expected!r:.80}"]
