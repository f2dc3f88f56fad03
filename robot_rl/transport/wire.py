"""The wire codec: a message is a JSON header plus named numpy arrays, never a pickle.

Two framings carry the same message:

* **multipart** (:func:`encode` / :func:`decode`): frame 0 is the UTF-8 JSON header
  ``{"v", "kind", "actor", "seq", "meta", "arrays": [{"name", "dtype", "shape"}, ...]}`` and
  frames 1..n are the raw C-contiguous bytes of each array, in header order. Used on
  DEALER/ROUTER sockets; large arrays go out without a copy (``send_multipart(copy=False)``).
* **packed** (:func:`pack` / :func:`unpack`): one frame, ``uint32`` little-endian header length,
  the header JSON (its array entries also hold ``"offset"``), zero padding, then the array bytes,
  each starting at an 8-byte aligned offset counted from the start of the data section (itself
  8-byte aligned). Used for weights on PUB/SUB with ``CONFLATE``, which drops multipart messages,
  and for small messages, where per-frame costs dominate.

:func:`to_frames` picks the framing by size and :func:`from_frames` reads either (a packed
frame's byte 3 is always zero, a JSON header never holds a zero byte).

Decoding validates everything (version, kind, field types, dtype allowlist, shapes, byte
lengths, size limits) and raises :class:`MessageError` -- and nothing else -- on bad input.
Decoded arrays are zero-copy views of the received buffers (``np.frombuffer``) and are marked
read-only; copy them (``np.array(a)``) before modifying. Multi-byte values travel little-endian.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from typing import Any, Collection, Sequence

import numpy as np

from robot_rl.transport.layouts import Layout, layout_of
from robot_rl.transport.limits import (ALIGN, DEFAULT_MAX_BYTES, DTYPES, KINDS, MAX_ACTOR_CHARS,  # noqa: F401  (all re-exported)
                                       MAX_ARRAYS, MAX_HEADER_BYTES, MAX_NAME_CHARS, MAX_NDIM, PACK_BELOW_BYTES,
                                       SCHEMA_VERSION, MessageError, SchemaVersionError, align)

_HEADER_KEYS = frozenset({"v", "kind", "actor", "seq", "meta", "arrays"})
_LENGTH = struct.Struct("<I")
_JSON = json.JSONEncoder(separators=(",", ":"))
_MAX_SEQ = 2**63 - 1


@dataclasses.dataclass
class Message:
    """One decoded (or to-be-encoded) message.

    Attributes:
        kind: one of :data:`KINDS`.
        actor: id of the actor the message is from (or, for learner replies, about), 1-64
            printable characters.
        seq: sender's sequence number, ``0 <= seq < 2**63`` (transitions: per actor, from 0).
        meta: JSON-serializable dict of kind-specific scalars.
        arrays: name -> numpy array, in wire order. Decoded arrays are read-only views.
    """

    kind: str
    actor: str
    seq: int = 0
    meta: dict = dataclasses.field(default_factory=dict)
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


# ---------------------------------------------------------------------------------------- encode


_WIRE_NAMES = {dtype: name for name, dtype in DTYPES.items()}
_json_string = json.encoder.encode_basestring_ascii  # str -> its JSON literal (C)
_NAME_JSON: dict[str, str] = {}  # array name -> JSON literal, memoized (names repeat every message)


def _name_json(name: str) -> str:
    text = _NAME_JSON.get(name)
    if text is None:
        if len(_NAME_JSON) > 4096:
            _NAME_JSON.clear()
        text = _NAME_JSON[name] = _json_string(name)
    return text


def _wire_array(name: Any, value: Any) -> tuple[np.ndarray, str]:
    """A C-contiguous little-endian array and its wire dtype name; MessageError if not allowed."""
    if type(name) is not str or not 1 <= len(name) <= MAX_NAME_CHARS:
        raise MessageError(f"array name {str(name)[:40]!r} must be a string of 1-{MAX_NAME_CHARS} characters")
    array = value if type(value) is np.ndarray else np.asarray(value)
    dtype_name = _WIRE_NAMES.get(array.dtype)
    if dtype_name is None:
        if array.dtype.name not in DTYPES:
            raise MessageError(f"array {name!r}: dtype {array.dtype} is not allowed on the wire (allowed: {', '.join(DTYPES)})")
        dtype_name = array.dtype.name
        array = array.astype(DTYPES[dtype_name])  # big-endian input: swap to the wire order
    if array.ndim > MAX_NDIM:
        raise MessageError(f"array {name!r} has {array.ndim} dimensions, more than {MAX_NDIM}")
    return (array if array.flags.c_contiguous else array.copy(order="C")), dtype_name


def _prepare(message: Message) -> tuple[list[np.ndarray], list[str], int]:
    """The message's arrays (wire-ready), each one's header entry as JSON text (without the
    packed offset), and their total byte count."""
    arrays, entries, total = [], [], 0
    for name, value in message.arrays.items():
        array, dtype_name = _wire_array(name, value)
        arrays.append(array)
        entries.append(f'{{"name":{_name_json(name)},"dtype":"{dtype_name}","shape":[{",".join(map(str, array.shape))}]')
        total += array.nbytes
    return arrays, entries, total


def _header_bytes(message: Message, entries: list[str], data_bytes: int, max_bytes: int) -> bytes:
    """The header JSON (fields checked as the decoder checks them; ``entries`` are right by
    construction, see :func:`_prepare`)."""
    _check_fields({"v": SCHEMA_VERSION, "kind": message.kind, "actor": message.actor, "seq": message.seq,
                   "meta": message.meta, "arrays": entries}, KINDS)
    try:
        meta = _JSON.encode(message.meta)
    except (TypeError, ValueError) as err:
        raise MessageError(f"{message.kind} message: meta is not JSON-serializable: {err}") from err
    raw = (f'{{"v":{SCHEMA_VERSION},"kind":{_json_string(message.kind)},"actor":{_json_string(message.actor)},'
           f'"seq":{message.seq},"meta":{meta},"arrays":[{",".join(entries)}]}}').encode("utf-8")
    if len(raw) > MAX_HEADER_BYTES:
        raise MessageError(f"header is {len(raw)} bytes, more than the limit of {MAX_HEADER_BYTES}")
    if len(raw) + data_bytes > max_bytes:
        raise MessageError(f"{message.kind} message is {len(raw) + data_bytes} bytes, more than max_bytes={max_bytes}")
    return raw


def encode(message: Message, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Any]:
    """Message -> multipart frames ``[header bytes, array buffers...]``.

    The array frames are flat ``uint8`` views sharing memory with the (contiguous) inputs, so
    ``socket.send_multipart(frames, copy=False)`` sends them without a copy: do not modify the
    arrays until the send has completed. Raises MessageError if the message would not decode.
    """
    arrays, entries, total = _prepare(message)
    return _multipart(message, arrays, entries, total, max_bytes)


def _multipart(message: Message, arrays: list[np.ndarray], entries: list[str], total: int, max_bytes: int) -> list[Any]:
    header = _header_bytes(message, [entry + "}" for entry in entries], total, max_bytes)
    return [header] + [array.reshape(-1).view(np.uint8) for array in arrays]


def pack(message: Message, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Message -> one packed buffer (see the module docstring). Copies the array bytes once."""
    arrays, entries, total = _prepare(message)
    return _packed(message, arrays, entries, total, max_bytes)


def _packed(message: Message, arrays: list[np.ndarray], entries: list[str], total: int, max_bytes: int) -> bytes:
    offset, placed = 0, []
    for array, entry in zip(arrays, entries):
        placed.append(f'{entry},"offset":{offset}}}')
        offset = align(offset + array.nbytes)
    header = _header_bytes(message, placed, total, max_bytes)
    data_start = align(_LENGTH.size + len(header))
    if data_start + offset > max_bytes:
        raise MessageError(f"{message.kind} message is {data_start + offset} bytes, more than max_bytes={max_bytes}")
    parts = [_LENGTH.pack(len(header)), header, bytes(data_start - _LENGTH.size - len(header))]
    for array in arrays:
        parts.append(array.reshape(-1).view(np.uint8))
        if array.nbytes % ALIGN:
            parts.append(bytes(align(array.nbytes) - array.nbytes))
    return b"".join(parts)


def to_frames(message: Message, *, max_bytes: int = DEFAULT_MAX_BYTES, pack_below: int = PACK_BELOW_BYTES) -> list[Any]:
    """Message -> frames in the cheaper framing: packed (one frame) when its arrays hold fewer
    than ``pack_below`` bytes, multipart (zero-copy arrays) otherwise. :func:`from_frames`
    reads either."""
    arrays, entries, total = _prepare(message)
    if total < pack_below:
        return [_packed(message, arrays, entries, total, max_bytes)]
    return _multipart(message, arrays, entries, total, max_bytes)


# ---------------------------------------------------------------------------------------- decode


def _buffer(frame: Any, index: int) -> memoryview:
    """A flat byte view of one frame (bytes, bytearray, memoryview, zmq.Frame, numpy array)."""
    try:
        view = memoryview(frame)
    except TypeError as err:
        raise MessageError(f"frame {index} is a {type(frame).__name__}, not a bytes-like buffer") from err
    if view.format == "B" and view.ndim == 1:
        return view
    try:
        return view.cast("B", (view.nbytes,)) if view.ndim else view.cast("B")
    except (TypeError, ValueError) as err:  # non-contiguous or an odd format
        raise MessageError(f"frame {index} is not a contiguous byte buffer: {err}") from err


def _parse_header(raw: memoryview) -> tuple[str, Any]:
    """The header's text and its parsed JSON."""
    if len(raw) > MAX_HEADER_BYTES:
        raise MessageError(f"header is {len(raw)} bytes, more than the limit of {MAX_HEADER_BYTES}")
    try:
        text = str(raw, "utf-8")
    except UnicodeDecodeError as err:
        raise MessageError(f"header is not UTF-8 text: {err}") from err
    try:
        return text, json.loads(text)
    except RecursionError as err:
        raise MessageError("header JSON is nested too deeply") from err
    except ValueError as err:  # JSONDecodeError, and integers longer than Python parses
        raise MessageError(f"header is not valid JSON: {err}") from err


def _check_fields(header: Any, kinds: Collection[str]) -> None:
    """Top-level header fields: presence, types, version and kind."""
    if type(header) is not dict:
        raise MessageError(f"header must be a JSON object, got {type(header).__name__}")
    version = header.get("v", SCHEMA_VERSION)
    if type(version) is not int or version != SCHEMA_VERSION:
        raise SchemaVersionError(f"schema version: message has {header.get('v')!r}, this side speaks {SCHEMA_VERSION}")
    if header.keys() != _HEADER_KEYS:
        missing, extra = _HEADER_KEYS - header.keys(), header.keys() - _HEADER_KEYS
        problems = ([f"missing {sorted(missing)}"] if missing else []) + ([f"unexpected {sorted(extra)[:5]}"] if extra else [])
        raise MessageError(f"header fields: {', '.join(problems)}")
    kind, actor, seq = header["kind"], header["actor"], header["seq"]
    if type(kind) is not str or kind not in kinds:
        raise MessageError(f"unknown message kind {kind!r} (known: {', '.join(sorted(kinds))})")
    if type(actor) is not str or not 1 <= len(actor) <= MAX_ACTOR_CHARS or not actor.isprintable():
        raise MessageError(f"actor must be 1-{MAX_ACTOR_CHARS} printable characters, got {str(actor)[:80]!r}")
    if type(seq) is not int or not 0 <= seq <= _MAX_SEQ:  # JSON integers are plain ints; excludes bool
        raise MessageError(f"seq must be an integer in [0, 2**63), got {str(seq)[:40]}")
    if type(header["meta"]) is not dict:
        raise MessageError(f"meta must be a JSON object, got {type(header['meta']).__name__}")
    if type(header["arrays"]) is not list or len(header["arrays"]) > MAX_ARRAYS:
        raise MessageError(f"arrays must be a list of at most {MAX_ARRAYS} entries")


def _check_header(header: Any, text: str, header_len: int, kinds: Collection[str], max_bytes: int, packed: bool) -> Layout:
    """Validate a parsed header; returns its array layout."""
    if header_len > MAX_HEADER_BYTES:
        raise MessageError(f"header is {header_len} bytes, more than the limit of {MAX_HEADER_BYTES}")
    _check_fields(header, kinds)
    layout = layout_of(header, text, packed, max_bytes)
    if header_len + layout.total > max_bytes:
        raise MessageError(f"message is {header_len + layout.total} bytes, more than max_bytes={max_bytes}")
    return layout


def _view(buffer: memoryview, entry: dict, offset: int = 0) -> np.ndarray:
    """A read-only array over ``buffer[offset:]`` (the caller checked the length)."""
    array = np.ndarray(entry["shape"], DTYPES[entry["dtype"]], buffer, offset)
    if array.flags.writeable:  # a writable frame (bytearray): still hand out read-only views
        array.flags.writeable = False
    return array


def _message(header: dict, arrays: dict[str, np.ndarray]) -> Message:
    return Message(header["kind"], header["actor"], header["seq"], header["meta"], arrays)


def decode(frames: Sequence[Any], *, max_bytes: int = DEFAULT_MAX_BYTES, kinds: Collection[str] = KINDS) -> Message:
    """Multipart frames -> Message; raises MessageError (only) on anything malformed.

    ``frames`` may be bytes, ``zmq.Frame`` (``recv_multipart(copy=False)``) or any buffer; the
    returned arrays are read-only views of them (no copy).
    """
    if not isinstance(frames, (list, tuple)) or not frames:
        raise MessageError("a message needs at least one frame (the header)")
    if len(frames) > MAX_ARRAYS + 1:
        raise MessageError(f"{len(frames)} frames is more than the limit of {MAX_ARRAYS + 1}")
    buffers = [_buffer(frame, i) for i, frame in enumerate(frames)]
    if sum(len(b) for b in buffers) > max_bytes:
        raise MessageError(f"message is {sum(len(b) for b in buffers)} bytes, more than max_bytes={max_bytes}")
    text, header = _parse_header(buffers[0])
    layout = _check_header(header, text, len(buffers[0]), kinds, max_bytes, packed=False)
    if len(buffers) != 1 + len(layout.sizes):
        raise MessageError(f"header lists {len(layout.sizes)} arrays but the message has {len(buffers) - 1} array frames")
    arrays = {}
    for entry, size, buffer in zip(layout.entries, layout.sizes, buffers[1:]):
        if len(buffer) != size:
            raise MessageError(f"array {entry['name']!r}: frame has {len(buffer)} bytes, shape {entry['shape']} {entry['dtype']} needs {size}")
        arrays[entry["name"]] = _view(buffer, entry)
    return _message(header, arrays)


def from_frames(frames: Sequence[Any], *, max_bytes: int = DEFAULT_MAX_BYTES, kinds: Collection[str] = KINDS) -> Message:
    """Frames in either framing -> Message; raises MessageError (only) on anything malformed.

    One frame whose byte 3 is zero is packed (its length prefix is below 2**24); a multipart
    header frame is JSON text, which never holds a zero byte.
    """
    if isinstance(frames, (list, tuple)) and len(frames) == 1:
        view = _buffer(frames[0], 0)
        if len(view) >= _LENGTH.size and view[3] == 0:
            return unpack(view, max_bytes=max_bytes, kinds=kinds)
    return decode(frames, max_bytes=max_bytes, kinds=kinds)


def unpack(buffer: Any, *, max_bytes: int = DEFAULT_MAX_BYTES, kinds: Collection[str] = KINDS) -> Message:
    """One packed buffer -> Message; raises MessageError (only) on anything malformed.

    The returned arrays are read-only views of ``buffer`` (no copy).
    """
    view = _buffer(buffer, 0)
    if len(view) > max_bytes:
        raise MessageError(f"message is {len(view)} bytes, more than max_bytes={max_bytes}")
    if len(view) < _LENGTH.size:
        raise MessageError(f"packed message is {len(view)} bytes, shorter than its {_LENGTH.size}-byte length prefix")
    (header_len,) = _LENGTH.unpack(view[:_LENGTH.size])
    if header_len > min(MAX_HEADER_BYTES, len(view) - _LENGTH.size):
        raise MessageError(f"packed header length {header_len} exceeds the limit ({MAX_HEADER_BYTES}) or the buffer ({len(view)} bytes)")
    text, header = _parse_header(view[_LENGTH.size:_LENGTH.size + header_len])
    layout = _check_header(header, text, header_len, kinds, max_bytes, packed=True)
    data_start = align(_LENGTH.size + header_len)
    if len(view) != data_start + layout.data_len:
        raise MessageError(f"packed message is {len(view)} bytes, its header describes {data_start + layout.data_len}")
    arrays = {}
    for entry, size in zip(layout.entries, layout.sizes):
        arrays[entry["name"]] = _view(view, entry, data_start + entry["offset"])
    return _message(header, arrays)

