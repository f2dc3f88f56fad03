"""The actor process: act at the control rate, hand chunks to the network thread, never wait for it.

``run_actor(cfg)`` builds the env and an agent exactly like the learner's, opens the spool (which
continues the seq/episode numbering of an earlier run of the same actor id) and starts the
network thread (:mod:`robot_rl.distributed.link`). The control loop then reads top to bottom:
check the link, swap in newer weights (between steps, never mid-step), act, step the env, record
the step; every ``--chunk-steps`` steps and at each episode end the chunk is closed and put on a
bounded queue. A full queue means the network thread cannot keep up writing the spool (a full
disk?): the loop warns and waits -- data is never dropped.

What a crash loses (``kill -9``): the chunk being filled (at most ``--chunk-steps - 1`` steps) and
the chunks in the queue (at most ``--queue-size``, normally none: the network thread spools them
within ~20 ms). Those were never counted in ``transitions_produced``. Everything spooled is
resent by the next run of the same actor id. Ctrl-C or ``--steps`` flush everything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import queue
import time

import numpy as np
import torch

from robot_rl.data.schema import ObsSpec
from robot_rl.distributed.common import Throttle, agent_description, make_hello, say, stop_with_parent
from robot_rl.distributed.link import Link, LinkConfig
from robot_rl.distributed.spool import Spool
from robot_rl.rate import Rate
from robot_rl.signals import signals_deferred
from robot_rl.envs import make_env
from robot_rl.human.devices import with_human
from robot_rl.train.collect import success_of
from robot_rl.train.setup import build_agent
from robot_rl.transport import Transitions
from robot_rl.transport.messages import arrays_to_state_dict

log = logging.getLogger(__name__)
STATUS_EVERY_S = 10.0
STALLED_S = 30.0  # connected, chunks waiting, no ack for this long: say so on the status line
EXIT_REJECTED = 3


class ChunkBuilder:
    """Steps of the current episode since the last chunk was closed.

    Each step is ONE list append, so a Ctrl-C between two bytecodes never leaves a half-recorded step.
    """

    def __init__(self, actor: str) -> None:
        self.actor = actor
        self.episode, self.first_step = 0, 0
        self._reset_obs: dict[str, np.ndarray] | None = None
        self._steps: list[tuple] = []

    def start(self, episode: int, obs: dict[str, np.ndarray]) -> None:
        """A new episode: its first chunk also carries the reset observation."""
        self.episode, self.first_step, self._reset_obs, self._steps = episode, 0, obs, []

    def add(self, action, reward, terminated, truncated, intervention, next_obs: dict[str, np.ndarray]) -> None:
        self._steps.append((action, np.float32(reward), bool(terminated), bool(truncated), bool(intervention), next_obs))

    def __len__(self) -> int:
        return len(self._steps)

    def close(self, seq: int, final: bool) -> Transitions:
        action, reward, terminated, truncated, intervention, nexts = zip(*self._steps)
        rows = ([self._reset_obs] if self.first_step == 0 else []) + list(nexts)
        observations = {key: np.stack([row[key] for row in rows]) for key in nexts[0]}
        chunk = Transitions(self.actor, seq, self.episode, self.first_step, np.asarray(action, np.float32),
                            np.asarray(reward, np.float32), np.asarray(terminated), np.asarray(truncated),
                            np.asarray(intervention), observations, final)
        self.first_step += len(self._steps)
        self._steps = []
        return chunk


@dataclasses.dataclass
class EpisodeStats:
    start: float
    ret: float = 0.0
    steps: int = 0
    interventions: int = 0
    latency_s: float = 0.0

    def values(self, success: float, queue_depth: int, weights_version: int) -> dict[str, float]:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        values = {"env/episode_return": self.ret, "env/episode_length": float(self.steps),
                  "actor/intervention_rate": self.interventions / max(self.steps, 1), "actor/control_hz": self.steps / elapsed,
                  "actor/loop_latency_ms": 1000 * self.latency_s / max(self.steps, 1), "actor/queue_depth": float(queue_depth),
                  "actor/weights_version": float(weights_version)}
        if not math.isnan(success):
            values["env/success"] = success
        return values


class ControlLoop:
    """One actor's env loop; :meth:`run` returns the exit code."""

    def __init__(self, cfg, env, agent, spec: ObsSpec, link: Link, chunks: queue.Queue, stats: queue.Queue) -> None:
        self.cfg, self.env, self.agent, self.spec, self.link = cfg, env, agent, spec, link
        self.chunks, self.stats_queue = chunks, stats
        counters = link.spool.counters
        self.seq, self.episode, self.produced = counters.next_seq, counters.next_episode, counters.transitions_produced
        self.builder = ChunkBuilder(cfg.id)
        self.rng = np.random.default_rng(cfg.env.seed)
        self.rate, self.throttle = Rate(cfg.max_hz), Throttle(log, period_s=10.0)
        self.weights_serial, self.weights_version, self.episodes = 0, -1, 0
        self.stats = EpisodeStats(time.monotonic())
        self.last_status = time.monotonic()
        self.unqueued: Transitions | None = None  # closed, not yet in the queue

    def run(self) -> int:
        obs = self.reset(seed=self.cfg.env.seed + self.episode)
        try:
            while not self.finished():
                self.check_link()
                self.swap_weights()
                obs = self.step(obs)
                self.show_status()
                self.rate.sleep()
        except KeyboardInterrupt:
            return 130
        except LinkFailed as err:
            say(f"robot-rl actor {self.cfg.id}: {err}")
            return EXIT_REJECTED
        finally:
            with contextlib.suppress(LinkFailed):
                self.close_chunk(final=False)
        return 0

    def finished(self) -> bool:
        return 0 < self.cfg.steps <= self.produced

    def check_link(self) -> None:
        if self.link.fatal is not None:
            raise LinkFailed(self.link.fatal)

    def swap_weights(self) -> None:
        serial, weights = self.link.weights.take(self.weights_serial)
        if weights is None:
            return
        self.weights_serial = serial
        try:
            self.agent.load_actor_state_dict(arrays_to_state_dict(weights.params))
        except (KeyError, ValueError, RuntimeError) as err:
            self.throttle.warning("weights", f"actor {self.cfg.id}: cannot load weights v{weights.version}: {err}")
            return
        if self.weights_version < 0:
            say(f"actor {self.cfg.id}: running the learner's weights (v{weights.version})")
        self.weights_version = self.link.weights_version = weights.version

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        raw, _ = self.env.reset(seed=seed)
        obs = self.spec.canonical(raw)
        self.builder.start(self.episode, obs)
        self.stats = EpisodeStats(time.monotonic())
        return obs

    def step(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One control step; returns the next observation (the reset one after an episode end)."""
        started = time.monotonic()
        explore = self.produced < self.cfg.random_steps
        action = self.rng.uniform(-1, 1, self.agent.action_dim).astype(np.float32) if explore else self.agent.act(obs)
        self.stats.latency_s += time.monotonic() - started
        raw, reward, terminated, truncated, info = self.env.step(action)
        next_obs = self.spec.canonical(raw)
        intervened = bool(info.get("intervention", False))
        self.builder.add(np.asarray(info.get("executed_action", action), np.float32), reward, terminated, truncated,
                         intervened, next_obs)
        self.produced += 1
        self.stats.ret, self.stats.steps = self.stats.ret + float(reward), self.stats.steps + 1
        self.stats.interventions += intervened
        if terminated or truncated:
            self.end_episode(success_of(info))
            return self.reset()
        if len(self.builder) >= self.cfg.chunk_steps:
            self.close_chunk(final=False)
        return next_obs

    def end_episode(self, success: float) -> None:
        self.close_chunk(final=True)
        with contextlib.suppress(queue.Full):  # stats may be dropped when the learner is away; data never is
            self.stats_queue.put_nowait(self.stats.values(success, self.chunks.qsize(), self.weights_version))
        self.episode += 1
        self.episodes += 1

    def close_chunk(self, final: bool) -> None:
        """Close the chunk being filled and queue it (waiting while the queue is full)."""
        # Ctrl-C / SIGTERM wait for each of the blocks below: one between queueing the chunk and
        # forgetting it would queue it twice in the final flush (the network thread then fails on
        # the repeated seq), one inside close() would lose the chunk or misnumber its steps.
        with signals_deferred():
            if self.unqueued is None and len(self.builder):
                self.unqueued = self.builder.close(self.seq, final)
                self.seq += 1
        if self.unqueued is None:
            return
        if self.chunks.full():
            self.throttle.warning("queue", f"actor {self.cfg.id}: the send queue is full ({self.chunks.maxsize} chunks): the "
                                  "network thread cannot write the spool fast enough; acting waits (nothing is dropped)")
        while self.unqueued is not None:  # a Ctrl-C between tries keeps the chunk here for the final flush
            with signals_deferred():
                try:
                    self.chunks.put(self.unqueued, timeout=1.0)
                    self.unqueued = None
                except queue.Full:
                    pass
            if self.unqueued is not None and not self.link.is_alive():
                raise LinkFailed(self.link.fatal or "the network thread stopped")

    def show_status(self) -> None:
        now = time.monotonic()
        if now - self.last_status < STATUS_EVERY_S:
            return
        self.last_status = now
        state = "connected" if self.link.connected else "learner unreachable"
        if self.link.unacked_for(now) > STALLED_S:
            state += f", but nothing acked for {self.link.unacked_for(now):.0f} s (the learner's log says why)"
        version = f"v{self.weights_version}" if self.weights_version >= 0 else "initial"
        say(f"actor {self.cfg.id}: {self.produced} transitions produced | episodes {self.episodes} | weights {version} | "
            f"{self.link.spooled_transitions()} spooled, not yet acked | {state}")


class LinkFailed(RuntimeError):
    """The network thread gave up (rejected by the learner, or a fatal mismatch)."""


# ------------------------------------------------------------------------------ set-up
def run_actor(cfg) -> int:
    """Act until ``cfg.steps`` transitions were produced (0: until Ctrl-C); the exit code."""
    stop_with_parent()
    torch.set_num_threads(max(cfg.threads, 1))
    train_cfg = cfg.train_config()
    with contextlib.ExitStack() as stack:
        env = make_env(cfg.env)
        stack.callback(env.close)
        spec = ObsSpec.from_space(env.observation_space)
        agent = build_agent(train_cfg, spec, int(np.prod(env.action_space.shape)))
        hello = make_hello(cfg.id, cfg.env.task, spec, env.action_space,
                           agent_description("sac", cfg.sac, agent.actor_state_dict(), cfg.env.options()))
        env = with_human(env, cfg.hil, stack, cfg.sim_human)
        spool = Spool(cfg.spool_dir)
        counters = spool.open()
        chunks, stats = queue.Queue(maxsize=cfg.queue_size), queue.Queue(maxsize=100)
        link = Link(LinkConfig(cfg.id, cfg.learner, cfg.weights_endpoint, cfg.keys, cfg.key_name), hello, spool, chunks, stats)
        say(f"actor {cfg.id}: {cfg.env.task} -> learner {cfg.learner}; spool {cfg.spool_dir} (continuing at seq {counters.next_seq}, "
            f"episode {counters.next_episode}, {counters.transitions_produced} transitions produced so far)")
        link.start()
        code = ControlLoop(cfg, env, agent, spec, link, chunks, stats).run()
        link.finish(flush_s=cfg.flush_s if code != EXIT_REJECTED else 0.0)
    if link.fatal and code == 0:
        say(f"robot-rl actor {cfg.id}: {link.fatal}")
        code = EXIT_REJECTED
    say(f"actor {cfg.id} stopped: {spool.counters.transitions_produced} transitions produced, "
        f"{spool.pending_transitions()} spooled and not yet acked (resent by the next run of this actor)")
    return code
