"""An actor's network thread: spool every chunk, send it, drop it once acked; receive weights.

The thread owns the DEALER (hello, transitions, stats, heartbeats) and SUB (weights) sockets,
since ZeroMQ sockets are not thread safe. Its loop: move chunks from the control loop's queue to
the spool (written before anything is sent), send spooled chunks within a window of unacked ones,
read replies and weights (20 ms poll), keep the connection alive.

Connection states: until a ``welcome`` arrives the thread says hello (again after 1, 2, 4 ... at
most 10 s) and prints ``learner unreachable at ...`` once nothing came back for
:data:`SILENCE_S`; a learner that goes silent while connected (no ack to the heartbeat every
:data:`HEARTBEAT_S`) puts it back there. On ``welcome(stored_seq)`` it resends the spool from
``stored_seq + 1``; when acks stop advancing for :data:`RESEND_S` it resends from the last ack
(go-back-N). A welcome holding less than this actor's spool starts at means the learner lost
chunks it had acked (a damaged store): the thread asks it to resync (a ``resync`` heartbeat
naming the first seq it still holds) and goes on from there. ``reject`` -- of the hello, or of a
chunk the learner refuses (values out of bounds, another content under a stored seq) -- and a
learner that holds more than this actor ever sent are fatal: :attr:`Link.fatal` says why (and
what to do) and the control loop exits non-zero. A spool write that fails (a full disk) is
retried; the control loop waits once its queue is full.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import pathlib
import queue
import secrets
import threading
import time

import zmq

from robot_rl.distributed.common import Throttle, lower_thread_priority, say, zmq_io_threads
from robot_rl.distributed.spool import Spool
from robot_rl.transport import Ack, Heartbeat, Hello, MessageError, Reject, Stats, Weights, Welcome, messages
from robot_rl.transport.auth import secure_client

log = logging.getLogger(__name__)
SILENCE_S = 5.0  # no reply for this long: the learner is unreachable
HEARTBEAT_S = 2.0
RESEND_S = 5.0  # acks stalled this long with chunks in flight: resend from the last ack
MAX_BACKOFF_S = 10.0
NO_WEIGHTS_S = 15.0  # welcomed this long ago and still no weights: say so
RESYNC_WAIT_S = 10.0  # asked the learner to resync this long ago and it still holds too little: it cannot (older version)
POLL_MS = 20
SPOOL_PER_ITERATION = 8


@dataclasses.dataclass
class LinkConfig:
    actor: str
    learner: str
    """Learner ROUTER endpoint, e.g. tcp://127.0.0.1:5555."""
    weights: str
    """Learner PUB endpoint."""
    keys: pathlib.Path | None = None
    key_name: str | None = None
    window: int = 32
    """Most chunks sent and not yet acked."""
    max_message_bytes: int = 256 * 2**20


class WeightsSlot:
    """The newest weights received, handed from the network thread to the control loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._weights: Weights | None = None
        self.serial = 0  # bumped for every new version

    def put(self, weights: Weights) -> None:
        with self._lock:
            if self._weights is None or weights.version != self._weights.version:
                self._weights, self.serial = weights, self.serial + 1

    def take(self, seen_serial: int) -> tuple[int, Weights | None]:
        """(serial, weights) if newer than ``seen_serial``, else (seen_serial, None)."""
        with self._lock:
            return (self.serial, self._weights) if self.serial != seen_serial else (seen_serial, None)


class Link(threading.Thread):
    """See the module docstring. ``start()`` it, ``finish(flush_s)`` it."""

    def __init__(self, cfg: LinkConfig, hello: Hello, spool: Spool, chunks: queue.Queue, stats: queue.Queue) -> None:
        super().__init__(name=f"link-{cfg.actor}", daemon=True)
        self.cfg, self.hello, self.spool, self.chunks, self.stats = cfg, hello, spool, chunks, stats
        self.weights = WeightsSlot()
        self.weights_version = -1  # of the weights the control loop runs (set by it)
        self.fatal: str | None = None
        self.connected = False
        self.acked = -1
        self._stopping = threading.Event()
        self._flush_deadline = 0.0
        self._next_send = 0
        self._throttle = Throttle(log, period_s=10.0)
        now = time.monotonic()
        self._last_reply = self._last_progress = now
        self._next_hello = self._next_beat = self._next_notice = now
        self._backoff = 1.0
        self._beats = 0
        self._welcomed_at = math.inf  # when a welcome announced published weights
        self._ever_welcomed = False
        self._resync_asked_at: float | None = None
        self._unspooled = None  # a chunk taken from the queue that the spool could not take yet (full disk)

    # ------------------------------------------------------------------ control-loop side
    def finish(self, flush_s: float) -> None:
        """Stop after the queue is spooled and everything is acked, or after ``flush_s``."""
        self._flush_deadline = time.monotonic() + flush_s
        self._stopping.set()
        self.join(timeout=flush_s + 10.0)

    def spooled_transitions(self) -> int:
        return self.spool.pending_transitions()

    def unacked_for(self, now: float) -> float:
        """Seconds since the learner last acked anything while chunks wait for it (0: none wait)."""
        waiting = self.connected and self.acked < self.spool.counters.next_seq - 1
        return now - self._last_progress if waiting else 0.0

    # ------------------------------------------------------------------ the thread
    def run(self) -> None:
        try:
            with contextlib.ExitStack() as stack:
                self.dealer, self.sub = self._open_sockets(stack)
                lower_thread_priority([threading.get_native_id(), *zmq_io_threads()])  # the control loop comes first
                self.poller = zmq.Poller()
                self.poller.register(self.dealer, zmq.POLLIN)
                self.poller.register(self.sub, zmq.POLLIN)
                while not self._done():
                    if self.spool_new_chunks():
                        self.send_window()
                    self.receive(0 if self.chunks.qsize() else POLL_MS)
                    self.keep_alive(time.monotonic())
                self.say_goodbye()
        except Exception as err:  # a bug or a broken disk: make the control loop stop, loudly
            log.exception("network thread of actor %r failed", self.cfg.actor)
            self.fatal = f"network thread failed: {err!r}"

    def _open_sockets(self, stack: contextlib.ExitStack) -> tuple[zmq.Socket, zmq.Socket]:
        context = zmq.Context()
        stack.callback(context.term)
        dealer, sub = context.socket(zmq.DEALER), context.socket(zmq.SUB)
        stack.callback(dealer.close, linger=500)
        stack.callback(sub.close, linger=0)
        if self.cfg.keys is not None:
            for socket in (dealer, sub):
                secure_client(socket, self.cfg.keys, self.cfg.key_name or self.cfg.actor)
        dealer.routing_id = f"{self.cfg.actor}/{os.getpid()}/{secrets.token_hex(3)}".encode()
        dealer.setsockopt(zmq.IMMEDIATE, 1)  # queue only on a live connection: sends fail fast instead
        sub.setsockopt(zmq.CONFLATE, 1)  # before connect: keep only the newest weights
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        dealer.connect(self.cfg.learner)
        sub.connect(self.cfg.weights)
        return dealer, sub

    def _done(self) -> bool:
        if self.fatal is not None:
            return True
        if not self._stopping.is_set():
            return False
        if not self.chunks.empty() or self._unspooled is not None:
            return False  # spool everything first
        flushed = self.acked >= self.spool.counters.next_seq - 1
        return flushed or time.monotonic() > self._flush_deadline  # what is left is resent by the next run

    # ------------------------------------------------------------------ steps
    def spool_new_chunks(self) -> bool:
        """Spool a few queued chunks (a bounded number: a fast producer must not starve the network),
        made durable together before any of them is sent. False while the spool cannot be written."""
        try:
            for _ in range(SPOOL_PER_ITERATION):
                if self._unspooled is None:
                    self._unspooled = self.chunks.get_nowait()
                chunk = self._unspooled
                self.spool.add(chunk, messages.pack(chunk, max_bytes=self.cfg.max_message_bytes), self.weights_version, durable=False)
                self._unspooled = None
        except queue.Empty:
            pass
        except OSError as err:  # e.g. a full disk: keep the chunk, try again (the control loop waits once the queue is full)
            self._throttle.warning("spool", f"actor {self.cfg.actor}: cannot write chunk seq {self._unspooled.seq} to the spool "
                                            f"{self.spool.directory}: {err}; retrying (nothing is dropped)")
        try:
            self.spool.sync()
        except OSError as err:
            self._throttle.warning("spool sync", f"actor {self.cfg.actor}: cannot sync the spool {self.spool.directory}: {err}; "
                                                 "retrying before sending")
            return False
        return True

    def send_window(self) -> None:
        if not self.connected:
            return
        last = self.spool.counters.next_seq - 1
        while self._next_send <= min(last, self.acked + self.cfg.window):
            seq = self._next_send
            if self.spool.has(seq) and not self._send([self.spool.read(seq)]):
                return
            self._next_send += 1
        self._send_stats()

    def _send_stats(self) -> None:
        while True:
            try:
                values = self.stats.get_nowait()
            except queue.Empty:
                return
            self._send(messages.encode(Stats(self.cfg.actor, values)))

    def _send(self, frames: list) -> bool:
        try:
            self.dealer.send_multipart(frames, zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:  # no live connection (IMMEDIATE) or the queue is full: try later
            return False

    def receive(self, timeout_ms: int) -> None:
        events = dict(self.poller.poll(timeout_ms))
        while self.dealer in events:
            try:
                frames = self.dealer.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            self.on_reply(frames)
        while self.sub in events:
            try:
                frame = self.sub.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            self.on_weights(frame)

    def on_reply(self, frames: list) -> None:
        try:
            message = messages.decode(frames)
        except MessageError as err:
            self._throttle.warning("bad reply", f"actor {self.cfg.actor}: ignoring a malformed reply from the learner: {err}")
            return
        self._last_reply = time.monotonic()
        if isinstance(message, Reject):
            self.fatal = "rejected by the learner: " + message.reason + "".join(f"\n  - {d}" for d in message.differences)
            if message.reason.startswith("chunk seq"):  # a refused chunk: it stays spooled
                self.fatal += f"\n  - the spool: {self.spool.directory}"
        elif isinstance(message, Welcome):
            self.on_welcome(message)
        elif isinstance(message, Ack):
            self.on_ack(message.stored_seq)

    def on_welcome(self, welcome: Welcome) -> None:
        last, pending = self.spool.counters.next_seq - 1, self.spool.pending()
        first_needed = pending[0] if pending else last + 1
        if welcome.stored_seq > last:
            self.fatal = (f"the learner already holds seq {welcome.stored_seq} from actor {self.cfg.actor!r}, more than this actor "
                          f"ever spooled (up to {last}): this --spool ({self.spool.directory}) is not the one this id used with "
                          f"this learner run, or another process runs with --id {self.cfg.actor}. Start this actor with a new "
                          "--id (what the learner stored stays), or with the --spool it used before.")
            return
        if welcome.stored_seq + 1 < first_needed:
            self.ask_resync(welcome.stored_seq, first_needed)
            return
        if not self.connected:
            say(f"actor {self.cfg.actor}: connected to the learner at {self.cfg.learner}; it holds up to seq "
                f"{welcome.stored_seq}, resending {sum(s > welcome.stored_seq for s in pending)} spooled chunk(s)")
        self.connected, self._backoff, self._ever_welcomed, self._resync_asked_at = True, 1.0, True, None
        if welcome.weights_version >= 0:
            self._welcomed_at = min(self._welcomed_at, time.monotonic())
        self.on_ack(welcome.stored_seq)  # never below our last ack: that case was fatal above
        self._next_send = welcome.stored_seq + 1
        self._last_progress = time.monotonic()

    def ask_resync(self, stored_seq: int, first_needed: int) -> None:
        """The learner lost chunks it had acked (this actor deleted them): ask it to go on from
        ``first_needed``; an older learner that cannot is fatal after :data:`RESYNC_WAIT_S`."""
        now = time.monotonic()
        if self._resync_asked_at is not None and now - self._resync_asked_at > RESYNC_WAIT_S:
            self.fatal = (f"the learner holds seq up to {stored_seq} from actor {self.cfg.actor!r}, but this actor's spool "
                          f"{self.spool.directory} continues at seq {first_needed} (the chunks between were acked, then lost by "
                          "the learner) and the learner does not resync (an older robot_rl?): upgrade the learner, or start "
                          "this actor with a new --id")
            return
        if self._resync_asked_at is None:
            say(f"actor {self.cfg.actor}: the learner holds seq up to {stored_seq}, but this actor's spool continues at seq "
                f"{first_needed}: the learner lost chunks it had acknowledged; asking it to continue from there")
            self._resync_asked_at = now
        beat = self._heartbeat("resync")
        self._send(messages.encode(dataclasses.replace(beat, counters={**beat.counters, "first_seq": first_needed})))

    def on_ack(self, stored_seq: int) -> None:
        if stored_seq > self.acked:
            self.spool.drop_through(stored_seq)
            self.acked, self._last_progress = stored_seq, time.monotonic()

    def on_weights(self, frame) -> None:
        try:
            message = messages.unpack(frame.buffer, max_bytes=self.cfg.max_message_bytes)
        except MessageError as err:
            self._throttle.warning("bad weights", f"actor {self.cfg.actor}: ignoring malformed weights: {err}")
            return
        if isinstance(message, Weights):
            self.weights.put(message)

    # ------------------------------------------------------------------ liveness
    def keep_alive(self, now: float) -> None:
        silent = now - self._last_reply
        if self.connected and silent > SILENCE_S:
            self.connected, self._next_hello, self._backoff = False, now, 1.0
        if not self.connected:
            self._say_hello(now, silent)
        if self.connected and now >= self._next_beat:
            self._next_beat = now + HEARTBEAT_S
            self._send(messages.encode(self._heartbeat("ok")))
        if self.connected and self.acked < self._next_send - 1 and now - self._last_progress > RESEND_S:
            self._next_send, self._last_progress = self.acked + 1, now  # go-back-N: resend from the last ack
        if self.weights.serial == 0 and now - self._welcomed_at > NO_WEIGHTS_S:
            self._throttle.warning("no weights", f"actor {self.cfg.actor}: the learner publishes weights but none arrived on "
                                   f"{self.cfg.weights} in {now - self._welcomed_at:.0f} s: is --weights the learner's --weights-bind?")

    def _say_hello(self, now: float, silent: float) -> None:
        """Hello as soon as a connection is up (ZeroMQ reconnects every 100 ms), then after 1, 2, 4 ... 10 s."""
        if now >= self._next_hello and self._send(messages.encode(self.hello)):
            self._next_hello, self._backoff = now + self._backoff, min(self._backoff * 2, MAX_BACKOFF_S)
        if silent > SILENCE_S and now >= self._next_notice:
            wait = max(self._next_hello - now, 0.0)
            self._next_notice = now + max(wait, 2.0)
            keys = " (or it refuses this actor's CURVE key: see the learner's log)" if self.cfg.keys and not self._ever_welcomed else ""
            version = f"weights v{self.weights_version}" if self.weights_version >= 0 else "its initial weights"
            retry = f"hello again in {wait:.0f} s" if wait else "connecting"
            say(f"learner unreachable at {self.cfg.learner}: no reply for {silent:.0f} s{keys}; acting with {version}, "
                f"{self.spool.pending_transitions()} transitions spooled ({retry})")

    def _heartbeat(self, status: str) -> Heartbeat:
        self._beats += 1
        counters = {"transitions_produced": self.spool.counters.transitions_produced, "last_seq": self.spool.counters.next_seq - 1,
                    "acked_seq": self.acked, "spooled_transitions": self.spool.pending_transitions(),
                    "weights_version": self.weights_version}
        return Heartbeat(self.cfg.actor, "actor", status, counters, self._beats)

    def say_goodbye(self) -> None:
        """Tell the learner this process stopped (it closes the open episode) once all is acked."""
        if self.connected and self.acked >= self.spool.counters.next_seq - 1:
            self._send(messages.encode(self._heartbeat("stopped")))
