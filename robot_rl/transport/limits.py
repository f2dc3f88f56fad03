"""The wire schema's version, kinds, dtypes and size limits, and its errors
(:mod:`robot_rl.transport.wire` re-exports all of them)."""

from __future__ import annotations

import numpy as np

SCHEMA_VERSION = 1
"""Bumped whenever the header layout or a kind's meaning changes; peers must match exactly."""

KINDS = frozenset({"hello", "welcome", "reject", "transitions", "ack", "weights", "stats", "heartbeat",
                   "robot_call", "robot_reply"})
"""Every message kind of this schema version (see :mod:`robot_rl.transport.messages`; the robot
server's ``robot_call``/``robot_reply``: :mod:`robot_rl.remote.protocol`)."""

DTYPES = {name: np.dtype(name).newbyteorder("<") for name in (
    "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")}
"""Allowed array dtypes (name on the wire -> little-endian numpy dtype). Never ``object``."""

MAX_HEADER_BYTES = 64 * 1024
"""Largest header JSON, in bytes (checked before parsing)."""
MAX_ARRAYS = 1024
"""Most arrays in one message."""
MAX_NDIM = 8
"""Most dimensions of one array."""
MAX_NAME_CHARS = 128
"""Longest array name, in characters."""
MAX_ACTOR_CHARS = 64
"""Longest actor id, in characters."""
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""Default limit on one whole message (header + arrays), in bytes."""
PACK_BELOW_BYTES = 64 * 1024
""":func:`robot_rl.transport.wire.to_frames` packs messages whose arrays hold fewer bytes than this (per-frame costs
dominate small messages; large ones go multipart, without a copy)."""

ITEMSIZE = {name: dtype.itemsize for name, dtype in DTYPES.items()}
"""Bytes per element of each wire dtype."""
ALIGN = 8
"""Packed arrays start at offsets that are multiples of this."""


def align(offset: int) -> int:
    """``offset`` rounded up to a multiple of :data:`ALIGN`."""
    return -(-offset // ALIGN) * ALIGN


class MessageError(ValueError):
    """A message is malformed or breaks a limit; the text says what is wrong."""


class SchemaVersionError(MessageError):
    """The peer speaks another schema version; the text names both versions."""
