"""The learner's side of the ROUTER socket: every message from every actor connection, and the replies.

:meth:`Reception.poll` reads up to :data:`MAX_MESSAGES_PER_POLL` messages; chunks are written
without fsync, made durable together (:meth:`EpisodeStore.sync`), and only then do the replies
(welcome, ack, reject) go out. Bad input -- oversized, malformed, another schema version, a
message on a connection that said no hello or that speaks for an actor id owned by another CURVE
key (:mod:`robot_rl.distributed.identity`), values out of bounds, a resent seq with other
content -- costs one log line (throttled per sender) and, where the sender is a known actor, a
``reject`` saying why; it never stops the learner. The learner (the ``host``) trains on what is
stored: :meth:`host.feed`, :meth:`host.log_actor_stats`, ``host.version``, :meth:`host.republish_soon`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from robot_rl.distributed.common import Throttle, check_actor_id, give_back_memory
from robot_rl.distributed.identity import ActorKeys
from robot_rl.distributed.serving import Sockets, peek_actor
from robot_rl.distributed.store import EpisodeStore, Status
from robot_rl.transport import (Ack, Heartbeat, Hello, MessageError, Reject, SchemaVersionError, Stats, Transitions, Welcome,
                                compare_hello, messages)
from robot_rl.transport.auth import peer_key

log = logging.getLogger(__name__)
MAX_MESSAGES_PER_POLL = 64
SILENT_AFTER_S = 10.0
STRANGER_LINES = 16
REFUSED_HINT = ("the chunk stays in this actor's spool: fix what produced it (or, if the value is right, raise the learner's "
                "bound) and restart the actor, which resends it; or start the actor with a new --id to go on without it")


@dataclasses.dataclass
class Peer:
    """An actor that said hello on one connection (``key``: the CURVE key of that connection, "" without keys)."""

    actor: str
    key: str
    last_heard: float
    control_hz: float = math.nan
    stopped: bool = False

    def describe(self, now: float) -> str:
        ago = now - self.last_heard
        if self.stopped:
            return f"{self.actor} (stopped)"
        if ago > SILENT_AFTER_S:
            return f"{self.actor} (SILENT {ago:.0f} s)"
        hz = "" if math.isnan(self.control_hz) else f", {self.control_hz:.1f} Hz"
        return f"{self.actor} ({ago:.1f} s ago{hz})"


class Reception:
    """See the module docstring."""

    def __init__(self, cfg, sockets: Sockets, store: EpisodeStore, hello: Hello, actor_keys: ActorKeys, host) -> None:
        self.cfg, self.sockets, self.store, self.hello, self.actor_keys, self.host = cfg, sockets, store, hello, actor_keys, host
        self.throttle = Throttle(log)
        self.peers: dict[bytes, Peer] = {}
        self.replies: list[tuple[bytes, object]] = []  # sent by poll() after the store's sync
        self.connections: dict[int, bytes] = {}  # file descriptor -> routing id of its last message
        self.accepted: set[int] = set()  # file descriptors of open connections
        self.failed_handshakes = 0  # their disconnects are no news (the failure was logged)
        self.strangers: dict[str, tuple[float, set[bytes]]] = {}  # see key()

    # ------------------------------------------------------------------ the socket
    def poll(self, timeout_ms: int) -> None:
        events = dict(self.sockets.poller.poll(timeout_ms))
        if self.sockets.router in events:
            self.receive()
        if self.sockets.monitor in events:
            self.report_events()

    def receive(self) -> None:
        """Handle up to MAX_MESSAGES_PER_POLL messages, make their chunks durable, then reply."""
        oversized = False
        for _ in range(MAX_MESSAGES_PER_POLL):
            try:
                frames = self.sockets.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            oversized |= self.handle(frames[0].bytes, frames[1:])
            frames = None  # an oversized message's memory goes now
        if oversized:
            give_back_memory()
        self.send_replies()

    def send_replies(self) -> None:
        try:
            self.store.sync()
        except OSError as err:  # nothing unsynced is acknowledged: the actors keep those chunks and resend them
            self.throttle.warning("sync", f"cannot make the received chunks durable in {self.store.partial_dir}: {err}; "
                                          f"not answering {len(self.replies)} message(s) (the actors resend)")
            self.replies.clear()
            return
        for identity, message in self.replies:
            self.sockets.router.send_multipart([identity, *messages.encode(message)], zmq.NOBLOCK, copy=False)
        self.replies.clear()

    def reply(self, identity: bytes, message) -> None:
        """Queue a reply; it goes out once the chunks stored meanwhile are durable (an ack -- in a
        welcome, an ack or a heartbeat's answer -- never precedes its fsync)."""
        self.replies.append((identity, message))

    def key(self, kind: str, identity: bytes):
        """Throttle key: per connection for actors that said hello and for the first
        :data:`STRANGER_LINES` other connections per kind and throttle period; one per kind for the
        rest (a client opening thousands of connections gets a few lines, and the throttle stays small)."""
        if identity in self.peers:
            return kind, identity
        now = time.monotonic()
        start, named = self.strangers.get(kind, (now, set()))
        if now - start > self.throttle.period_s:
            start, named = now, set()
        self.strangers[kind] = (start, named)
        if identity in named or len(named) < STRANGER_LINES:
            named.add(identity)
            return kind, identity
        return kind

    def who(self, identity: bytes) -> str:
        peer = self.peers.get(identity)
        return f"actor {peer.actor!r}" if peer else f"connection {identity.decode(errors='replace')!r}"

    # ------------------------------------------------------------------ messages
    def handle(self, identity: bytes, frames: list) -> bool:
        """One message from one connection; bad input is logged, never raised. True if it was dropped
        for its size (its memory should go back to the system)."""
        self._note_connection(identity, frames)
        size, limit = sum(len(frame) for frame in frames), self.cfg.max_message_bytes
        if size > limit:
            self.throttle.warning(self.key("size", identity), f"dropped a message from {self.who(identity)}: it is {size} bytes in "
                                  f"{len(frames)} frames, more than --max-message-mb ({limit} bytes)")
            return True
        try:
            message = messages.decode(frames, max_bytes=limit)
        except SchemaVersionError as err:
            self.throttle.warning(self.key("version", identity), f"refusing {self.who(identity)}: {err}")
            self.reply(identity, Reject(peek_actor(frames), f"wire schema mismatch: {err}", (str(err),)))
            return False
        except MessageError as err:
            self.throttle.warning(self.key("bad", identity), f"ignoring a malformed message from {self.who(identity)}: {err}")
            return False
        key = peer_key(frames[0])
        if isinstance(message, Hello):
            self.on_hello(identity, key, message)
            return False
        peer = self.peers.get(identity)
        if peer is None or peer.actor != message.actor or peer.key != key:
            why = ("it said no hello on this connection yet" if peer is None else f"this connection is actor {peer.actor!r}"
                   if peer.actor != message.actor else "it comes with another CURVE key than this connection's hello")
            self.throttle.warning(self.key("unknown", identity), f"ignoring {type(message).__name__.lower()} from actor "
                                  f"{message.actor!r}: {why} (it says hello again after a few seconds of silence)")
            return False
        peer.last_heard = time.monotonic()
        self.dispatch(identity, peer, message)
        return False

    def _note_connection(self, identity: bytes, frames: list) -> None:
        try:
            self.connections[frames[0].get(zmq.SRCFD)] = identity
        except (zmq.ZMQError, IndexError, AttributeError):
            pass

    def dispatch(self, identity: bytes, peer: Peer, message) -> None:
        handlers = {Transitions: self.on_transitions, Heartbeat: self.on_heartbeat, Stats: self.on_stats}
        handler = handlers.get(type(message))
        if handler is None:
            self.throttle.warning(self.key("kind", identity), f"ignoring a {type(message).__name__.lower()} message from actor {peer.actor!r}")
            return
        try:
            handler(identity, peer, message)
        except ValueError as err:  # content our checks let through but the buffers refuse: not fatal
            self.throttle.warning(self.key("refused", identity), f"refusing a {type(message).__name__.lower()} message from actor {peer.actor!r}: {err}")

    def on_hello(self, identity: bytes, key: str, hello: Hello) -> None:
        try:
            check_actor_id(hello.actor)
            differences = compare_hello(self.hello, hello)
        except ValueError as err:
            differences = [str(err)]
        if differences:
            log.warning("rejected actor %r: %s", hello.actor, "; ".join(differences))
            self.reply(identity, Reject(hello.actor, f"actor {hello.actor!r} does not fit this learner", tuple(differences)))
            return
        refusal = self.actor_keys.refusal(hello.actor, key)
        if refusal is not None:
            self.throttle.warning(self.key("owner", identity), f"refusing a hello as actor {hello.actor!r} from {self.who(identity)} "
                                  f"(CURVE key {key[:10]}...): {refusal}")
            self.reply(identity, Reject(hello.actor, refusal))
            return
        try:
            self.actor_keys.claim(hello.actor, key)
        except OSError as err:
            self.throttle.warning("keys", f"cannot record actor {hello.actor!r}'s key in {self.actor_keys.path}: {err}; "
                                          "not answering its hello yet (it says hello again)")
            return
        self.welcome(identity, key, hello.actor)

    def welcome(self, identity: bytes, key: str, actor: str) -> None:
        for other, peer in list(self.peers.items()):
            if peer.actor == actor and other != identity:
                del self.peers[other]  # the same actor on a new connection (it restarted)
        known = identity in self.peers
        self.peers[identity] = Peer(actor, key, time.monotonic())
        stored = self.store.stored_seq(actor)
        self.reply(identity, Welcome(actor, stored, self.host.version))
        self.host.republish_soon()  # its SUB socket is connecting now
        log.info("actor %r %s; it resumes after seq %d", actor, "said hello again" if known else "connected", stored)

    def on_transitions(self, identity: bytes, peer: Peer, chunk: Transitions) -> None:
        try:
            outcome = self.store.accept(chunk, durable=False)
        except OSError as err:  # e.g. the disk is full: not acked, so the actor keeps it spooled and resends
            self.throttle.warning("store", f"cannot store chunk seq {chunk.seq} of actor {peer.actor!r} in {self.store.partial_dir}: "
                                           f"{err}; not acknowledged (the actor keeps it and resends)")
            return
        if outcome.status is Status.GAP:
            self.throttle.warning(("gap", peer.actor), f"actor {peer.actor!r}: {outcome.reason}; waiting for it to resend")
            return
        if outcome.status is Status.INVALID:
            self.throttle.warning(("invalid", peer.actor), f"refusing chunk seq {chunk.seq} of actor {peer.actor!r}: "
                                  f"{outcome.reason}; the actor is told so (and stops)")
            self.reply(identity, Reject(peer.actor, f"chunk seq {chunk.seq} refused: {outcome.reason}", (REFUSED_HINT,)))
            peer.stopped = True  # it stops on the reject: its disconnect is no news
            return
        if outcome.status is Status.STORED:
            self.host.feed(chunk)
        self.reply(identity, Ack(peer.actor, outcome.stored_seq))

    def on_heartbeat(self, identity: bytes, peer: Peer, beat: Heartbeat) -> None:
        if beat.status == "resync":
            self.on_resync(identity, peer, beat.counters.get("first_seq"))
            return
        self.reply(identity, Ack(peer.actor, self.store.stored_seq(peer.actor)))
        peer.stopped = beat.status == "stopped"
        if peer.stopped:
            path = self.store.close_stopped(peer.actor, beat.counters.get("last_seq", -2))
            log.info("actor %r stopped%s", peer.actor, f"; its last episode was kept as {path.name} (truncated)" if path else "")

    def on_resync(self, identity: bytes, peer: Peer, first_seq) -> None:
        """The actor's spool starts after what the store holds: the store lost chunks the actor saw acked."""
        if not isinstance(first_seq, int) or first_seq < 0:
            self.throttle.warning(self.key("resync", identity), f"ignoring a resync from actor {peer.actor!r} without a first_seq counter")
            return
        lost = self.store.resync(peer.actor, first_seq)
        if lost is not None:
            log.warning("actor %r resyncs: its spool starts at seq %d, but the store holds only up to seq %d: seqs %d..%d were lost "
                        "on the learner (a damaged or deleted store file, or a run directory restored from an older copy) and the "
                        "actor no longer holds them; continuing at seq %d", peer.actor, first_seq, lost[0] - 1, *lost, first_seq)
        self.welcome(identity, peer.key, peer.actor)

    def on_stats(self, identity: bytes, peer: Peer, stats: Stats) -> None:
        values = dict(stats.values)
        peer.control_hz = values.get("actor/control_hz", peer.control_hz)
        self.host.log_actor_stats(peer.actor, values)

    # ------------------------------------------------------------------ connections
    def report_events(self) -> None:
        """Log what the ROUTER's monitor saw: failed security handshakes, and connections ZeroMQ
        dropped (a peer that went away, or one that sent a frame above --max-message-mb)."""
        while True:
            try:
                event = recv_monitor_message(self.sockets.monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            kind, value = event["event"], event["value"]
            if kind == zmq.EVENT_ACCEPTED:
                self.accepted.add(value)
            elif kind == zmq.EVENT_DISCONNECTED:
                self.report_disconnect(value, event["endpoint"].decode(errors="replace"))
            else:
                self.failed_handshakes += 1
                if kind != zmq.EVENT_HANDSHAKE_FAILED_AUTH:  # the authenticator logs unknown keys itself
                    self.report_handshake_failure(event)

    def report_disconnect(self, fd: int, endpoint: str) -> None:
        accepted = fd in self.accepted
        self.accepted.discard(fd)
        identity = self.connections.pop(fd, None)
        peer = self.peers.get(identity) if identity is not None else None
        if identity is None and self.failed_handshakes:
            self.failed_handshakes -= 1
            return
        if not accepted or (identity is not None and (peer is None or peer.stopped)):
            return  # no news: a stranger that went away, an actor that said it stopped
        limit = f"a frame above --max-message-mb ({self.cfg.max_message_bytes} bytes; ZeroMQ then drops the connection)"
        if identity is None:
            self.throttle.warning(self.key("dropped", b"%d" % fd), f"dropped the connection {fd} on {endpoint} before its first "
                                                                   f"message: the client went away, or it sent {limit}")
        else:
            self.throttle.warning(self.key("dropped", identity), f"dropped the connection of actor {peer.actor!r}: it went "
                                                                 f"away (stopped or killed?), or it sent {limit}")

    def report_handshake_failure(self, event: dict) -> None:
        what = zmq.Event(event["event"]).name
        value = event["value"]
        detail = getattr(value, "name", None) or str(value)  # e.g. PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
        self.throttle.warning(("handshake", what), f"a client failed the security handshake on {event['endpoint'].decode()} "
                              f"({what}: {detail}): a client without CURVE keys or with another learner's learner.key? "
                              "Actors need --keys DIR holding learner.key and their .key_secret")
