"""The actor/learner handshake: what each side runs, compared before any data flows.

An actor opens with a ``hello`` describing its task, observation and action spaces and agent
architecture; the learner answers ``welcome`` when :func:`compare_hello` finds no difference and
``reject`` (with the differences as text) otherwise, so a mismatched actor fails at once with a
readable reason instead of feeding the learner data it cannot use.

Also here: where the learner listens (:data:`DEFAULT_TRANSITIONS_ENDPOINT`,
:data:`DEFAULT_WEIGHTS_ENDPOINT`) and :func:`check_bind_address`, which keeps it on loopback
unless remote actors are asked for explicitly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import math
from typing import Any, Mapping

from robot_rl.transport.wire import SCHEMA_VERSION, DTYPES, MessageError

DEFAULT_TRANSITIONS_ENDPOINT = "tcp://127.0.0.1:5555"
"""Learner ROUTER socket: hello/welcome, transitions/acks, stats, heartbeats."""
DEFAULT_WEIGHTS_ENDPOINT = "tcp://127.0.0.1:5556"
"""Learner PUB socket: packed weights (subscribers use CONFLATE)."""


def library_version() -> str:
    """robot_rl's version: ``robot_rl.__version__``, else the installed "robot-rl", else "unknown"."""
    import robot_rl

    version = getattr(robot_rl, "__version__", None)
    if isinstance(version, str):
        return version
    from importlib import metadata

    try:
        return metadata.version("robot-rl")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """Shape and dtype name (a :data:`robot_rl.transport.wire.DTYPES` key) of one observation key."""

    shape: tuple[int, ...]
    dtype: str


@dataclasses.dataclass(frozen=True)
class ActionSpec:
    """A Box action space: shape and per-element bounds (flattened, in the action's units)."""

    shape: tuple[int, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    @classmethod
    def from_box(cls, box: Any) -> "ActionSpec":
        """From anything with ``shape``, ``low`` and ``high`` (e.g. a gymnasium Box)."""
        return cls(tuple(int(d) for d in box.shape), tuple(float(x) for x in _flat(box.low)), tuple(float(x) for x in _flat(box.high)))


def _flat(values: Any) -> list:
    return list(values.reshape(-1)) if hasattr(values, "reshape") else list(values)


def observation_spec(shapes: Mapping[str, tuple[Any, Any]]) -> dict[str, ArraySpec]:
    """``key -> (shape, dtype)`` (e.g. ``ObsSpec.shapes()``) -> ``key -> ArraySpec``."""
    import numpy as np

    return {str(k): ArraySpec(tuple(int(d) for d in shape), np.dtype(dtype).name) for k, (shape, dtype) in shapes.items()}


def parameter_shapes_hash(named_shapes: Mapping[str, Any]) -> str:
    """A short hash of parameter names and shapes (``state_dict`` tensors, arrays or shapes).

    Two agents with the same hash can load each other's weights.
    """
    items = sorted((name, [int(d) for d in getattr(value, "shape", value)]) for name, value in named_shapes.items())
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Hello:
    """What an actor (or the learner) runs; sent as the meta of a ``hello`` message.

    Attributes:
        actor: the actor's id (not compared).
        task: task name, e.g. ``"pick_cube"``.
        observation: observation key -> shape and dtype (canonical observations, uint8 images).
        action: the action space.
        agent: JSON description of the agent architecture (encoder type, hidden sizes,
            :func:`parameter_shapes_hash` of its parameters...).
        schema_version: wire schema version (compared).
        library_version: robot_rl version (informational, not compared).
    """

    actor: str
    task: str
    observation: Mapping[str, ArraySpec]
    action: ActionSpec
    agent: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    library_version: str = dataclasses.field(default_factory=library_version)

    def to_meta(self) -> dict:
        """A JSON-ready dict (the ``hello`` message meta)."""
        return {
            "actor": self.actor, "task": self.task, "schema_version": self.schema_version,
            "library_version": self.library_version,
            "observation": {k: {"shape": list(v.shape), "dtype": v.dtype} for k, v in self.observation.items()},
            "action": {"shape": list(self.action.shape), "low": list(self.action.low), "high": list(self.action.high)},
            "agent": dict(self.agent),
        }

    @classmethod
    def from_meta(cls, meta: Any) -> "Hello":
        """Inverse of :meth:`to_meta`; raises MessageError naming the bad field."""
        fields = {"actor", "task", "schema_version", "library_version", "observation", "action", "agent"}
        if not isinstance(meta, dict) or meta.keys() != fields:
            raise MessageError(f"hello meta must have exactly the fields {sorted(fields)}")
        for name in ("actor", "task", "library_version"):
            if not isinstance(meta[name], str):
                raise MessageError(f"hello {name} must be a string")
        if not isinstance(meta["schema_version"], int) or isinstance(meta["schema_version"], bool):
            raise MessageError("hello schema_version must be an integer")
        if not isinstance(meta["agent"], dict):
            raise MessageError("hello agent must be a JSON object")
        return cls(meta["actor"], meta["task"], _observation_from_meta(meta["observation"]), _action_from_meta(meta["action"]),
                   meta["agent"], meta["schema_version"], meta["library_version"])


def _shape(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value):
        raise MessageError(f"hello {what} shape must be a list of non-negative integers")
    return tuple(value)


def _observation_from_meta(value: Any) -> dict[str, ArraySpec]:
    if not isinstance(value, dict):
        raise MessageError("hello observation must be a JSON object")
    out = {}
    for key, spec in value.items():
        if not isinstance(spec, dict) or spec.keys() != {"shape", "dtype"} or spec["dtype"] not in DTYPES:
            raise MessageError(f"hello observation {key!r} must be {{shape, dtype}} with a wire dtype")
        out[key] = ArraySpec(_shape(spec["shape"], f"observation {key!r}"), spec["dtype"])
    return out


def _action_from_meta(value: Any) -> ActionSpec:
    if not isinstance(value, dict) or value.keys() != {"shape", "low", "high"}:
        raise MessageError("hello action must be {shape, low, high}")
    bounds = []
    for name in ("low", "high"):
        if not isinstance(value[name], list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value[name]):
            raise MessageError(f"hello action {name} must be a list of numbers")
        bounds.append(tuple(float(x) for x in value[name]))
    return ActionSpec(_shape(value["shape"], "action"), *bounds)


def _differ(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return not (a == b or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) != len(b) or any(_differ(x, y) for x, y in zip(a, b))
    return a != b


def _agent_differences(learner: Mapping[str, Any], actor: Mapping[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(learner) | set(actor)):
        if key not in actor or key not in learner:
            side = "learner" if key in learner else "actor"
            out.append(f"agent {key!r}: only the {side} has it")
        elif _differ(learner[key], actor[key]):
            out.append(f"agent {key!r}: learner {learner[key]!r}, actor {actor[key]!r}")
    return out


def compare_hello(learner: Hello, actor: Hello) -> list[str]:
    """Human-readable differences that make the actor incompatible; empty means compatible.

    Compares schema version, task, observation keys/shapes/dtypes, action shape/bounds and the
    agent architecture. Actor id and library version are not compared.
    """
    out = []
    if learner.schema_version != actor.schema_version:
        out.append(f"schema version: learner has {learner.schema_version}, actor has {actor.schema_version}")
    if learner.task != actor.task:
        out.append(f"task: learner has {learner.task!r}, actor has {actor.task!r}")
    for key in sorted(set(learner.observation) | set(actor.observation)):
        mine, theirs = learner.observation.get(key), actor.observation.get(key)
        if mine is None or theirs is None:
            out.append(f"observation {key!r}: only the {'actor' if mine is None else 'learner'} has it")
            continue
        if mine.shape != theirs.shape:
            out.append(f"observation {key!r} shape: learner {mine.shape}, actor {theirs.shape}")
        if mine.dtype != theirs.dtype:
            out.append(f"observation {key!r} dtype: learner {mine.dtype}, actor {theirs.dtype}")
    for name in ("shape", "low", "high"):
        mine, theirs = getattr(learner.action, name), getattr(actor.action, name)
        if _differ(mine, theirs):
            out.append(f"action {name}: learner {mine}, actor {theirs}")
    return out + _agent_differences(learner.agent, actor.agent)


_LOOPBACK_NAMES = {"localhost"}


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # "*", an interface name or a host name
        return False


def check_bind_address(endpoint: str, allow_remote: bool = False) -> str:
    """Return ``endpoint`` if the learner may bind it, else raise ValueError saying why.

    Loopback TCP (``tcp://127.0.0.1:PORT``, ``tcp://localhost:PORT``, ``tcp://[::1]:PORT``;
    ``PORT`` may be ``*``), ``ipc://`` and ``inproc://`` are always fine. ``tcp://*``,
    ``tcp://0.0.0.0`` and every other address accept connections from other machines and need
    ``allow_remote`` (the ``--bind-remote`` flag), which should go with CURVE keys.
    """
    endpoint = endpoint.strip()
    scheme, sep, rest = endpoint.partition("://")
    if not sep or not rest:
        raise ValueError(f"endpoint {endpoint!r} must look like tcp://127.0.0.1:5555 or ipc:///tmp/robot_rl.sock")
    if scheme in ("ipc", "inproc"):
        return endpoint
    if scheme != "tcp":
        raise ValueError(f"endpoint {endpoint!r}: transport {scheme!r} is not supported (use tcp:// or ipc://)")
    host, colon, port = rest.rpartition(":")
    if not colon or not host or not (port == "*" or (port.isdigit() and 0 < int(port) < 65536)):
        raise ValueError(f"endpoint {endpoint!r} needs a host and a port, e.g. tcp://127.0.0.1:5555")
    if _is_loopback(host) or allow_remote:
        return endpoint
    raise ValueError(
        f"refusing to bind {endpoint}: it accepts connections from other machines. Bind tcp://127.0.0.1:{port} "
        "for actors on this machine, or pass --bind-remote to allow remote actors (with CURVE keys from `robot-rl keys`)"
    )
