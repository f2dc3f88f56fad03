"""The learner's sockets: a ROUTER for actors and a PUB for weights, CURVE servers with keys."""

from __future__ import annotations

import contextlib
import dataclasses
import json

import zmq

from robot_rl.transport import check_bind_address
from robot_rl.transport.auth import make_server_socket, start_authenticator

HANDSHAKE_EVENTS = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
"""Reported by the ROUTER's monitor: clients without CURVE (or with another learner's key) fail here,
before the authenticator (which logs unknown keys itself) ever sees them."""
MONITOR_EVENTS = HANDSHAKE_EVENTS | zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED
"""...and connections opened and dropped (ZeroMQ drops one that sends a frame above MAXMSGSIZE)."""
BUFFERED_PER_ACTOR_BYTES = 256 * 2**20
"""Whole messages ZeroMQ may hold for one connection before it stops reading it (RCVHWM, in
messages of --max-message-mb, at least 4). A multipart message in progress is not bounded by
ZeroMQ: only each of its frames is (MAXMSGSIZE)."""


@dataclasses.dataclass
class Sockets:
    router: zmq.Socket
    pub: zmq.Socket
    monitor: zmq.Socket
    poller: zmq.Poller


def open_sockets(cfg, stack: contextlib.ExitStack) -> Sockets:
    """Bound ROUTER and PUB sockets (CURVE servers with ``cfg.keys``), closed with ``stack``."""
    for endpoint in (cfg.bind, cfg.weights_bind):
        check_bind_address(endpoint, allow_remote=cfg.bind_remote)
    if cfg.bind_remote and cfg.keys is None:
        raise ValueError("--bind-remote needs --keys DIR (CURVE keys from `robot-rl keys`): never serve remote actors unauthenticated")
    context = zmq.Context()
    stack.callback(context.term)
    if cfg.keys is not None:
        stack.callback(start_authenticator(context, cfg.keys).stop)
    make = (lambda kind: make_server_socket(context, kind, cfg.keys)) if cfg.keys is not None else context.socket
    router, pub = make(zmq.ROUTER), make(zmq.PUB)
    stack.callback(router.close, linger=1000)  # the last acks still go out
    stack.callback(pub.close, linger=0)
    router.setsockopt(zmq.MAXMSGSIZE, cfg.max_message_bytes)  # per frame: a larger one drops the connection
    router.setsockopt(zmq.RCVHWM, max(4, BUFFERED_PER_ACTOR_BYTES // cfg.max_message_bytes))  # then it stops reading that peer
    monitor = router.get_monitor_socket(MONITOR_EVENTS)
    stack.callback(monitor.close, linger=0)
    stack.callback(router.disable_monitor)
    for socket, endpoint in ((router, cfg.bind), (pub, cfg.weights_bind)):
        try:
            socket.bind(endpoint)
        except zmq.ZMQError as err:
            raise ValueError(f"cannot bind {endpoint}: {err} (another learner running? choose another port)") from err
    poller = zmq.Poller()
    for socket in (router, monitor):
        poller.register(socket, zmq.POLLIN)
    return Sockets(router, pub, monitor, poller)


def peek_actor(frames: list) -> str:
    """Best-effort actor id from a header we cannot decode (for the reject reply)."""
    try:
        raw = bytes(memoryview(frames[0]))
        packed = len(frames) == 1 and raw[3:4] == b"\0"  # see robot_rl.transport.wire: packed vs multipart
        header = json.loads(raw[4:4 + int.from_bytes(raw[:4], "little")] if packed else raw)
        actor = header.get("actor")
        return actor if isinstance(actor, str) and 0 < len(actor) <= 64 and actor.isprintable() else "unknown"
    except (ValueError, TypeError, AttributeError, IndexError):
        return "unknown"
