"""A header's ``arrays`` list: each entry's checks (name, dtype, shape, offset) and a cache of
the layouts already validated, so most messages skip the per-entry checks."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from robot_rl.transport.limits import DTYPES, ITEMSIZE, MAX_NAME_CHARS, MAX_NDIM, MessageError, align

ARRAY_KEYS = frozenset({"name", "dtype", "shape"})
PACKED_ARRAY_KEYS = ARRAY_KEYS | {"offset"}


def bad_shape(name: str, shape: Any) -> MessageError:
    """The error for an entry whose shape is not a short list of non-negative integers."""
    return MessageError(f"array {name!r}: shape must be a list of at most {MAX_NDIM} non-negative integers, got {str(shape)[:80]}")


def check_entry(entry: Any, index: int, packed: bool, max_bytes: int) -> int:
    """One array entry's fields; returns its byte length."""
    keys = PACKED_ARRAY_KEYS if packed else ARRAY_KEYS
    if type(entry) is not dict or entry.keys() != keys:
        raise MessageError(f"array entry {index} must be an object with exactly the fields {sorted(keys)}")
    name, dtype, shape = entry["name"], entry["dtype"], entry["shape"]
    if type(name) is not str or not 1 <= len(name) <= MAX_NAME_CHARS:
        raise MessageError(f"array entry {index}: name must be 1-{MAX_NAME_CHARS} characters")
    itemsize = ITEMSIZE.get(dtype) if type(dtype) is str else None
    if itemsize is None:
        raise MessageError(f"array {name!r}: dtype {str(dtype)[:40]!r} is not allowed (allowed: {', '.join(DTYPES)})")
    if type(shape) is not list or len(shape) > MAX_NDIM:
        raise bad_shape(name, shape)
    for dim in shape:
        if type(dim) is not int or dim < 0:
            raise bad_shape(name, shape)
    elements = math.prod(shape)
    if (math.prod([dim for dim in shape if dim]) if elements == 0 else elements) > max_bytes:
        raise MessageError(f"array {name!r}: shape {shape} is larger than max_bytes={max_bytes}")
    if packed and (type(entry["offset"]) is not int or entry["offset"] < 0):
        raise MessageError(f"array {name!r}: offset must be a non-negative integer")
    return elements * itemsize


@dataclasses.dataclass(frozen=True)
class Layout:
    """A validated ``arrays`` list: its entries, each array's byte length, their sum and (packed)
    the data section's length."""

    entries: list
    sizes: list[int]
    total: int
    data_len: int


LAYOUTS: dict[tuple[bool, int, str], Layout] = {}
"""Validated layouts by (packed, max_bytes, header text from its last ``"arrays":[``): a sender
repeats a handful of layouts, so most messages skip the per-entry checks. A hit also needs the
parsed entries to equal the cached ones (a duplicate or nested key cannot smuggle others in),
and the cached, strictly typed entries are used from then on."""
MAX_LAYOUTS = 256


def check_layout(entries: list, packed: bool, max_bytes: int) -> Layout:
    """Every entry, unique names, and (packed) the 8-byte aligned offsets in order."""
    sizes = [check_entry(entry, index, packed, max_bytes) for index, entry in enumerate(entries)]
    if len({entry["name"] for entry in entries}) != len(entries):
        seen = set()
        for entry in entries:
            if entry["name"] in seen:
                raise MessageError(f"array name {entry['name']!r} appears twice")
            seen.add(entry["name"])
    data_len = 0
    if packed:
        for entry, size in zip(entries, sizes):
            if entry["offset"] != data_len:
                raise MessageError(f"array {entry['name']!r}: offset {entry['offset']}, expected {data_len} (8-byte aligned, in order)")
            data_len = align(data_len + size)
    return Layout(entries, sizes, sum(sizes), data_len)


def layout_of(header: dict, text: str, packed: bool, max_bytes: int) -> Layout:
    """The validated layout of a parsed header's ``arrays`` (``text``: the header's JSON text);
    MessageError if an entry is wrong."""
    at = text.rfind('"arrays":[')
    key = (packed, max_bytes, text[at:])
    cached = LAYOUTS.get(key) if at >= 0 else None
    if cached is not None and cached.entries == header["arrays"]:
        return cached
    layout = check_layout(header["arrays"], packed, max_bytes)
    if at >= 0:
        if len(LAYOUTS) >= MAX_LAYOUTS:
            LAYOUTS.clear()
        LAYOUTS[key] = layout
    return layout
