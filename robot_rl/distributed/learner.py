"""The learner process: store what actors send, train on it, publish weights.

``run_learner(cfg)`` reads top to bottom: build the spaces (from the env's declarations; the env
is never reset or stepped), the agent, the replay buffers and the store; recover what is on
disk; then loop: serve the sockets (poll timeout 0 while training, 100 ms while idle), one agent
update, and on schedule publish weights, checkpoint, evaluate, log and print the status line.
It stops once ``--steps`` transitions are stored (or on Ctrl-C) with a final checkpoint.

Sockets: a ROUTER (hello, transitions, stats, heartbeats; replies welcome/reject/ack) and a PUB
(weights, one packed frame so subscribers can CONFLATE), CURVE servers when ``--keys`` is given.
Every chunk is stored durably (:mod:`robot_rl.distributed.store`) before it is acked and added to
the replay buffers. Bad input -- malformed, oversized, another schema version, an actor that said
no hello on this connection, a mismatched hello -- costs one log line (throttled per sender) and
never stops the learner. Evaluation (``--eval``) runs in this process and pauses training while
it runs; it serves the sockets after every evaluation step, so actors stay acked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import pathlib
import time

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from robot_rl.data.replay import ReplayBuffer, SegmentEnd
from robot_rl.data.schema import ObsSpec
from robot_rl.distributed.common import (Throttle, agent_description, check_actor_id, chunk_episode, last_observation, make_hello,
                                         stop_with_parent)
from robot_rl.distributed.serving import open_sockets, peek_actor
from robot_rl.distributed.store import EpisodeStore, Status
from robot_rl.data.episode_metadata import episode_metadata
from robot_rl.data.sampling import sample_batch
from robot_rl.envs import control_hz, make_env
from robot_rl.train.checkpoint import load_checkpoint, save_checkpoint
from robot_rl.train.collect import add_intervention_segments
from robot_rl.train.evaluate import evaluate
from robot_rl.train.logs import RunLog
from robot_rl.train.setup import (EVAL_SEED, build_agent, demo_directory, make_demo_buffer, prepare_run_dir,
                                  pretrain, set_threads)
from robot_rl.transport import (Ack, Heartbeat, Hello, MessageError, Reject, SchemaVersionError, Stats, Transitions,
                                Weights, Welcome, compare_hello, messages)

log = logging.getLogger(__name__)
STATUS_EVERY_S = 2.0
SILENT_AFTER_S = 10.0
REPUBLISH_EVERY_S = 5.0  # resend the current weights this often (late subscribers get them)
IDLE_POLL_MS = 100
MAX_MESSAGES_PER_POLL = 64


@dataclasses.dataclass
class Peer:
    """An actor that said hello on one connection."""

    actor: str
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


class Learner:
    """State of a running learner; :meth:`serve` is the loop. Built by :func:`build_learner`."""

    def __init__(self, cfg, run_dir, spec, agent, online, demos, store, hello, eval_env, sockets, run_log) -> None:
        self.cfg, self.run_dir, self.spec, self.agent = cfg, run_dir, spec, agent
        self.online, self.demos, self.store, self.hello = online, demos, store, hello
        self.eval_env, self.sockets, self.run_log = eval_env, sockets, run_log
        self.throttle = Throttle(log)
        self.peers: dict[bytes, Peer] = {}
        self.replies: list[tuple[bytes, object]] = []  # sent by poll() after the store's sync
        self.last_obs: dict[str, dict[str, np.ndarray]] = {}
        self.segment_ends: dict[str, SegmentEnd] = {}  # per actor: where its episode's latest chunk ends in self.online
        self.returns: list[tuple[float, float]] = []  # (return, success) of the last episodes, all actors
        self.updates, self.version = 0, -1  # version: of the last weights published (-1: none yet)
        self.updates_at_publish = self.updates_at_checkpoint = 0
        self.weights_frame = b""
        self.next_eval = cfg.eval_every
        self.republish_at, self.last_status = 0.0, time.monotonic()
        self.t0, self.updates_at_t0, self.stored_at_t0 = time.monotonic(), 0, 0
        self.updates_at_status = 0

    # ------------------------------------------------------------------ start-up
    def restore(self) -> None:
        """Agent and counters from the checkpoint (``--resume``), replay buffers from the store."""
        path = self.run_dir / "checkpoint.pt"
        checkpoint = load_checkpoint(path) if self.cfg.resume and path.exists() else None
        if checkpoint is not None:
            self.agent.load_state_dict(checkpoint["agent"])
            self.updates, self.version = checkpoint["updates"], checkpoint["weights_version"]
        recovered = self.store.recover(self.hello.task if self.cfg.env.is_robot_rl_task else None)
        for episode in recovered.episodes:
            self.online.add_episode(episode)
            if self.cfg.hil != "none":
                add_intervention_segments(self.demos, episode)
        for chunk in recovered.chunks:
            self.feed(chunk)
        stored = self.store.transitions_stored
        self.next_eval = (stored // self.cfg.eval_every + 1) * self.cfg.eval_every
        self.updates_at_publish = self.updates_at_checkpoint = self.updates_at_t0 = self.updates_at_status = self.updates
        self.stored_at_t0 = stored
        if self.cfg.resume:
            where = f"checkpoint at update {self.updates}, weights v{self.version}" if checkpoint else "no checkpoint yet"
            print(f"resumed {self.run_dir}: {where}; store holds {stored} transitions from {len(self.store.actors)} actor(s)", flush=True)

    # ------------------------------------------------------------------ the loop
    def serve(self) -> int:
        self.publish(new=True)
        interrupted = False
        try:
            while self.store.transitions_stored < self.cfg.steps:
                self.poll(0 if self.ready() else IDLE_POLL_MS)
                if self.ready():
                    self.train_step()
                self.on_schedule()
        except KeyboardInterrupt:
            interrupted = True
        self.finish()
        return 130 if interrupted else 0

    def ready(self) -> bool:
        return len(self.online) >= max(self.cfg.learning_starts, 1)

    def poll(self, timeout_ms: int) -> None:
        """Handle up to MAX_MESSAGES_PER_POLL messages; their chunks are written without fsync,
        then made durable together (:meth:`EpisodeStore.sync`) before any reply goes out."""
        events = dict(self.sockets.poller.poll(timeout_ms))
        if self.sockets.router in events:
            for _ in range(MAX_MESSAGES_PER_POLL):
                try:
                    frames = self.sockets.router.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                self.handle(frames[0].bytes, frames[1:])
            try:
                self.store.sync()
            except OSError as err:
                raise RuntimeError(f"cannot make the received chunks durable in {self.run_dir}: {err}. Nothing unsynced "
                                   "was acknowledged: free space, then restart with --resume (the actors resend)") from err
            for identity, message in self.replies:
                self.sockets.router.send_multipart([identity, *messages.encode(message)], zmq.NOBLOCK, copy=False)
            self.replies.clear()
        if self.sockets.monitor is not None and self.sockets.monitor in events:
            self.report_handshake_failures()

    def train_step(self) -> None:
        metrics = self.agent.update(sample_batch(self.online, self.demos, self.cfg.agent_config, self.cfg.demo_ratio))
        self.updates += 1
        if self.updates % self.cfg.log_every == 0:
            elapsed = time.monotonic() - self.t0
            rates = {"train/updates_per_s": (self.updates - self.updates_at_t0) / elapsed,
                     "env/transitions_per_s": (self.store.transitions_stored - self.stored_at_t0) / elapsed}
            self.run_log.scalars({**metrics, **rates}, self.store.transitions_stored)

    def on_schedule(self) -> None:
        now = time.monotonic()
        if self.updates - self.updates_at_publish >= self.cfg.publish_every:
            self.publish(new=True)
        elif now >= self.republish_at:
            self.publish(new=False)
        if self.updates - self.updates_at_checkpoint >= self.cfg.checkpoint_every:
            self.checkpoint()
        if self.cfg.eval and self.store.transitions_stored >= self.next_eval:
            self.evaluate()
        if now - self.last_status >= STATUS_EVERY_S:
            self.status(now)

    # ------------------------------------------------------------------ messages
    def handle(self, identity: bytes, frames: list) -> None:
        """One message from one connection; bad input is logged, never raised."""
        try:
            message = messages.decode(frames, max_bytes=self.cfg.max_message_bytes)
        except SchemaVersionError as err:
            self.throttle.warning(("version", identity), f"refusing {self.who(identity)}: {err}")
            self.reply(identity, Reject(peek_actor(frames), f"wire schema mismatch: {err}", (str(err),)))
            return
        except MessageError as err:
            self.throttle.warning(("bad", identity), f"ignoring a malformed message from {self.who(identity)}: {err}")
            return
        if isinstance(message, Hello):
            self.on_hello(identity, message)
            return
        peer = self.peers.get(identity)
        if peer is None or peer.actor != message.actor:
            why = "it said no hello on this connection yet" if peer is None else f"this connection is actor {peer.actor!r}"
            self.throttle.warning(("unknown", identity), f"ignoring {type(message).__name__.lower()} from actor "
                                  f"{message.actor!r}: {why} (it says hello again after a few seconds of silence)")
            return
        peer.last_heard = time.monotonic()
        handlers = {Transitions: self.on_transitions, Heartbeat: self.on_heartbeat, Stats: self.on_stats}
        handler = handlers.get(type(message))
        if handler is None:
            self.throttle.warning(("kind", identity), f"ignoring a {type(message).__name__.lower()} message from actor {peer.actor!r}")
            return
        try:
            handler(identity, peer, message)
        except ValueError as err:  # content our checks let through but the buffers refuse: not fatal
            self.throttle.warning(("refused", identity), f"refusing a {type(message).__name__.lower()} message from actor {peer.actor!r}: {err}")

    def who(self, identity: bytes) -> str:
        peer = self.peers.get(identity)
        return f"actor {peer.actor!r}" if peer else f"connection {identity.decode(errors='replace')!r}"

    def reply(self, identity: bytes, message) -> None:
        """Queue a reply; :meth:`poll` sends it once the chunks stored meanwhile are durable
        (an ack -- in a welcome, an ack or a heartbeat's answer -- never precedes its fsync)."""
        self.replies.append((identity, message))

    def on_hello(self, identity: bytes, hello: Hello) -> None:
        try:
            check_actor_id(hello.actor)
            differences = compare_hello(self.hello, hello)
        except ValueError as err:
            differences = [str(err)]
        if differences:
            log.warning("rejected actor %r: %s", hello.actor, "; ".join(differences))
            self.reply(identity, Reject(hello.actor, f"actor {hello.actor!r} does not fit this learner", tuple(differences)))
            return
        for other, peer in list(self.peers.items()):
            if peer.actor == hello.actor and other != identity:
                del self.peers[other]  # the same actor on a new connection (it restarted)
        known = identity in self.peers
        self.peers[identity] = Peer(hello.actor, time.monotonic())
        stored = self.store.stored_seq(hello.actor)
        self.reply(identity, Welcome(hello.actor, stored, self.version))
        self.republish_at = time.monotonic() + 0.3  # its SUB socket is connecting now
        log.info("actor %r %s; it resumes after seq %d", hello.actor, "said hello again" if known else "connected", stored)

    def on_transitions(self, identity: bytes, peer: Peer, chunk: Transitions) -> None:
        try:
            outcome = self.store.accept(chunk, durable=False)
        except OSError as err:  # e.g. the disk is full: not acked, so the actor keeps it spooled and resends
            self.throttle.warning("store", f"cannot store chunk seq {chunk.seq} of actor {peer.actor!r} in {self.run_dir}: "
                                           f"{err}; not acknowledged (the actor keeps it and resends)")
            return
        if outcome.status is Status.GAP:
            self.throttle.warning(("gap", peer.actor), f"actor {peer.actor!r}: {outcome.reason}; waiting for it to resend")
            return
        if outcome.status is Status.INVALID:
            self.throttle.warning(("invalid", peer.actor), f"actor {peer.actor!r}: refusing chunk seq {chunk.seq}: {outcome.reason}")
            return
        if outcome.status is Status.STORED:
            self.feed(chunk)
        self.reply(identity, Ack(peer.actor, outcome.stored_seq))

    def feed(self, chunk: Transitions) -> None:
        """Add a stored chunk to the online buffer (intervened steps also to the demo buffer)."""
        start = chunk.reset_observation() if chunk.first_step == 0 else self.last_obs.get(chunk.actor)
        if start is None:
            log.warning("actor %r: chunk seq %d continues an episode whose start is unknown; not replayed", chunk.actor, chunk.seq)
            return
        segment = chunk_episode(chunk, start)
        after = self.segment_ends.pop(chunk.actor, None)  # n-step targets walk on across an episode's chunks
        end = self.online.add_segment(segment, after=after if chunk.first_step > 0 else None)
        if not chunk.final:
            self.segment_ends[chunk.actor] = end
        if segment.intervention.any():
            if self.cfg.hil != "none":
                add_intervention_segments(self.demos, segment)
            else:
                self.throttle.warning("hil", f"actor {chunk.actor!r} sends interventions: start the learner with --hil "
                                             "(e.g. --hil simulated) to also train on them as demonstrations")
        self.last_obs[chunk.actor] = last_observation(chunk)

    def on_heartbeat(self, identity: bytes, peer: Peer, beat: Heartbeat) -> None:
        self.reply(identity, Ack(peer.actor, self.store.stored_seq(peer.actor)))
        peer.stopped = beat.status == "stopped"
        if peer.stopped:
            path = self.store.close_stopped(peer.actor, beat.counters.get("last_seq", -2))
            log.info("actor %r stopped%s", peer.actor, f"; its last episode was kept as {path.name} (truncated)" if path else "")

    def on_stats(self, identity: bytes, peer: Peer, stats: Stats) -> None:
        values = dict(stats.values)
        peer.control_hz = values.get("actor/control_hz", peer.control_hz)
        step = self.store.transitions_stored
        self.run_log.scalars({f"{name}/{peer.actor}": value for name, value in values.items()}, step)
        if "env/episode_return" in values:
            self.returns = (self.returns + [(values["env/episode_return"], values.get("env/success", math.nan))])[-20:]
            aggregate = {"env/episode_return": values["env/episode_return"]}
            successes = [s for _, s in self.returns if not math.isnan(s)]
            if successes:
                aggregate["env/success_rate"] = float(np.mean(successes))
            self.run_log.scalars(aggregate, step)

    def report_handshake_failures(self) -> None:
        while True:
            try:
                event = recv_monitor_message(self.sockets.monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            what = zmq.Event(event["event"]).name
            detail = getattr(event["value"], "name", None) or str(event["value"])  # e.g. PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
            self.throttle.warning(("handshake", what), f"a client failed the security handshake on {event['endpoint'].decode()} "
                                  f"({what}: {detail}): a client without CURVE keys or with another learner's learner.key? "
                                  "Actors need --keys DIR holding learner.key and their .key_secret")

    # ------------------------------------------------------------------ schedule
    def publish(self, new: bool) -> None:
        """Broadcast the agent's actor weights (``new``: as the next version) or resend the current ones."""
        if new or not self.weights_frame:
            self.version += 1
            arrays = messages.state_dict_to_arrays(self.agent.actor_state_dict())
            self.weights_frame = messages.pack(Weights(self.version, self.updates, arrays))
            self.updates_at_publish = self.updates
        self.sockets.pub.send(self.weights_frame, zmq.NOBLOCK)
        self.republish_at = time.monotonic() + REPUBLISH_EVERY_S

    def checkpoint(self) -> None:
        counters = {"updates": self.updates, "weights_version": self.version, "transitions_stored": self.store.transitions_stored}
        save_checkpoint(self.run_dir / "checkpoint.pt", {"agent": self.agent.state_dict(), "step": self.store.transitions_stored, **counters})
        save_checkpoint(self.run_dir / "actor.pt", self.agent.actor_state_dict())
        self.updates_at_checkpoint = self.updates

    def evaluate(self) -> None:
        self.next_eval += self.cfg.eval_every
        print(f"evaluating {self.cfg.eval_episodes} episodes (training pauses; actors are still served)", flush=True)
        success, mean_return = evaluate(self.eval_env, self.agent, self.spec, self.cfg.eval_episodes, EVAL_SEED,
                                        between_steps=lambda: self.poll(0))
        self.run_log.evaluation(self.store.transitions_stored, success, mean_return)
        print(f"eval at {self.store.transitions_stored} transitions: success {success:.0%}, return {mean_return:.2f}", flush=True)

    def status(self, now: float) -> None:
        previous, self.last_status = self.last_status, now
        stored, active = self.store.transitions_stored, [p for p in self.peers.values()]
        if not self.ready():
            print(f"waiting for actors: {sum(now - p.last_heard < SILENT_AFTER_S for p in active)} connected, need "
                  f"{self.cfg.learning_starts} transitions to start (have {len(self.online)}) | transitions {stored}", flush=True)
            return
        rate = (self.updates - self.updates_at_status) / max(now - previous, 1e-9)
        self.updates_at_status = self.updates
        actors = ", ".join(p.describe(now) for p in sorted(active, key=lambda p: p.actor)) or "none"
        successes = [s for _, s in self.returns if not math.isnan(s)]
        success = f" | success(last {len(successes)}) {np.mean(successes):.0%}" if successes else ""
        print(f"updates {self.updates} ({rate:.1f}/s) | transitions {stored}/{self.cfg.steps} | actors {actors} | "
              f"weights v{self.version}{success}", flush=True)

    def finish(self) -> None:
        self.checkpoint()
        self.run_log.close()
        print(f"done: {self.store.transitions_stored} transitions stored, {self.updates} updates, weights v{self.version}; "
              f"run: {self.run_dir}", flush=True)


# ------------------------------------------------------------------------------ set-up
def build_learner(cfg, stack: contextlib.ExitStack) -> Learner:
    """Everything the loop needs, each closed with ``stack`` (a factory: long by nature)."""
    set_threads(cfg.threads)
    env = make_env(cfg.env)  # for its declared spaces only: never reset or stepped
    stack.callback(env.close)
    if cfg.eval and cfg.env.backend != "sim" and cfg.env.is_robot_rl_task:
        print(f"no local evaluation: the learner has no robot (backend {cfg.env.backend!r}); the actors' env/* stats show progress", flush=True)
        cfg = dataclasses.replace(cfg, eval=False)
    eval_env = make_env(cfg.env) if cfg.eval else None
    if eval_env is not None:
        stack.callback(eval_env.close)
    spec, action_dim = ObsSpec.from_space(env.observation_space), int(np.prod(env.action_space.shape))
    sockets = open_sockets(cfg, stack)  # bad endpoints and keys fail before the run dir is written
    run_dir = prepare_run_dir(cfg)
    agent = build_agent(cfg, spec, action_dim)
    demos = make_demo_buffer(cfg, demo_directory(cfg, run_dir), spec, action_dim)
    online = ReplayBuffer(spec, action_dim, cfg.replay_capacity, name="online", seed=cfg.env.seed)
    metadata = episode_metadata(cfg.env.task, cfg.env.obs, spec, env.action_space, control_hz(env) or 1.0, "online",
                                state_parts=getattr(env.unwrapped, "state_layout", None))  # actors' backends may differ
    store = EpisodeStore(run_dir, metadata, spec, action_dim)
    hello = make_hello("learner", cfg.env.task, spec, env.action_space,
                       agent_description(cfg.algo, cfg.sac, agent.actor_state_dict(), cfg.env.options()))
    run_log = RunLog(run_dir, f"{cfg.env.task} distributed {cfg.algo}, seed {cfg.env.seed}", "transitions stored")
    stack.callback(run_log.close)
    learner = Learner(cfg, run_dir, spec, agent, online, demos, store, hello, eval_env, sockets, run_log)
    learner.restore()
    if learner.store.transitions_stored == 0 and learner.updates == 0:
        pretrain(agent, demos, cfg.pretrain_updates, cfg.agent_config)
    return learner


def run_learner(cfg) -> int:
    """Serve actors and train until ``cfg.steps`` transitions are stored; the exit code."""
    stop_with_parent()
    with contextlib.ExitStack() as stack:
        learner = build_learner(cfg, stack)
        print(f"learner for {cfg.env.task}: actors connect to {cfg.bind} (weights on {cfg.weights_bind}), "
              f"{'CURVE keys from ' + str(cfg.keys) if cfg.keys else 'no encryption (loopback only)'}; run {learner.run_dir}", flush=True)
        return learner.serve()


def read_checkpoint_counters(run_dir: pathlib.Path) -> dict:
    """The counters of a learner checkpoint (updates, weights_version, transitions_stored)."""
    checkpoint = load_checkpoint(pathlib.Path(run_dir) / "checkpoint.pt")
    return {k: checkpoint[k] for k in ("updates", "weights_version", "transitions_stored")}
