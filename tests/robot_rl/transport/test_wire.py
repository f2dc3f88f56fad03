"""The wire codec: round trips in both framings, zero-copy decoding, and every validation error."""

import json
import struct

import numpy as np
import pytest

from robot_rl.transport import wire
from robot_rl.transport.wire import MessageError, SchemaVersionError


def sample_message() -> wire.Message:
    return wire.Message(
        "transitions", "arm-1", 7, {"episode": 3, "note": "héllo", "nested": {"a": [1, 2.5, None]}},
        {
            "action": np.arange(14, dtype=np.float32).reshape(2, 7),
            "done": np.array([False, True]),
            "image": np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3),
            "big_endian": np.arange(3, dtype=">i4"),
            "empty": np.zeros((0, 5), np.float64),
            "scalar": np.array(2.5, np.float16),
            "strided": np.arange(10, dtype=np.int16)[::2],
        },
    )


def assert_same(decoded: wire.Message, original: wire.Message) -> None:
    assert (decoded.kind, decoded.actor, decoded.seq, decoded.meta) == (original.kind, original.actor, original.seq, original.meta)
    assert list(decoded.arrays) == list(original.arrays)
    for name, value in original.arrays.items():
        got = decoded.arrays[name]
        assert got.shape == np.shape(value) and got.dtype.name == np.asarray(value).dtype.name, name
        np.testing.assert_array_equal(got, value)


def test_multipart_round_trip_is_zero_copy_and_read_only():
    message = sample_message()
    frames = wire.encode(message)
    assert len(frames) == 1 + len(message.arrays)
    header = json.loads(frames[0])
    assert header["v"] == wire.SCHEMA_VERSION and header["arrays"][0] == {"name": "action", "dtype": "float32", "shape": [2, 7]}
    received = [bytes(f) for f in frames]  # what a socket hands over
    decoded = wire.decode(received)
    assert_same(decoded, message)
    image = decoded.arrays["image"]
    assert np.shares_memory(image, np.frombuffer(received[3], np.uint8))  # a view, not a copy
    assert not image.flags.writeable
    with pytest.raises(ValueError):
        image[0, 0, 0, 0] = 1


def test_encoded_frames_share_memory_with_contiguous_inputs():
    action = np.zeros((100, 7), np.float32)
    frames = wire.encode(wire.Message("transitions", "a", 0, {}, {"action": action}))
    assert np.shares_memory(frames[1], action)


def test_packed_round_trip_is_aligned():
    message = sample_message()
    buffer = wire.pack(message)
    (header_len,) = struct.unpack("<I", buffer[:4])
    entries = json.loads(buffer[4:4 + header_len])["arrays"]
    assert all(e["offset"] % 8 == 0 for e in entries)
    decoded = wire.unpack(buffer)
    assert_same(decoded, message)
    base = np.frombuffer(buffer, np.uint8).ctypes.data
    assert all((a.ctypes.data - base) % 8 == 0 for a in decoded.arrays.values() if a.size)


def test_messages_without_arrays_round_trip():
    message = wire.Message("heartbeat", "learner", 0, {"status": "ok"})
    assert_same(wire.decode(wire.encode(message)), message)
    assert_same(wire.unpack(wire.pack(message)), message)


def header(**changes) -> bytes:
    fields = {"v": wire.SCHEMA_VERSION, "kind": "stats", "actor": "a", "seq": 0, "meta": {}, "arrays": []}
    fields.update(changes)
    return json.dumps({k: v for k, v in fields.items() if v is not ...}).encode()


F32 = {"name": "x", "dtype": "float32", "shape": [2]}


@pytest.mark.parametrize(
    "frames, error",
    [
        ([], "at least one frame"),
        ("not frames", "at least one frame"),
        ([12], "not a bytes-like buffer"),
        ([b"\xff\xfe"], "not UTF-8"),
        ([b"{not json"], "not valid JSON"),
        ([b"[1, 2]"], "must be a JSON object"),
        ([b"[" * 5000 + b"]" * 5000], "nested too deeply"),
        ([b" " * (wire.MAX_HEADER_BYTES + 1)], "more than the limit"),
        ([header(kind="launch_missiles")], "unknown message kind 'launch_missiles'"),
        ([header(kind=3)], "unknown message kind 3"),
        ([header(seq=...)], "missing ['seq']"),
        ([header(extra=1)], "unexpected ['extra']"),
        ([header(seq=-1)], "seq must be an integer"),
        ([header(seq=1.5)], "seq must be an integer"),
        ([header(seq=True)], "seq must be an integer"),
        ([header(seq=2**64)], "seq must be an integer"),
        ([header(actor="")], "actor must be 1-64 printable"),
        ([header(actor="x" * 65)], "actor must be 1-64 printable"),
        ([header(actor="a\nb")], "actor must be 1-64 printable"),
        ([header(actor=5)], "actor must be 1-64 printable"),
        ([header(meta=[])], "meta must be a JSON object"),
        ([header(arrays={})], "arrays must be a list"),
        ([header(arrays=[F32] * (wire.MAX_ARRAYS + 1))], "arrays must be a list of at most"),
        ([header(arrays=["x"]), b""], "array entry 0 must be an object"),
        ([header(arrays=[{**F32, "dtype": "object"}]), b""], "dtype 'object' is not allowed"),
        ([header(arrays=[{**F32, "dtype": "<f4"}]), b""], "dtype '<f4' is not allowed"),
        ([header(arrays=[{**F32, "shape": [-1]}]), b""], "non-negative integers"),
        ([header(arrays=[{**F32, "shape": [1.0]}]), b""], "non-negative integers"),
        ([header(arrays=[{**F32, "shape": [1] * 9}]), b""], "at most 8"),
        ([header(arrays=[{**F32, "shape": [2**40, 2**40]}]), b""], "larger than max_bytes"),
        ([header(arrays=[{**F32, "name": ""}]), b""], "name must be"),
        ([header(arrays=[F32, F32]), b"\0" * 8, b"\0" * 8], "appears twice"),
        ([header(arrays=[F32])], "lists 1 arrays but the message has 0"),
        ([header(), b"extra"], "lists 0 arrays but the message has 1"),
        ([header(arrays=[F32]), b"\0" * 7], "frame has 7 bytes"),
    ],
)
def test_decode_rejects_malformed_multipart(frames, error):
    with pytest.raises(MessageError) as info:
        wire.decode(frames)
    assert error in str(info.value)


def test_wrong_version_names_both_versions():
    with pytest.raises(SchemaVersionError, match=r"message has 99, this side speaks 1"):
        wire.decode([header(v=99)])
    with pytest.raises(SchemaVersionError):
        wire.unpack(wire.pack(wire.Message("stats", "a")).replace(b'"v":1', b'"v":2'))


def test_size_limits():
    message = wire.Message("weights", "learner", 0, {}, {"w": np.zeros(1000, np.float32)})
    with pytest.raises(MessageError, match="more than max_bytes=1000"):
        wire.decode(wire.encode(message), max_bytes=1000)
    with pytest.raises(MessageError, match="more than max_bytes=1000"):
        wire.unpack(wire.pack(message), max_bytes=1000)
    with pytest.raises(MessageError, match="more than max_bytes"):
        wire.encode(message, max_bytes=1000)
    assert wire.decode(wire.encode(message), max_bytes=5000).arrays["w"].shape == (1000,)


def test_encode_refuses_what_decode_would_refuse():
    with pytest.raises(MessageError, match="dtype object is not allowed"):
        wire.encode(wire.Message("stats", "a", 0, {}, {"x": np.array([{}], dtype=object)}))
    with pytest.raises(MessageError, match="not JSON-serializable"):
        wire.encode(wire.Message("stats", "a", 0, {"x": object()}))
    with pytest.raises(MessageError, match="unknown message kind"):
        wire.pack(wire.Message("nope", "a"))
    with pytest.raises(MessageError, match="seq must be"):
        wire.encode(wire.Message("stats", "a", -3))


def packed_parts(message: wire.Message) -> tuple[dict, bytes]:
    buffer = wire.pack(message)
    (length,) = struct.unpack("<I", buffer[:4])
    return json.loads(buffer[4:4 + length]), buffer


def repack(head: dict, data: bytes) -> bytes:
    raw = json.dumps(head).encode()
    start = -(-(4 + len(raw)) // 8) * 8
    return struct.pack("<I", len(raw)) + raw + b"\0" * (start - 4 - len(raw)) + data


def test_unpack_rejects_malformed_packed():
    message = wire.Message("weights", "learner", 0, {}, {"a": np.ones(3, np.float32), "b": np.ones(2, np.int64)})
    head, buffer = packed_parts(message)
    data = buffer[-32:]  # a: 12 bytes + 4 padding, b: 16 bytes
    assert wire.unpack(repack(head, data)).arrays["b"].tolist() == [1, 1]
    cases = {
        "shorter than its 4-byte length prefix": b"\1\0",
        "exceeds the limit": struct.pack("<I", 2**31) + b"{}",
        "header describes": buffer[:-1],
        "offset 4, expected 16": repack({**head, "arrays": [head["arrays"][0], {**head["arrays"][1], "offset": 4}]}, data),
        "exactly the fields": repack({**head, "arrays": [{k: v for k, v in e.items() if k != "offset"} for e in head["arrays"]]}, data),
        "offset must be": repack({**head, "arrays": [{**head["arrays"][0], "offset": "0"}, head["arrays"][1]]}, data),
    }
    for error, bad in cases.items():
        with pytest.raises(MessageError, match=error):
            wire.unpack(bad)
    with pytest.raises(MessageError, match="header describes"):
        wire.unpack(buffer + b"\0" * 8)


def test_decode_accepts_memoryviews_and_numpy_frames():
    message = wire.Message("stats", "a", 1, {}, {"x": np.arange(4, dtype=np.int32)})
    frames = wire.encode(message)
    decoded = wire.decode([memoryview(frames[0]), np.asarray(frames[1]).view(np.int32)])
    assert decoded.arrays["x"].tolist() == [0, 1, 2, 3]
    with pytest.raises(MessageError, match="not a contiguous byte buffer"):
        wire.decode([frames[0], np.arange(8, dtype=np.int32)[::2]])


def test_to_frames_packs_small_messages_and_sends_large_ones_multipart():
    small = wire.Message("stats", "a", 1, {}, {"x": np.zeros(10, np.float32)})
    large = wire.Message("transitions", "a", 2, {}, {"image": np.zeros((2, 128, 128, 3), np.uint8), "x": np.ones(3)})
    small_frames, large_frames = wire.to_frames(small), wire.to_frames(large)
    assert len(small_frames) == 1 and small_frames[0][3] == 0
    assert len(large_frames) == 3 and np.shares_memory(large_frames[1], large.arrays["image"])
    assert_same(wire.from_frames(small_frames), small)
    assert_same(wire.from_frames([bytes(f) for f in large_frames]), large)
    no_arrays = wire.encode(wire.Message("heartbeat", "a"))  # a one-frame multipart message
    assert len(no_arrays) == 1 and wire.from_frames(no_arrays).kind == "heartbeat"
    with pytest.raises(MessageError, match="at least one frame"):
        wire.from_frames([])
