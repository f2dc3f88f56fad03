"""Typed message kinds on top of :mod:`robot_rl.transport.wire`, each validated on decode.

=============  ==================  =========================================================
kind           direction           content
=============  ==================  =========================================================
hello          actor -> learner    :class:`~robot_rl.transport.handshake.Hello`
welcome        learner -> actor    :class:`Welcome`: accepted; where to resume
reject         learner -> actor    :class:`Reject`: why (readable differences)
transitions    actor -> learner    :class:`Transitions`: a chunk of one episode
ack            learner -> actor    :class:`Ack`: highest contiguous seq stored
weights        learner -> actors   :class:`Weights`: packed single frame on PUB/SUB
stats          actor -> learner    :class:`Stats`: namespaced scalars
heartbeat      both                :class:`Heartbeat`: role, status, counters
=============  ==================  =========================================================

:func:`encode` picks the framing by size (one packed frame for small messages, multipart with
zero-copy arrays for large ones) and :func:`decode` reads either; :func:`pack` / :func:`unpack`
always use the single frame (weights on a CONFLATE socket). Every decoder raises only
:class:`~robot_rl.transport.wire.MessageError` on bad input.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Collection, Mapping, Sequence, Union

import numpy as np

from robot_rl.transport import wire
from robot_rl.transport.handshake import Hello
from robot_rl.transport.wire import DEFAULT_MAX_BYTES, MessageError
from robot_rl.transport.weights import arrays_to_state_dict, state_dict_to_arrays  # noqa: F401  (re-exported)

MAX_STATS = 256
"""Most scalars in one stats or heartbeat message."""


@dataclasses.dataclass(frozen=True)
class Welcome:
    """The learner accepted an actor.

    Attributes:
        actor: the accepted actor's id.
        stored_seq: highest contiguous transitions seq the learner already holds from this
            actor (-1: none); the actor resends its spool from ``stored_seq + 1``.
        weights_version: newest published weights version (-1: none yet).
    """

    actor: str
    stored_seq: int = -1
    weights_version: int = -1


@dataclasses.dataclass(frozen=True)
class Reject:
    """The learner refused an actor; ``reason`` is one readable line, ``differences`` the details."""

    actor: str
    reason: str
    differences: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Ack:
    """The learner stored every transitions message of ``actor`` up to ``stored_seq`` (-1: none)."""

    actor: str
    stored_seq: int


@dataclasses.dataclass(frozen=True)
class Stats:
    """Scalars from an actor, namespaced like ``env/episode_return``, ``env/success``,
    ``actor/intervention_rate``, ``actor/control_hz``, ``actor/loop_latency_ms``,
    ``actor/queue_depth`` (units in the name)."""

    actor: str
    values: Mapping[str, float]
    seq: int = 0


@dataclasses.dataclass(frozen=True)
class Heartbeat:
    """I am alive: ``role`` ("actor" or "learner"), a status line and integer counters."""

    actor: str
    role: str
    status: str = ""
    counters: Mapping[str, int] = dataclasses.field(default_factory=dict)
    seq: int = 0


@dataclasses.dataclass(frozen=True, eq=False)  # arrays: compare fields yourself
class Transitions:
    """A chunk of ``count`` consecutive steps of ONE episode from one actor.

    Step ``t`` (``first_step <= t < first_step + count``) took ``action[t - first_step]`` and
    led to observation ``t + 1``. ``observations[key]`` holds observations
    ``first_step + 1 .. first_step + count``; the chunk with ``first_step == 0`` also holds the
    reset observation as its first row (``count + 1`` rows). ``final`` marks the chunk where
    the episode ended: its last step, and only that one, is ``terminated`` or ``truncated``.
    The learner deduplicates on ``(actor, episode, step)``; ``seq`` orders the actor's chunks.

    Attributes:
        action: ``(count, A)`` float32, the executed action.
        reward: ``(count,)`` float32.
        terminated, truncated, intervention: ``(count,)`` bool (intervention: a human acted).
        observations: key -> ``(count[+1], ...)`` (``state`` float32, cameras uint8 HxWx3).
    """

    actor: str
    seq: int
    episode: int
    first_step: int
    action: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    intervention: np.ndarray
    observations: Mapping[str, np.ndarray]
    final: bool = False

    @property
    def count(self) -> int:
        return int(len(self.action))

    @property
    def steps(self) -> range:
        return range(self.first_step, self.first_step + self.count)

    def keys(self) -> list[tuple[str, int, int]]:
        """Dedup keys ``(actor, episode, step)`` of the steps in this chunk."""
        return [(self.actor, self.episode, step) for step in self.steps]

    def next_observations(self) -> dict[str, np.ndarray]:
        """Observation after each step: key -> ``(count, ...)``."""
        skip = 1 if self.first_step == 0 else 0
        return {k: v[skip:] for k, v in self.observations.items()}

    def reset_observation(self) -> dict[str, np.ndarray] | None:
        """The episode's first observation (only in the chunk with ``first_step == 0``)."""
        return {k: v[0] for k, v in self.observations.items()} if self.first_step == 0 else None


@dataclasses.dataclass(frozen=True, eq=False)  # arrays: compare fields yourself
class Weights:
    """Agent parameters: flat name -> array (``actor.trunk.0.weight``...), float32 for floats.

    ``version`` increases with every publish; ``learner_step`` is the learner's update count.
    """

    version: int
    learner_step: int
    params: Mapping[str, np.ndarray]
    actor: str = "learner"


Typed = Union[Hello, Welcome, Reject, Ack, Transitions, Weights, Stats, Heartbeat]


# -------------------------------------------------------------------------------- meta checks


def _meta(message: wire.Message, fields: Collection[str]) -> dict:
    if message.meta.keys() != fields:
        raise MessageError(f"{message.kind} meta must have exactly the fields {sorted(fields)}, got {sorted(message.meta)[:10]}")
    return message.meta


def _int(message: wire.Message, name: str, minimum: int = 0) -> int:
    value = message.meta[name]
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value < 2**63:
        raise MessageError(f"{message.kind} {name} must be an integer >= {minimum}, got {str(value)[:40]}")
    return value


def _str(message: wire.Message, name: str, max_chars: int = 4096) -> str:
    value = message.meta[name]
    if not isinstance(value, str) or len(value) > max_chars:
        raise MessageError(f"{message.kind} {name} must be a string of at most {max_chars} characters")
    return value


def _scalars(message: wire.Message, name: str, ints: bool) -> dict:
    value = message.meta[name]
    ok = (lambda x: isinstance(x, int) and not isinstance(x, bool)) if ints else (lambda x: isinstance(x, (int, float)) and not isinstance(x, bool))
    if not isinstance(value, dict) or len(value) > MAX_STATS or not all(len(k) <= 128 and ok(v) for k, v in value.items()):
        raise MessageError(f"{message.kind} {name} must map at most {MAX_STATS} names to {'integers' if ints else 'numbers'}")
    return value


def _no_arrays(message: wire.Message) -> None:
    if message.arrays:
        raise MessageError(f"{message.kind} message carries no arrays, got {sorted(message.arrays)[:5]}")


def _json_number(value: Any) -> float:
    return float(value.item() if isinstance(value, np.generic) else value)


# ----------------------------------------------------------------------------- transitions


_STEP_ARRAYS = {"reward": np.dtype(np.float32), "terminated": np.dtype(bool), "truncated": np.dtype(bool),
                "intervention": np.dtype(bool)}
_NOT_OBSERVATIONS = frozenset(_STEP_ARRAYS) | {"action"}
_TRANSITIONS_META = frozenset({"episode", "first_step", "count", "final"})
_FLOAT32 = np.dtype(np.float32)


def _transitions_to_wire(msg: Transitions) -> wire.Message:
    arrays = {"action": msg.action, "reward": msg.reward, "terminated": msg.terminated, "truncated": msg.truncated,
              "intervention": msg.intervention}
    arrays.update({f"obs/{k}": v for k, v in msg.observations.items()})
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    meta = {"episode": msg.episode, "first_step": msg.first_step, "count": msg.count, "final": bool(msg.final)}
    return wire.Message("transitions", msg.actor, msg.seq, meta, arrays)


def _check_step_arrays(message: wire.Message, count: int) -> None:
    arrays = message.arrays
    action = arrays.get("action")
    if action is None or action.dtype != _FLOAT32 or action.ndim != 2 or len(action) != count:
        got = "missing" if action is None else f"{action.dtype} {action.shape}"
        raise MessageError(f"transitions action must be float32 (count={count}, A), got {got}")
    for name, dtype in _STEP_ARRAYS.items():
        value = arrays.get(name)
        if value is None or value.dtype != dtype or value.shape != (count,):
            got = "missing" if value is None else f"{value.dtype} {value.shape}"
            raise MessageError(f"transitions {name} must be {dtype} (count={count},), got {got}")


def _check_episode_end(message: wire.Message, final: bool) -> None:
    terminated, truncated = message.arrays["terminated"], message.arrays["truncated"]
    ends = np.count_nonzero(terminated) + np.count_nonzero(truncated)
    last = int(terminated[-1]) + int(truncated[-1])
    if (last > 0 and ends == last) if final else ends == 0:
        return
    ended = terminated | truncated
    raise MessageError(f"transitions: final={final} but terminated|truncated is {ended.astype(int).tolist()[:20]}; "
                       "only the last step of a final chunk may end the episode")


def _transitions_from_wire(message: wire.Message) -> Transitions:
    meta = _meta(message, _TRANSITIONS_META)
    episode, first_step, count = _int(message, "episode"), _int(message, "first_step"), _int(message, "count", 1)
    if not isinstance(meta["final"], bool):
        raise MessageError("transitions final must be true or false")
    _check_step_arrays(message, count)
    rows = count + 1 if first_step == 0 else count
    observations = {}
    for name, value in message.arrays.items():
        if name in _NOT_OBSERVATIONS:
            continue
        if not name.startswith("obs/") or len(name) == 4:
            raise MessageError(f"transitions: unexpected array {name!r} (observations are named obs/<key>)")
        if value.ndim == 0 or len(value) != rows:
            raise MessageError(f"transitions {name}: expected {rows} rows (count={count}, first_step={first_step}), got shape {value.shape}")
        observations[name[4:]] = value
    if not observations:
        raise MessageError("transitions carry no observations (arrays named obs/<key>)")
    _check_episode_end(message, meta["final"])
    a = message.arrays
    return Transitions(message.actor, message.seq, episode, first_step, a["action"], a["reward"], a["terminated"],
                       a["truncated"], a["intervention"], observations, meta["final"])


# --------------------------------------------------------------------------------- dispatch


def _build(msg: Typed) -> wire.Message:
    if isinstance(msg, Transitions):
        return _transitions_to_wire(msg)
    if isinstance(msg, Hello):
        return wire.Message("hello", msg.actor, 0, msg.to_meta())
    if isinstance(msg, Welcome):
        return wire.Message("welcome", msg.actor, 0, {"stored_seq": msg.stored_seq, "weights_version": msg.weights_version})
    if isinstance(msg, Reject):
        return wire.Message("reject", msg.actor, 0, {"reason": msg.reason, "differences": list(msg.differences)})
    if isinstance(msg, Ack):
        return wire.Message("ack", msg.actor, 0, {"stored_seq": msg.stored_seq})
    if isinstance(msg, Weights):
        return wire.Message("weights", msg.actor, 0, {"version": msg.version, "learner_step": msg.learner_step}, dict(msg.params))
    if isinstance(msg, Stats):
        return wire.Message("stats", msg.actor, msg.seq, {"values": {str(k): _json_number(v) for k, v in msg.values.items()}})
    if isinstance(msg, Heartbeat):
        counters = {str(k): int(v) for k, v in msg.counters.items()}
        return wire.Message("heartbeat", msg.actor, msg.seq, {"role": msg.role, "status": msg.status, "counters": counters})
    raise TypeError(f"not a message type: {type(msg).__name__}")


def to_wire(msg: Typed) -> wire.Message:
    """Typed message -> generic :class:`~robot_rl.transport.wire.Message`, checked by the same
    kind-specific rules (and error messages) as the receiver's :func:`from_wire`."""
    message = _build(msg)
    from_wire(message)
    return message


def _weights_from_wire(message: wire.Message) -> Weights:
    _meta(message, {"version", "learner_step"})
    if not message.arrays:
        raise MessageError("weights message carries no parameters")
    return Weights(_int(message, "version"), _int(message, "learner_step"), message.arrays, message.actor)


def _reject_from_wire(message: wire.Message) -> Reject:
    differences = _meta(message, {"reason", "differences"})["differences"]
    if not isinstance(differences, list) or not all(isinstance(d, str) for d in differences):
        raise MessageError("reject differences must be a list of strings")
    return Reject(message.actor, _str(message, "reason"), tuple(differences))


def _heartbeat_from_wire(message: wire.Message) -> Heartbeat:
    _meta(message, {"role", "status", "counters"})
    return Heartbeat(message.actor, _str(message, "role", 64), _str(message, "status"), _scalars(message, "counters", ints=True), message.seq)


def _hello_from_wire(message: wire.Message) -> Hello:
    hello = Hello.from_meta(message.meta)
    if hello.actor != message.actor:
        raise MessageError(f"hello: header actor {message.actor!r} differs from meta actor {hello.actor!r}")
    return hello


def _welcome_from_wire(message: wire.Message) -> Welcome:
    _meta(message, {"stored_seq", "weights_version"})
    return Welcome(message.actor, _int(message, "stored_seq", -1), _int(message, "weights_version", -1))


def _ack_from_wire(message: wire.Message) -> Ack:
    _meta(message, {"stored_seq"})
    return Ack(message.actor, _int(message, "stored_seq", -1))


def _stats_from_wire(message: wire.Message) -> Stats:
    _meta(message, {"values"})
    return Stats(message.actor, _scalars(message, "values", ints=False), message.seq)


_DECODERS = {
    "hello": _hello_from_wire,
    "welcome": _welcome_from_wire,
    "reject": _reject_from_wire,
    "ack": _ack_from_wire,
    "transitions": _transitions_from_wire,
    "weights": _weights_from_wire,
    "stats": _stats_from_wire,
    "heartbeat": _heartbeat_from_wire,
}


def from_wire(message: wire.Message) -> Typed:
    """Generic message -> its typed dataclass; raises MessageError on kind-specific problems."""
    if message.kind not in _DECODERS:
        raise MessageError(f"unknown message kind {message.kind!r}")
    if message.kind not in ("transitions", "weights"):
        _no_arrays(message)
    return _DECODERS[message.kind](message)


def encode(msg: Typed, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Any]:
    """Typed message -> frames: one packed frame if small, else multipart with zero-copy arrays
    (see :func:`robot_rl.transport.wire.to_frames`). Send with ``send_multipart(frames,
    copy=False)`` and leave the arrays unchanged until sent."""
    return wire.to_frames(to_wire(msg), max_bytes=max_bytes)


def decode(frames: Sequence[Any], *, max_bytes: int = DEFAULT_MAX_BYTES) -> Typed:
    """Frames in either framing -> typed message; raises MessageError only. Arrays are
    read-only views of the frames."""
    return from_wire(wire.from_frames(frames, max_bytes=max_bytes))


def pack(msg: Typed, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Typed message -> one packed frame (for PUB/SUB with CONFLATE)."""
    return wire.pack(to_wire(msg), max_bytes=max_bytes)


def unpack(buffer: Any, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Typed:
    """One packed frame -> typed message; raises MessageError only. Arrays are read-only views."""
    return from_wire(wire.unpack(buffer, max_bytes=max_bytes))
