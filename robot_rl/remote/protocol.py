"""The robot server's messages: a client's ``robot_call`` and the server's ``robot_reply``, both
:mod:`robot_rl.transport.wire` messages (schema-versioned JSON header + raw numpy arrays, never
pickle), on a DEALER (client) -> ROUTER (server) connection.

``robot_call``: ``actor`` = the client's id, ``seq`` = its request number, meta
``{"op": one of OPS, "args": {name: JSON scalar}, "objects": {prefix: codec entry}}``, arrays of
those objects (:mod:`robot_rl.remote.codec`) plus, for ``reset``, ``joint_pos_rad``.
``robot_reply``: ``actor`` = :data:`SERVER_ID`, the same ``seq``, meta ``{"ok": bool, "error":
null or {"type", "message", "bad_request"}, "objects": {...}}``; ``render`` answers with the array
``frame``.

=============  ==========================================  =====================================
op             call carries                                reply carries
=============  ==========================================  =====================================
spec           --                                          object ``spec``
connect        args ``family``, ``task``                   -- (the caller now holds the robot)
read_state     --                                          object ``state``
command        object ``command``                          object ``command`` (what was sent)
sync           args ``period_s``                           --
stop           --                                          --
reset          array ``joint_pos_rad``?, object target?    object ``state``
render         args ``camera``, ``height``, ``width``      array ``frame`` (uint8 H x W x 3)
ping           --                                          -- (keeps the session alive)
close          --                                          -- (the robot is free again)
=============  ==========================================  =====================================
"""

from __future__ import annotations

from typing import Any, Collection, Mapping

import numpy as np

from robot_rl.remote.codec import decode_object, encode_object
from robot_rl.transport import wire
from robot_rl.transport.wire import MessageError

CALL, REPLY = "robot_call", "robot_reply"
OPS = frozenset({"spec", "connect", "read_state", "command", "sync", "stop", "reset", "render", "ping", "close"})
SERVER_ID = "robot-server"
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5570"
"""Where ``serve-robot`` listens unless told (``--bind``); remote clients need ``--bind-remote`` + keys."""
DEFAULT_MAX_MESSAGE_BYTES = 16 * 2**20
"""Largest call or reply (a 1080p camera frame is ~6 MB)."""
MAX_ARGS = 16


class RemoteRobotError(RuntimeError):
    """The robot server did not answer in time, refused us, or could not do what was asked; the
    text says which, and what to check."""


class RemoteRequestError(RemoteRobotError, ValueError):
    """The server (or its backend) refused a request as invalid: nothing was done."""


class RobotBusyError(RemoteRobotError):
    """Another client holds the robot (one client at a time)."""


class RemoteBackendError(RemoteRobotError):
    """The robot's backend raised; ``error_type`` names its exception (``Fr3SafetyStop``...)."""

    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _objects_and_arrays(objects: Mapping[str, Any]) -> tuple[dict, dict[str, np.ndarray]]:
    entries, arrays = {}, {}
    for prefix, obj in objects.items():
        entries[prefix], more = encode_object(obj, prefix)
        arrays.update(more)
    return entries, arrays


def call(client: str, seq: int, op: str, args: Mapping[str, Any] | None = None, objects: Mapping[str, Any] | None = None,
         arrays: Mapping[str, np.ndarray] | None = None) -> wire.Message:
    """A ``robot_call`` message."""
    entries, all_arrays = _objects_and_arrays(objects or {})
    all_arrays.update(arrays or {})
    return wire.Message(CALL, client, seq, {"op": op, "args": dict(args or {}), "objects": entries}, all_arrays)


def reply(seq: int, objects: Mapping[str, Any] | None = None, arrays: Mapping[str, np.ndarray] | None = None) -> wire.Message:
    """A successful ``robot_reply``."""
    entries, all_arrays = _objects_and_arrays(objects or {})
    all_arrays.update(arrays or {})
    return wire.Message(REPLY, SERVER_ID, seq, {"ok": True, "error": None, "objects": entries}, all_arrays)


def error_reply(seq: int, error_type: str, message: str, bad_request: bool) -> wire.Message:
    """A ``robot_reply`` saying why the call was not done."""
    error = {"type": error_type[:128], "message": message[:4000], "bad_request": bool(bad_request)}
    return wire.Message(REPLY, SERVER_ID, seq, {"ok": False, "error": error, "objects": {}}, {})


def parse_call(message: wire.Message) -> tuple[str, dict]:
    """(op, args) of a decoded ``robot_call``; MessageError if its meta is malformed."""
    meta = message.meta
    if message.kind != CALL or meta.keys() != {"op", "args", "objects"}:
        raise MessageError(f"a {CALL} message has the meta fields ['args', 'objects', 'op'], got {sorted(meta)[:8]}")
    if meta["op"] not in OPS:
        raise MessageError(f"unknown operation {str(meta['op'])[:40]!r} (known: {', '.join(sorted(OPS))})")
    args = meta["args"]
    if not isinstance(args, dict) or len(args) > MAX_ARGS or any(isinstance(v, (dict, list)) for v in args.values()):
        raise MessageError(f"args must map at most {MAX_ARGS} names to JSON scalars")
    if not isinstance(meta["objects"], dict):
        raise MessageError("objects must be a JSON object")
    return meta["op"], args


def objects_of(message: wire.Message, expected: Mapping[str, Mapping[str, type]], extra_arrays: Collection[str] = ()) -> dict:
    """The objects of a call or reply, each prefix decoded as one of ``expected[prefix]`` (types by
    name); an object under another prefix, or an array nobody claims, is a MessageError."""
    entries = message.meta["objects"]
    unknown = set(entries) - set(expected)
    if unknown:
        raise MessageError(f"unexpected objects {sorted(unknown)[:5]} (expected at most {sorted(expected)})")
    used: set[str] = set(extra_arrays) & set(message.arrays)
    out = {prefix: decode_object(entries[prefix], message.arrays, prefix, expected[prefix], used) for prefix in entries}
    stray = set(message.arrays) - used
    if stray:
        raise MessageError(f"arrays {sorted(stray)[:5]} belong to no object of this message")
    return out


def raise_reply_error(meta: Mapping[str, Any], where: str) -> None:
    """Raise the error a failed reply reports (the reply's meta was checked by :func:`check_reply`)."""
    error = meta["error"]
    message = f"{where}: {error['message']}"
    if error["type"] == "RobotBusy":
        raise RobotBusyError(message)
    if error["bad_request"]:
        raise RemoteRequestError(message)
    raise RemoteBackendError(f"{message} ({error['type']} on the robot server)", error["type"])


def check_reply(message: wire.Message) -> None:
    """MessageError unless ``message`` is a well-formed ``robot_reply``."""
    meta = message.meta
    if message.kind != REPLY or meta.keys() != {"ok", "error", "objects"} or not isinstance(meta["ok"], bool):
        raise MessageError(f"a {REPLY} message has the meta fields ['error', 'objects', 'ok'], got {sorted(meta)[:8]}")
    error = meta["error"]
    if not meta["ok"] and (not isinstance(error, dict) or error.keys() != {"type", "message", "bad_request"}
                           or not all(isinstance(error[k], str) for k in ("type", "message"))):
        raise MessageError("a failed reply's error is {type, message, bad_request}")
    if not isinstance(meta["objects"], dict):
        raise MessageError("objects must be a JSON object")
