"""The ``remote`` backend: a robot served by ``robot-rl serve-robot`` on another machine, behind
the same family contract as a local backend (arm: :class:`~robot_rl.backends.arm.ArmBackend`).

Every call is one request/reply over a DEALER socket with a deadline (``timeout_s``; ``sync``
adds its period, ``connect``/``reset`` have their own); a server that is gone, slow or refusing
our CURVE key raises :class:`~robot_rl.remote.protocol.RemoteRobotError` within that deadline, a
request the server refuses as invalid raises :class:`~robot_rl.remote.protocol.RemoteRequestError`
(a ValueError), and an exception of the robot's backend raises
:class:`~robot_rl.remote.protocol.RemoteBackendError` naming its type. A late reply to an earlier,
timed-out call is recognized by its ``seq`` and dropped. Safety stays on the robot: the backend's
own limits and watchdog, and the server stops the robot when this client goes silent.

``spec`` asks the server (no session needed) and is cached; ``connect()`` takes the robot (one
client at a time); ``close()`` gives it back. Not forwarded: simulator scene control
(``set_object_pose``...), so a task whose reset places objects runs only on a real robot or with
a scene it does not need to place.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from typing import Any

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from robot_rl.backends.base import ConnectOnEnter
from robot_rl.remote import protocol
from robot_rl.remote.codec import family_types
from robot_rl.remote.protocol import RemoteRobotError
from robot_rl.rig import check_fields, read_rig_table
from robot_rl.transport import wire
from robot_rl.transport.auth import DEFAULT_ACTOR, secure_client

HANDSHAKE_FAILED = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL


@dataclasses.dataclass(frozen=True)
class RemoteConfig:
    """Where the robot server is and how to talk to it (a rig file's ``[remote]`` table, or options).

    Attributes:
        server: the server's endpoint, e.g. ``tcp://192.168.1.20:5570``.
        keys: the keys directory holding ``learner.key`` (the server's public key) and this client's
            ``<key_name>.key_secret`` (``robot-rl keys``); None: no encryption (the server must run
            without keys, on loopback).
        key_name: the client key pair's name.
        client_id: how the server names this client (default: ``<hostname>-<pid>``).
        timeout_s: deadline of one call (read_state, command, stop...); ``sync`` adds its period.
        connect_timeout_s: deadline of ``connect()`` (the server connects its robot then).
        reset_timeout_s: deadline of ``reset()`` (a joint motion on a real arm takes seconds).
        max_message_bytes: largest reply accepted (camera frames included).
        rig: the rig file these settings came from.
    """

    server: str = protocol.DEFAULT_ENDPOINT
    keys: str | None = None
    key_name: str = DEFAULT_ACTOR
    client_id: str | None = None
    timeout_s: float = 1.0
    connect_timeout_s: float = 30.0
    reset_timeout_s: float = 60.0
    max_message_bytes: int = protocol.DEFAULT_MAX_MESSAGE_BYTES
    rig: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.server, str) or "://" not in self.server:
            raise ValueError(f"RemoteConfig.server must be an endpoint like tcp://192.168.1.20:5570, got {self.server!r}")
        for name in ("timeout_s", "connect_timeout_s", "reset_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.01 <= value <= 600.0):
                raise ValueError(f"RemoteConfig.{name} must be in [0.01, 600] s, got {value!r}")


def load_remote_rig(path: str | os.PathLike, **overrides: Any) -> RemoteConfig:
    """The ``[remote]`` table of a rig file; ``overrides`` win over it. Unknown fields are named."""
    table = read_rig_table(path, "remote", missing_ok=True)
    check_fields(table, {f.name for f in dataclasses.fields(RemoteConfig)} - {"rig"}, path, "remote")
    return RemoteConfig(**{**table, **overrides, "rig": str(path)})


class RemoteBackend(ConnectOnEnter):
    """A backend of ``family`` served by ``robot-rl serve-robot`` (see the module docstring).

    Args:
        config: the server's address, keys and deadlines.
        family: the robot family (``"arm"``...); its dataclasses must be in
            :data:`robot_rl.remote.codec.FAMILY_TYPES`.
        task: the task this client runs (the server refuses another task than it was built for).
    """

    def __init__(self, config: RemoteConfig, family: str = "arm", task: str | None = None) -> None:
        self.config, self.family, self.task = config, family, task
        self.types = family_types(family)
        self.client_id = config.client_id or f"{os.uname().nodename[:40]}-{os.getpid()}-{secrets.token_hex(2)}"
        self._context: zmq.Context | None = None
        self._socket: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._spec: Any = None
        self._connected = False
        self._seq = 0
        self._routing_id = b"r" + secrets.token_bytes(15)  # a routing id may not start with a zero byte
        self.last_round_trip_s = float("nan")

    # ------------------------------------------------------------------ the contract
    @property
    def spec(self) -> Any:
        if self._spec is None:
            reply = self._call("spec")
            self._spec = protocol.objects_of(reply, {"spec": {self.types.spec.__name__: self.types.spec}})["spec"]
        return self._spec

    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        if self._connected:
            return
        self._call("connect", {"family": self.family, "task": self.task}, timeout_s=self.config.connect_timeout_s)
        self._connected = True

    def close(self) -> None:
        """Give the robot back (the server stops and closes it) and close the socket; always safe."""
        try:
            if self._connected:
                self._call("close", timeout_s=self.config.timeout_s)
        except RemoteRobotError:
            pass  # the server is gone: it stops the robot on its own
        finally:
            self._connected = False
            self._close_socket()

    def read_state(self) -> Any:
        return self._state(self._call("read_state"))

    def command(self, command: Any) -> Any:
        if type(command).__name__ not in self.types.commands:
            raise TypeError(f"a {self.family} backend takes {sorted(self.types.commands)}, got {type(command).__name__}")
        _check_finite(command)
        reply = self._call("command", objects={"command": command})
        return protocol.objects_of(reply, {"command": self.types.commands})["command"]

    def sync(self, period_s: float) -> None:
        self._call("sync", {"period_s": float(period_s)}, timeout_s=float(period_s) + self.config.timeout_s)

    def stop(self) -> None:
        self._call("stop")

    def reset(self, joint_pos_rad: np.ndarray | None = None, target: Any = None) -> Any:
        arrays = {} if joint_pos_rad is None else {"joint_pos_rad": np.asarray(joint_pos_rad, dtype=np.float64)}
        objects = {} if target is None else {"target": target}
        return self._state(self._call("reset", objects=objects, arrays=arrays, timeout_s=self.config.reset_timeout_s))

    def render(self, camera: str, height: int | None = None, width: int | None = None) -> np.ndarray:
        reply = self._call("render", {"camera": camera, "height": height, "width": width})
        frame = reply.arrays.get("frame")
        if frame is None or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise RemoteRobotError(f"render({camera!r}): the server sent no uint8 (H, W, 3) frame")
        return np.array(frame)

    def ping(self) -> float:
        """One round trip with nothing to do; returns its seconds (keeps the session alive)."""
        self._call("ping")
        return self.last_round_trip_s

    # ------------------------------------------------------------------ the wire
    def _state(self, reply: wire.Message) -> Any:
        return protocol.objects_of(reply, {"state": {self.types.state.__name__: self.types.state}})["state"]

    def _open_socket(self) -> zmq.Socket:
        if self._socket is None:
            self._context = zmq.Context()
            socket = self._context.socket(zmq.DEALER)
            socket.linger = 0
            socket.setsockopt(zmq.ROUTING_ID, self._routing_id)  # kept across reconnects: the server keeps our session
            socket.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes)
            if self.config.keys is not None:
                secure_client(socket, self.config.keys, self.config.key_name)
            self._monitor = socket.get_monitor_socket(HANDSHAKE_FAILED)
            socket.connect(self.config.server)
            self._socket = socket
        return self._socket

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
            self._socket.close(linger=0)
            self._context.term()
        self._socket = self._monitor = self._context = None

    def _call(self, op: str, args: dict | None = None, objects: dict | None = None, arrays: dict | None = None,
              timeout_s: float | None = None) -> wire.Message:
        """Send one call and wait for its reply (deadline ``timeout_s``, default ``config.timeout_s``)."""
        socket, timeout_s = self._open_socket(), self.config.timeout_s if timeout_s is None else timeout_s
        self._seq += 1
        message = protocol.call(self.client_id, self._seq, op, args, objects, arrays)
        start = time.monotonic()
        try:
            socket.send_multipart(wire.to_frames(message, max_bytes=self.config.max_message_bytes), flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            raise RemoteRobotError(f"{op}: cannot send to the robot server at {self.config.server} (its queue is full: "
                                   "the server is gone or not answering)") from None
        reply = self._await(op, start + timeout_s, timeout_s)
        self.last_round_trip_s = time.monotonic() - start
        if not reply.meta["ok"]:
            protocol.raise_reply_error(reply.meta, f"{op} on the robot server at {self.config.server}")
        return reply

    def _await(self, op: str, deadline: float, timeout_s: float) -> wire.Message:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        while True:
            left_ms = (deadline - time.monotonic()) * 1e3
            ready = dict(poller.poll(max(1, int(left_ms)))) if left_ms > 0 else {}
            if self._monitor in ready:
                self._check_handshake(op)
            if self._socket in ready:
                reply = self._receive(op)
                if reply.seq == self._seq:
                    return reply  # an older seq is the late reply to a call that timed out: dropped
            elif not ready:
                raise RemoteRobotError(f"{op}: no reply from the robot server at {self.config.server} within {timeout_s:.2f} s: "
                                       "the server is gone, slow, or unreachable")

    def _receive(self, op: str) -> wire.Message:
        try:
            reply = wire.from_frames(self._socket.recv_multipart(copy=False), max_bytes=self.config.max_message_bytes,
                                     kinds={protocol.REPLY})
            protocol.check_reply(reply)
        except wire.MessageError as err:
            raise RemoteRobotError(f"{op}: the robot server at {self.config.server} sent a malformed reply: {err}") from err
        return reply

    def _check_handshake(self, op: str) -> None:
        """RemoteRobotError if the server refused our CURVE handshake (a wrong or unknown key, or
        keys on one side only)."""
        event = recv_monitor_message(self._monitor)
        if event["event"] & HANDSHAKE_FAILED:
            raise RemoteRobotError(
                f"{op}: the robot server at {self.config.server} refused our connection in the CURVE handshake "
                f"({'authentication failed' if event['event'] == zmq.EVENT_HANDSHAKE_FAILED_AUTH else 'protocol mismatch'}): "
                f"check --keys on both sides (keys={self.config.keys}), and that {self.config.key_name}.key is in the "
                "server's authorized_actors/")


def _check_finite(command: Any) -> None:
    """ValueError for a command with a NaN/inf number (the server would refuse it anyway)."""
    for field in dataclasses.fields(command):
        value = getattr(command, field.name)
        if value is not None and not isinstance(value, (str, bool)):
            if not np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
                raise ValueError(f"{type(command).__name__}.{field.name} is not finite: {value!r}")


def make_backend(task: Any, obs: str, rig: str | None = None, **options: Any) -> RemoteBackend:
    """Registry entry point: the ``remote`` backend of ``task``'s family (options are
    :class:`RemoteConfig` fields and win over the rig file's ``[remote]`` table)."""
    config = load_remote_rig(rig, **options) if rig is not None else RemoteConfig(**options)
    return RemoteBackend(config, family=getattr(task, "family", "arm"), task=getattr(task, "name", None))
