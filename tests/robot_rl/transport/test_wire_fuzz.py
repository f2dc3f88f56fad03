"""Fuzzing the decoders: on any input they return a message or raise MessageError, nothing else."""

import json
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robot_rl.transport import messages, wire
from robot_rl.transport.wire import MessageError

# A few hundred examples per test keeps the file at ~2 s; ROBOT_RL_FUZZ_EXAMPLES=20000 for a long run.
EXAMPLES = int(os.environ.get("ROBOT_RL_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
MAX_BYTES = 1 << 20  # keep a lucky huge-but-valid shape cheap


def decodes_or_rejects(decoder, data) -> None:
    try:
        decoder(data)
    except MessageError:
        pass


def valid_message() -> wire.Message:
    return wire.Message(
        "transitions", "arm-1", 3, {"episode": 0, "first_step": 0, "count": 2, "final": False},
        {"action": np.zeros((2, 3), np.float32), "reward": np.zeros(2, np.float32), "terminated": np.zeros(2, bool),
         "truncated": np.zeros(2, bool), "intervention": np.zeros(2, bool), "obs/state": np.zeros((3, 4), np.float32),
         "obs/front": np.zeros((3, 2, 2, 3), np.uint8)},
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([wire.SCHEMA_VERSION, 0, 2, "1", None, True]),
        "kind": st.sampled_from(sorted(wire.KINDS)) | json_values,
        "actor": st.text(max_size=70) | json_values,
        "seq": st.integers(-5, 2**70) | json_values,
        "meta": st.dictionaries(st.text(max_size=5), json_values, max_size=3) | json_values,
        "arrays": st.lists(
            st.fixed_dictionaries(
                {"name": st.text(max_size=4) | json_values, "dtype": st.sampled_from([*wire.DTYPES, "object", "<f8"]) | json_values,
                 "shape": st.lists(st.integers(-2, 2**40), max_size=10) | json_values},
                optional={"offset": st.integers(-8, 64) | json_values, "junk": json_values}),
            max_size=4) | json_values,
        "junk": json_values,
    },
)


@FUZZ
@given(frames=st.lists(st.binary(max_size=64), max_size=6))
def test_random_frames(frames):
    decodes_or_rejects(lambda f: messages.decode(f, max_bytes=MAX_BYTES), frames)


@FUZZ
@given(head=headers, bodies=st.lists(st.binary(max_size=48), max_size=5))
def test_structured_random_headers(head, bodies):
    raw = json.dumps(head).encode()
    decodes_or_rejects(lambda f: messages.decode(f, max_bytes=MAX_BYTES), [raw, *bodies])
    packed = len(raw).to_bytes(4, "little") + raw + b"".join(bodies)
    decodes_or_rejects(lambda b: messages.unpack(b, max_bytes=MAX_BYTES), packed)


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_packed_bytes(data):
    decodes_or_rejects(lambda b: messages.unpack(b, max_bytes=MAX_BYTES), data)


@FUZZ
@given(data=st.data())
def test_mutated_valid_multipart(data):
    frames = [bytes(f) for f in wire.encode(valid_message())]
    index = data.draw(st.integers(0, len(frames) - 1))
    frame = bytearray(frames[index])
    for _ in range(data.draw(st.integers(1, 4))):
        if frame and data.draw(st.booleans()):
            frame[data.draw(st.integers(0, len(frame) - 1))] = data.draw(st.integers(0, 255))
        else:
            cut = data.draw(st.integers(0, len(frame)))
            frame = frame[:cut] + data.draw(st.binary(max_size=4)) + frame[cut + data.draw(st.integers(0, 3)):]
    frames[index] = bytes(frame)
    if data.draw(st.booleans()):
        frames = frames[: data.draw(st.integers(0, len(frames)))]
    decodes_or_rejects(lambda f: messages.decode(f, max_bytes=MAX_BYTES), frames)


@FUZZ
@given(data=st.data())
def test_mutated_and_truncated_packed(data):
    buffer = bytearray(messages.pack(messages.from_wire(valid_message())))
    for _ in range(data.draw(st.integers(0, 4))):
        buffer[data.draw(st.integers(0, len(buffer) - 1))] = data.draw(st.integers(0, 255))
    buffer = buffer[: data.draw(st.integers(0, len(buffer)))]
    decodes_or_rejects(lambda b: messages.unpack(b, max_bytes=MAX_BYTES), bytes(buffer))


@FUZZ
@given(data=st.data())
def test_mutated_header_fields(data):
    frames = [bytes(f) for f in wire.encode(valid_message())]
    head = json.loads(frames[0])
    path = data.draw(st.sampled_from(["top", "meta", "entry"]))
    target = head if path == "top" else head["meta"] if path == "meta" else head["arrays"][data.draw(st.integers(0, 6))]
    key = data.draw(st.sampled_from(sorted(target)))
    if data.draw(st.booleans()):
        del target[key]
    else:
        target[key] = data.draw(json_values)
    frames[0] = json.dumps(head).encode()
    decodes_or_rejects(lambda f: messages.decode(f, max_bytes=MAX_BYTES), frames)


META_FIELDS = {
    "hello": ["actor", "task", "schema_version", "library_version", "observation", "action", "agent"],
    "welcome": ["stored_seq", "weights_version"],
    "reject": ["reason", "differences"],
    "ack": ["stored_seq"],
    "transitions": ["episode", "first_step", "count", "final"],
    "weights": ["version", "learner_step"],
    "stats": ["values"],
    "heartbeat": ["role", "status", "counters"],
}
spec_values = json_values | st.fixed_dictionaries(
    {"shape": st.lists(st.integers(-1, 5), max_size=3) | json_values, "dtype": st.sampled_from(["uint8", "object"]) | json_values,
     "low": st.lists(st.floats(), max_size=2) | json_values, "high": st.lists(st.integers(), max_size=2) | json_values})


@FUZZ
@given(data=st.data())
def test_typed_meta_with_random_values(data):
    """Kind-specific validation: right field names, random values (and random arrays)."""
    kind = data.draw(st.sampled_from(sorted(META_FIELDS)))
    meta = {k: data.draw(spec_values | st.dictionaries(st.text(max_size=4), spec_values, max_size=2)) for k in META_FIELDS[kind]}
    arrays = {name: np.zeros(data.draw(st.lists(st.integers(0, 3), max_size=3)), data.draw(st.sampled_from(["float32", "bool", "uint8"])))
              for name in data.draw(st.lists(st.sampled_from(["action", "reward", "terminated", "truncated", "intervention", "obs/x", "obs/"]), max_size=7, unique=True))}
    frames = [bytes(f) for f in wire.encode(wire.Message(kind, "a", 0, meta, arrays))]
    decodes_or_rejects(lambda f: messages.decode(f, max_bytes=MAX_BYTES), frames)
