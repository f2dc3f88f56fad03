"""The robot-side server (``robot-rl serve-robot``): one backend, one client at a time, over ZeroMQ.

The server owns a backend (any registered one whose family :mod:`robot_rl.remote.codec` knows:
arm, car, quadrotor; the arm is tested end to end, over the sim arm and over the FR3 backend against
franka-sim) and answers ``robot_call`` messages (:mod:`robot_rl.remote.protocol`) on a ROUTER
socket: CURVE-encrypted, clients authenticated by the ``authorized_actors/`` keys of ``--keys``
(:mod:`robot_rl.transport.auth`), every message size-bounded and strictly decoded.

Sessions: ``connect`` gives the robot to the calling connection, bound to its CURVE key and
client id; any other connection is refused (``RobotBusy``) while the holder is alive. A holder
silent for ``client_timeout_s`` (no call: its process died, hung or lost the network) gets the
robot stopped (``backend.stop()``, on top of the backend's own command watchdog), and the next
client that connects takes the robot over. ``close`` ends the session and closes the backend.

Every request is checked before the backend sees it (command types, shapes, finite values within
+-1e3, unit quaternions, ``sync`` periods); a bad one gets an error reply and changes nothing.
A backend exception becomes an error reply naming its type; the server keeps serving.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from typing import Any, Callable

import numpy as np
import zmq

from robot_rl.backends.base import render_camera_names
from robot_rl.remote import protocol
from robot_rl.remote.codec import command_problem, family_types
from robot_rl.transport import check_bind_address, wire
from robot_rl.transport.auth import make_server_socket, peer_key, start_authenticator

log = logging.getLogger(__name__)
POLL_MS = 20
MAX_SYNC_PERIOD_S = 10.0


@dataclasses.dataclass
class Session:
    """The client that holds the robot: its connection, CURVE key (Z85, "" without keys) and id."""

    routing_id: bytes
    key: str
    client: str
    started_s: float
    last_call_s: float
    stopped: bool = False
    calls: int = 0


class BadRequest(ValueError):
    """A request the server refuses before the backend sees it."""


class RobotServer:
    """Serves ``backend`` (unconnected; the first client's ``connect`` connects it) at ``bind``.

    Args:
        backend: any backend of ``family``.
        family: the backend's family.
        task: the task whose scene the backend was built for (None: any); clients naming another
            task are refused.
        bind: the ROUTER endpoint; anything but loopback needs ``bind_remote`` and ``keys``.
        keys: a keys directory from ``robot-rl keys`` (its ``learner`` pair is this server's pair,
            ``authorized_actors/`` the clients it accepts); None: no encryption (loopback only).
        client_timeout_s: a session holder silent this long gets the robot stopped, and loses it
            to the next client that connects.
        max_message_bytes: largest call accepted (larger frames drop the connection).
        clock: monotonic seconds.
    """

    def __init__(self, backend: Any, family: str, task: str | None = None, bind: str = protocol.DEFAULT_ENDPOINT,
                 bind_remote: bool = False, keys: Any = None, client_timeout_s: float = 0.5,
                 max_message_bytes: int = protocol.DEFAULT_MAX_MESSAGE_BYTES, log_every_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        check_bind_address(bind, allow_remote=bind_remote)
        if bind_remote and keys is None:
            raise ValueError("--bind-remote needs --keys DIR (CURVE keys from `robot-rl keys`): never serve a robot "
                             "to other machines unauthenticated")
        if not (0.05 <= client_timeout_s <= 60.0):
            raise ValueError(f"client_timeout_s must be in [0.05, 60], got {client_timeout_s}")
        self.backend, self.family, self.task, self.bind, self.keys = backend, family, task, bind, keys
        self.types = family_types(family)
        self.client_timeout_s, self.max_message_bytes, self.log_every_s = client_timeout_s, max_message_bytes, log_every_s
        self._clock = clock
        self.session: Session | None = None
        self._owners: dict[str, str] = {}  # client id -> the CURVE key that first used it
        self._window_start, self._window_calls, self._window_commands = clock(), 0, 0
        self.endpoint: str | None = None  # the bound address (a "*" port resolved)

    # ------------------------------------------------------------------ the loop
    def serve(self, should_stop: Callable[[], bool] = lambda: False, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve until ``should_stop()`` (checked every 20 ms) or KeyboardInterrupt; then stop the
        robot and close the backend."""
        with contextlib.ExitStack() as stack:
            router = self._open(stack)
            stack.callback(self._shutdown)
            log.info("serving the %s backend %s at %s (%s); one client at a time", self.family, type(self.backend).__name__,
                     self.endpoint, "CURVE keys from " + str(self.keys) if self.keys else "no keys: loopback only")
            if on_ready is not None:
                on_ready(self.endpoint)
            while not should_stop():
                if router.poll(POLL_MS, zmq.POLLIN):
                    self._answer(router, router.recv_multipart(copy=False))
                self._watch_session()
                self._log_rate()

    def _open(self, stack: contextlib.ExitStack) -> zmq.Socket:
        context = zmq.Context()
        stack.callback(context.term)
        if self.keys is not None:
            stack.callback(start_authenticator(context, self.keys).stop)
            router = make_server_socket(context, zmq.ROUTER, self.keys)
        else:
            router = context.socket(zmq.ROUTER)
        stack.callback(router.close, linger=200)
        router.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)  # a larger frame drops that connection
        router.setsockopt(zmq.RCVHWM, 64)
        router.setsockopt(zmq.SNDHWM, 64)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a reply to a vanished client raises instead of vanishing
        router.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a client that reconnects (same routing id) keeps its session
        try:
            router.bind(self.bind)
        except zmq.ZMQError as err:
            raise ValueError(f"cannot bind {self.bind}: {err} (another serve-robot running? choose another port)") from err
        self.endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        return router

    def _shutdown(self) -> None:
        if self.backend.connected:
            with contextlib.suppress(Exception):
                self.backend.stop()
            self.backend.close()
        log.info("robot server stopped; the backend is closed")

    def _answer(self, router: zmq.Socket, frames: list) -> None:
        routing_id, body = frames[0].bytes, frames[1:]
        key = peer_key(body[0]) if body else ""
        try:
            message = wire.from_frames(body, max_bytes=self.max_message_bytes, kinds={protocol.CALL})
            op, args = protocol.parse_call(message)
        except wire.MessageError as err:
            log.warning("refused a malformed call from %s: %s", key or "a local client", err)
            self._send(router, routing_id, protocol.error_reply(0, "MessageError", str(err), bad_request=True))
            return
        self._window_calls += 1
        answer = self._reply(op, args, message, routing_id, key)
        if self.session is not None and self.session.routing_id == routing_id:
            self.session.last_call_s = self._clock()  # a long call (a reset) is not a silence
        self._send(router, routing_id, answer)

    def _send(self, router: zmq.Socket, routing_id: bytes, message: wire.Message) -> None:
        try:
            router.send_multipart([routing_id, *wire.to_frames(message, max_bytes=self.max_message_bytes)], copy=False)
        except zmq.ZMQError as err:  # the client is gone (ROUTER_MANDATORY) or its queue is full
            log.info("could not answer a client (%s); it is gone", err)

    # ------------------------------------------------------------------ requests
    def _reply(self, op: str, args: dict, message: wire.Message, routing_id: bytes, key: str) -> wire.Message:
        seq = message.seq
        try:
            refusal = self._admit(op, message.actor, routing_id, key)
            if refusal is not None:
                return protocol.error_reply(seq, "RobotBusy", refusal, bad_request=False)
            if op != "spec":
                self._touch()
            return self._dispatch(op, args, message)
        except (wire.MessageError, BadRequest) as err:
            log.warning("refused %s from %r: %s", op, message.actor, err)
            return protocol.error_reply(seq, type(err).__name__, str(err), bad_request=True)
        except ValueError as err:  # the backend refused the input
            return protocol.error_reply(seq, type(err).__name__, str(err), bad_request=True)
        except Exception as err:  # the backend failed: report it, keep serving
            log.warning("%s from %r failed: %s: %s", op, message.actor, type(err).__name__, err)
            return protocol.error_reply(seq, type(err).__name__, str(err), bad_request=False)

    def _admit(self, op: str, client: str, routing_id: bytes, key: str) -> str | None:
        """Admit this call, giving the robot to the caller on a ``connect`` when it is free (or its
        holder silent); returns why not, or None."""
        owner = self._owners.get(client)
        if key and owner is not None and owner != key:
            return (f"client id {client!r} belongs to another CURVE key on this server; start this client with another "
                    "id (the remote backend's client_id)")
        session, now = self.session, self._clock()
        if op == "spec" or (session is not None and session.routing_id == routing_id and session.key == key):
            return None
        if op != "connect":
            return "this client does not hold the robot: call connect() first" + (
                "" if session is None else f" (client {session.client!r} holds it)")
        if session is not None and now - session.last_call_s < self.client_timeout_s:
            return (f"the robot is in use by client {session.client!r} (CURVE key {session.key or 'none'}) since "
                    f"{now - session.started_s:.1f} s; one client at a time")
        if session is not None:
            log.info("client %r silent for %.1f s: its session ends; handing the robot to %r", session.client,
                     now - session.last_call_s, client)
        if key:
            self._owners.setdefault(client, key)
        self.session = Session(routing_id, key, client, now, now)
        log.info("client %r connected (CURVE key %s)", client, key or "none")
        return None

    def _touch(self) -> None:
        session = self.session
        session.last_call_s, session.calls = self._clock(), session.calls + 1
        if session.stopped:
            log.info("client %r is back after a silence", session.client)
            session.stopped = False

    def _dispatch(self, op: str, args: dict, message: wire.Message) -> wire.Message:
        seq, backend = message.seq, self.backend
        if op not in ("command", "reset"):
            protocol.objects_of(message, {})  # nothing else carries objects or arrays
        if op in ("spec", "read_state"):
            return protocol.reply(seq, {"spec": backend.spec} if op == "spec" else {"state": backend.read_state()})
        if op == "command":
            self._window_commands += 1
            return protocol.reply(seq, {"command": backend.command(self._command(message))})
        if op == "reset":
            return protocol.reply(seq, {"state": self._reset(message)})
        if op == "render":
            return protocol.reply(seq, arrays={"frame": self._render(args)})
        if op == "sync":
            backend.sync(_period(args))
        elif op == "connect":
            self._connect(args)
        elif op == "stop":
            backend.stop()
        elif op == "close":
            self._close_session("closed by the client")
        return protocol.reply(seq)

    def _command(self, message: wire.Message) -> Any:
        command = protocol.objects_of(message, {"command": self.types.commands}).get("command")
        if command is None:
            raise BadRequest("a command call carries the object 'command'")
        problem = command_problem(command)
        if problem:
            raise BadRequest(problem)
        return command

    def _reset(self, message: wire.Message) -> Any:
        objects = protocol.objects_of(message, {"target": self.types.commands}, extra_arrays=("joint_pos_rad",))
        target = objects.get("target")
        if target is not None and command_problem(target):
            raise BadRequest(command_problem(target))
        q = message.arrays.get("joint_pos_rad")
        if q is None:  # the arm's ready pose (the contract's reset takes joint positions)
            q = getattr(self.backend.spec, "home_joint_pos_rad", None)
        else:
            dof = getattr(self.backend.spec, "dof", None)
            if q.dtype.kind != "f" or q.shape != (dof,) or not np.all(np.isfinite(q)):
                raise BadRequest(f"joint_pos_rad must be {dof} finite floats, got {q.dtype} {q.shape}")
            q = np.array(q, dtype=np.float64)
        return self.backend.reset(q, target)

    def _render(self, args: dict) -> np.ndarray:
        camera, height, width = args.get("camera"), args.get("height"), args.get("width")
        if not isinstance(camera, str) or not all(v is None or (type(v) is int and 0 < v <= 4096) for v in (height, width)):
            raise BadRequest("render takes camera (a name), height and width (None or 1-4096 pixels)")
        cameras = render_camera_names(self.backend.spec)
        if camera not in cameras:
            raise BadRequest(f"no camera {camera[:64]!r} here; this backend renders {list(cameras)}")
        return np.ascontiguousarray(self.backend.render(camera, height, width), dtype=np.uint8)

    def _connect(self, args: dict) -> None:
        family, task = args.get("family"), args.get("task")
        if family != self.family:
            self.session = None
            raise BadRequest(f"this server serves a {self.family} backend; the client drives the {family!r} family")
        if self.task is not None and task is not None and task != self.task:
            self.session = None
            raise BadRequest(f"this server's backend was built for task {self.task!r}; the client runs {task!r}")
        if not self.backend.connected:
            try:
                self.backend.connect()
            except BaseException:
                self.session = None  # the robot is free for the next try
                raise

    def _close_session(self, why: str) -> None:
        session, self.session = self.session, None
        if session is not None:
            log.info("client %r gone (%s) after %d calls in %.1f s", session.client, why, session.calls,
                     self._clock() - session.started_s)
        if self.backend.connected:
            with contextlib.suppress(Exception):
                self.backend.stop()
            self.backend.close()

    # ------------------------------------------------------------------ supervision
    def _watch_session(self) -> None:
        """Stop the robot once the holder has been silent for ``client_timeout_s``."""
        session = self.session
        if session is None or session.stopped:
            return
        silent_s = self._clock() - session.last_call_s
        if silent_s < self.client_timeout_s:
            return
        session.stopped = True
        log.warning("client %r silent for %.2f s: robot stopped; the next client to connect takes it over",
                    session.client, silent_s)
        if self.backend.connected:
            try:
                self.backend.stop()
            except Exception as err:  # the backend is in trouble on its own: say so, keep serving
                log.warning("stopping the robot failed: %s: %s", type(err).__name__, err)

    def _log_rate(self) -> None:
        now = self._clock()
        elapsed = now - self._window_start
        if elapsed < self.log_every_s:
            return
        if self._window_calls:
            holder = self.session.client if self.session is not None else "nobody"
            log.info("%.1f calls/s, %.1f commands/s over the last %.0f s; robot held by %s", self._window_calls / elapsed,
                     self._window_commands / elapsed, elapsed, holder)
        self._window_start, self._window_calls, self._window_commands = now, 0, 0


def _period(args: dict) -> float:
    period = args.get("period_s")
    if type(period) not in (int, float) or not (0.0 < period <= MAX_SYNC_PERIOD_S) or not math.isfinite(period):
        raise BadRequest(f"sync period_s must be a number in (0, {MAX_SYNC_PERIOD_S:g}] s, got {str(period)[:40]}")
    return float(period)
