"""The learner process: store what actors send, train on it, publish weights.

``run_learner(cfg)`` reads top to bottom: build the spaces (from the env's declarations; the env
is never reset or stepped), the agent, the replay buffers and the store; recover what is on
disk; then loop: serve the sockets (poll timeout 0 while training, 100 ms while idle), one agent
update, and on schedule publish weights, checkpoint, evaluate, log and print the status line.
It stops once ``--steps`` transitions are stored (or on Ctrl-C / SIGTERM) with a final checkpoint.

Sockets: a ROUTER (hello, transitions, stats, heartbeats; replies welcome/reject/ack; served by
:mod:`robot_rl.distributed.reception`) and a PUB (weights, one packed frame so subscribers can
CONFLATE), CURVE servers when ``--keys`` is given. Every chunk is stored durably
(:mod:`robot_rl.distributed.store`) before it is acked and added to the replay buffers. No input
stops the learner: bad messages cost a log line (and the actor a ``reject``), values out of
:mod:`~robot_rl.distributed.bounds` are refused, a batch that gives non-finite losses changes no
weight, weights that are not finite are never published or checkpointed (the agent goes back to
its last good state), and a full disk costs a log line per kind of file (:mod:`~robot_rl.distributed.writes`).
Checkpoints go out every ``--checkpoint-every`` updates or ``--checkpoint-every-s`` seconds;
``--resume`` says how many updates the previous run did after its last one (they are lost).
Evaluation (``--eval``) runs in this process and pauses training while it runs; it serves the
sockets after every evaluation step, so actors stay acked.
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

from robot_rl.data.episode_metadata import episode_metadata
from robot_rl.data.replay import SegmentEnd
from robot_rl.data.sampling import sample_batch
from robot_rl.data.schema import ObsSpec, check_finite
from robot_rl.distributed.bounds import ValueBounds, chunk_problem, episode_problem
from robot_rl.distributed.common import Throttle, agent_description, chunk_episode, last_observation, make_hello, stop_with_parent
from robot_rl.distributed.identity import ActorKeys
from robot_rl.distributed.reception import SILENT_AFTER_S, Reception
from robot_rl.distributed.serving import open_sockets
from robot_rl.distributed.store import EpisodeStore
from robot_rl.distributed.writes import RETRY_S, GuardedRunLog, Writes, non_finite, read_progress, write_progress
from robot_rl.envs import control_hz, make_env
from robot_rl.train.checkpoint import load_checkpoint, save_checkpoint
from robot_rl.train.collect import add_intervention_segments
from robot_rl.train.evaluate import evaluate
from robot_rl.train.init_from import CriticWarmup, updates_start_at
from robot_rl.train.logs import RunLog
from robot_rl.train.setup import (EVAL_SEED, build_agent, demo_directory, make_demo_buffer, new_replay, prepare_run_dir,
                                  pretrain, set_threads)
from robot_rl.transport import Transitions, Weights, messages

log = logging.getLogger(__name__)
STATUS_EVERY_S = 2.0
REPUBLISH_EVERY_S = 5.0  # resend the current weights this often (late subscribers get them)
IDLE_POLL_MS = 100


class Learner:
    """State of a running learner; :meth:`serve` is the loop. Built by :func:`build_learner`."""

    def __init__(self, cfg, run_dir, spec, agent, online, demos, store, eval_env, sockets, run_log, writes) -> None:
        self.cfg, self.run_dir, self.spec, self.agent = cfg, run_dir, spec, agent
        self.online, self.demos, self.store = online, demos, store
        self.eval_env, self.sockets, self.run_log, self.writes = eval_env, sockets, run_log, writes
        self.reception: Reception | None = None  # set by build_learner
        self.throttle = Throttle(log)
        self.last_obs: dict[str, dict[str, np.ndarray]] = {}
        self.replay_at: dict[str, tuple[int, int]] = {}  # per actor: (episode, step) its next chunk must start at to be replayed
        self.segment_ends: dict[str, SegmentEnd] = {}  # per actor: where its episode's latest chunk ends in self.online
        self.returns: list[tuple[float, float]] = []  # (return, success) of the last episodes, all actors
        self.updates, self.version = 0, -1  # version: of the last weights published (-1: none yet)
        self.updates_at_publish = self.updates_at_checkpoint = 0
        self.good_state: tuple[int, dict] | None = None  # (updates, agent state) known to be finite
        self.weights_frame = b""
        self.next_eval = cfg.eval_every
        now = time.monotonic()
        self.republish_at, self.last_status, self.checkpointed_at, self.checkpoint_retry_at = 0.0, now, now, 0.0
        self.t0, self.updates_at_t0, self.stored_at_t0 = now, 0, 0
        self.updates_at_status = 0
        self.warmup = CriticWarmup(cfg.critic_warmup_updates)  # critic-only updates first (a fresh agent only)

    # ------------------------------------------------------------------ start-up
    def restore(self) -> None:
        """Agent and counters from the checkpoint (``--resume``), replay buffers from the store."""
        checkpoint = self.load_checkpoint()
        if checkpoint is not None:
            self.agent.load_state_dict(checkpoint["agent"])
            self.updates, self.version = checkpoint["updates"], checkpoint["weights_version"]
        recovered = self.store.recover(self.cfg.env.task if self.cfg.env.is_robot_rl_task else None)
        for episode in recovered.episodes:
            problem = episode_problem(self.store.bounds, episode)
            if problem:
                log.warning("store: not replaying episode %s of actor %r: %s (stored before the learner checked values?)",
                            episode.metadata.get("episode"), episode.metadata.get("actor"), problem)
                continue
            self.online.add_episode(episode)
            if self.cfg.hil != "none":
                add_intervention_segments(self.demos, episode)
        for chunk in recovered.chunks:
            problem = chunk_problem(self.store.bounds, chunk)
            if problem:
                log.warning("store: not replaying chunk seq %d of actor %r: %s", chunk.seq, chunk.actor, problem)
                continue
            self.feed(chunk)
        stored = self.store.transitions_stored
        self.next_eval = (stored // self.cfg.eval_every + 1) * self.cfg.eval_every
        self.updates_at_publish = self.updates_at_checkpoint = self.updates_at_t0 = self.updates_at_status = self.updates
        self.stored_at_t0 = stored
        if self.cfg.resume:
            print(f"resumed {self.run_dir}: {self.resume_summary(checkpoint)}; store holds {stored} transitions from "
                  f"{len(self.store.actors)} actor(s)", flush=True)

    def load_checkpoint(self) -> dict | None:
        path = self.run_dir / "checkpoint.pt"
        checkpoint = load_checkpoint(path) if self.cfg.resume and path.exists() else None
        bad = non_finite(checkpoint["agent"]) if checkpoint is not None else []
        if bad:
            log.warning("not loading %s: it holds non-finite weights (%s; written before the learner checked?); the agent "
                        "starts afresh and trains on the store", path, ", ".join(bad[:3]))
            return None
        return checkpoint

    def resume_summary(self, checkpoint: dict | None) -> str:
        where = f"checkpoint at update {self.updates}, weights v{self.version}" if checkpoint else "no checkpoint yet"
        reached = read_progress(self.run_dir)
        if reached is None:
            return where
        lost = max(reached - self.updates, 0)
        if lost == 0:
            return f"{where}; no update since then was lost"
        return (f"{where}; {lost} update{'' if lost == 1 else 's'} since then {'was' if lost == 1 else 'were'} lost (the previous "
                f"run reached update {reached} at least; it checkpoints every {self.cfg.checkpoint_every} updates or "
                f"{self.cfg.checkpoint_every_s:g} s)")

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
        return len(self.online) >= updates_start_at(self.cfg.learning_starts, self.cfg.warmup_steps)

    def poll(self, timeout_ms: int) -> None:
        self.reception.poll(timeout_ms)

    def train_step(self) -> None:
        batch = sample_batch(self.online, self.demos, self.cfg.agent_config, self.cfg.demo_ratio)
        try:
            check_finite(batch)  # e.g. an n-step sum that overflowed
        except ValueError as err:
            self.throttle.warning("batch", f"skipping an update: {err}")
            return
        skipped = self.agent.skipped_steps
        metrics = self.warmup.update(self.agent, batch)
        self.updates += 1
        if self.agent.skipped_steps > skipped:
            broken = [name for name, value in metrics.items() if not math.isfinite(value)]
            names = ", ".join(broken[:3]) + (", ..." if len(broken) > 3 else "") if broken else "gradients"
            self.throttle.warning("losses", f"update {self.updates}: non-finite {names}: "
                                            f"{self.agent.skipped_steps - skipped} optimizer step(s) skipped, the weights are unchanged "
                                            f"by them ({self.agent.skipped_steps} skipped so far)")
        if self.updates % self.cfg.log_every == 0:
            elapsed = time.monotonic() - self.t0
            rates = {"train/updates_per_s": (self.updates - self.updates_at_t0) / elapsed,
                     "env/transitions_per_s": (self.store.transitions_stored - self.stored_at_t0) / elapsed,
                     "train/skipped_steps": float(self.agent.skipped_steps)}
            self.run_log.scalars({**metrics, **rates}, self.store.transitions_stored)

    def on_schedule(self) -> None:
        now = time.monotonic()
        if self.updates - self.updates_at_publish >= self.cfg.publish_every:
            self.publish(new=True)
        elif now >= self.republish_at:
            self.publish(new=False)
        if self.checkpoint_due(now):
            self.checkpoint_retry_at = 0.0 if self.checkpoint() else now + RETRY_S
        if self.store.unwritten_episodes and now >= self.checkpoint_retry_at:
            self.store.retry_episode_files()
        if self.cfg.eval and self.store.transitions_stored >= self.next_eval:
            self.evaluate()
        if now - self.last_status >= STATUS_EVERY_S:
            self.status(now)

    def checkpoint_due(self, now: float) -> bool:
        new = self.updates - self.updates_at_checkpoint
        by_time = 0 < self.cfg.checkpoint_every_s <= now - self.checkpointed_at
        return new > 0 and (new >= self.cfg.checkpoint_every or by_time) and now >= self.checkpoint_retry_at

    # ------------------------------------------------------------------ what the reception hands over
    def feed(self, chunk: Transitions) -> None:
        """Add a stored chunk to the online buffer (intervened steps also to the demo buffer), unless
        it continues an episode whose earlier steps are not there (not replayed, or lost)."""
        if chunk.first_step == 0:
            start = chunk.reset_observation()
        elif self.replay_at.get(chunk.actor) == (chunk.episode, chunk.first_step):
            start = self.last_obs[chunk.actor]
        else:
            self.segment_ends.pop(chunk.actor, None)
            self.throttle.warning(("start", chunk.actor), f"actor {chunk.actor!r}: chunk seq {chunk.seq} continues an episode whose "
                                                          "earlier steps are not in the replay buffer; stored, not replayed")
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
        self.replay_at[chunk.actor] = (chunk.episode, chunk.first_step + chunk.count)

    def log_actor_stats(self, actor: str, values: dict[str, float]) -> None:
        step = self.store.transitions_stored
        self.run_log.scalars({f"{name}/{actor}": value for name, value in values.items()}, step)
        if "env/episode_return" in values:
            self.returns = (self.returns + [(values["env/episode_return"], values.get("env/success", math.nan))])[-20:]
            aggregate = {"env/episode_return": values["env/episode_return"]}
            successes = [s for _, s in self.returns if not math.isnan(s)]
            if successes:
                aggregate["env/success_rate"] = float(np.mean(successes))
            self.run_log.scalars(aggregate, step)

    def republish_soon(self) -> None:
        self.republish_at = time.monotonic() + 0.3  # a new actor's SUB socket is connecting now

    # ------------------------------------------------------------------ schedule
    def publish(self, new: bool) -> None:
        """Broadcast the agent's actor weights (``new``: as the next version) or resend the current ones."""
        if new or not self.weights_frame:
            arrays = messages.state_dict_to_arrays(self.agent.actor_state_dict())
            bad = non_finite(arrays)
            if bad:
                self.revert(f"its weights ({', '.join(bad[:3])}) are not finite; not publishing them, the actors keep v{self.version}")
                self.updates_at_publish = self.updates
                if not self.weights_frame:
                    return
            else:
                self.version += 1
                self.weights_frame = messages.pack(Weights(self.version, self.updates, arrays))
                self.updates_at_publish = self.updates
        self.sockets.pub.send(self.weights_frame, zmq.NOBLOCK)
        self.republish_at = time.monotonic() + REPUBLISH_EVERY_S

    def revert(self, why: str) -> None:
        """The agent blew up despite the guards: back to its last good state (the updates since are lost)."""
        updates, state = self.good_state
        log.error("learner at update %d: %s; the agent goes back to its state at update %d", self.updates, why, updates)
        self.agent.load_state_dict(state)

    def checkpoint(self) -> bool:
        """checkpoint.pt and actor.pt (atomically); False if the disk refused them (retried later)."""
        state = self.agent.state_dict()
        bad = non_finite(state)
        if bad:
            self.revert(f"its state ({', '.join(bad[:3])}) is not finite; not checkpointing it")
            return False
        counters = {"updates": self.updates, "weights_version": self.version, "transitions_stored": self.store.transitions_stored}
        payload = {"agent": state, "step": self.store.transitions_stored, **counters}
        if not (self.writes.run("checkpoint.pt", lambda: save_checkpoint(self.run_dir / "checkpoint.pt", payload))
                and self.writes.run("actor.pt", lambda: save_checkpoint(self.run_dir / "actor.pt", self.agent.actor_state_dict()))):
            return False
        self.good_state = (self.updates, state)
        self.updates_at_checkpoint, self.checkpointed_at = self.updates, time.monotonic()
        self.writes.run("progress.json", lambda: write_progress(self.run_dir, self.updates))
        return True

    def evaluate(self) -> None:
        self.next_eval += self.cfg.eval_every
        print(f"evaluating {self.cfg.eval_episodes} episodes (training pauses; actors are still served)", flush=True)
        success, mean_return = evaluate(self.eval_env, self.agent, self.spec, self.cfg.eval_episodes, EVAL_SEED,
                                        between_steps=lambda: self.poll(0))
        self.run_log.evaluation(self.store.transitions_stored, success, mean_return)
        print(f"eval at {self.store.transitions_stored} transitions: success {success:.0%}, return {mean_return:.2f}", flush=True)

    def status(self, now: float) -> None:
        previous, self.last_status = self.last_status, now
        stored, active = self.store.transitions_stored, list(self.reception.peers.values())
        if not self.ready():
            print(f"waiting for actors: {sum(now - p.last_heard < SILENT_AFTER_S for p in active)} connected, need "
                  f"{updates_start_at(self.cfg.learning_starts, self.cfg.warmup_steps)} transitions to start (have {len(self.online)}) "
                  f"| transitions {stored}", flush=True)
            return
        self.writes.run("progress.json", lambda: write_progress(self.run_dir, self.updates))
        rate = (self.updates - self.updates_at_status) / max(now - previous, 1e-9)
        self.updates_at_status = self.updates
        actors = ", ".join(p.describe(now) for p in sorted(active, key=lambda p: p.actor)) or "none"
        successes = [s for _, s in self.returns if not math.isnan(s)]
        success = f" | success(last {len(successes)}) {np.mean(successes):.0%}" if successes else ""
        print(f"updates {self.updates} ({rate:.1f}/s) | transitions {stored}/{self.cfg.steps} | actors {actors} | "
              f"weights v{self.version}{success}", flush=True)

    def finish(self) -> None:
        if not self.checkpoint():
            log.error("the final checkpoint could not be written; the last one on disk is from update %d", self.updates_at_checkpoint)
        self.store.retry_episode_files()
        self.run_log.close()
        print(f"done: {self.store.transitions_stored} transitions stored, {self.updates} updates, weights v{self.version}; "
              f"run: {self.run_dir}", flush=True)


# ------------------------------------------------------------------------------ set-up
def build_learner(cfg, stack: contextlib.ExitStack) -> Learner:
    """Everything the loop needs, each closed with ``stack`` (a factory: long by nature)."""
    env = make_env(cfg.env)  # for its declared spaces only: never reset or stepped
    stack.callback(env.close)
    if cfg.eval and cfg.env.backend != "sim" and cfg.env.is_robot_rl_task:
        print(f"no local evaluation: the learner has no robot (backend {cfg.env.backend!r}); the actors' env/* stats show progress", flush=True)
        cfg = dataclasses.replace(cfg, eval=False)
    eval_env = make_env(cfg.env) if cfg.eval else None
    if eval_env is not None:
        stack.callback(eval_env.close)
    spec, action_dim = ObsSpec.from_space(env.observation_space), int(np.prod(env.action_space.shape))
    set_threads(cfg.threads, spec, cfg.agent_config)
    sockets = open_sockets(cfg, stack)  # bad endpoints and keys fail before the run dir is written
    run_dir = prepare_run_dir(cfg)
    agent = build_agent(cfg, spec, action_dim)
    demos = make_demo_buffer(cfg, demo_directory(cfg, run_dir), spec, action_dim)
    online = new_replay(cfg.agent_config, spec, action_dim, cfg.replay_capacity, "online", cfg.env.seed)  # features computed here
    metadata = episode_metadata(cfg.env.task, cfg.env.obs, spec, env.action_space, control_hz(env) or 1.0, "online",
                                state_parts=getattr(env.unwrapped, "state_layout", None))  # actors' backends may differ
    bounds = ValueBounds.for_space(env.action_space, cfg.max_abs_reward, cfg.max_abs_observation)
    store = EpisodeStore(run_dir, metadata, spec, action_dim, bounds)
    hello = make_hello("learner", cfg.env.task, spec, env.action_space,
                       agent_description(cfg.algo, cfg.sac, agent.actor_state_dict(), cfg.env.options()))
    writes = Writes()
    run_log = GuardedRunLog(lambda: RunLog(run_dir, f"{cfg.env.task} distributed {cfg.algo}, seed {cfg.env.seed}", "transitions stored"), writes)
    stack.callback(run_log.close)
    learner = Learner(cfg, run_dir, spec, agent, online, demos, store, eval_env, sockets, run_log, writes)
    learner.reception = Reception(cfg, sockets, store, hello, ActorKeys(run_dir / "store" / "actor_keys.json"), learner)
    learner.restore()
    if learner.store.transitions_stored == 0 and learner.updates == 0:
        pretrain(agent, demos, cfg.pretrain_updates, cfg.agent_config)
    learner.good_state = (learner.updates, agent.state_dict())
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
