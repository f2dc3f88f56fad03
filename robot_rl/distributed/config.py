"""Typed configs of ``robot-rl learner``, ``robot-rl actor`` and ``robot-rl launch`` (the CLI is
generated from them by tyro, :mod:`robot_rl.distributed.commands`)."""

from __future__ import annotations

import dataclasses
import pathlib

from robot_rl.agents.sac import SACConfig
from robot_rl.distributed.bounds import DEFAULT_MAX_ABS_OBSERVATION, DEFAULT_MAX_ABS_REWARD
from robot_rl.envs import EnvConfig, EnvOptions
from robot_rl.human.devices import check_device_name
from robot_rl.human.simulated import SimulatedHumanConfig
from robot_rl.train.config import TrainConfig
from robot_rl.transport import DEFAULT_TRANSITIONS_ENDPOINT, DEFAULT_WEIGHTS_ENDPOINT


@dataclasses.dataclass
class LearnerConfig(TrainConfig):
    """The learner of an actor/learner run: stores what actors send, trains SAC/RLPD on it and
    publishes weights. Actors (`robot-rl actor`) may run on other machines and may crash or
    restart at any time; so may the learner (`--resume`). Writes <out>/<name>/: episodes/,
    store/ (chunks of episodes in progress), checkpoint.pt, TensorBoard logs, eval.csv, curve.png.
    Actor-side options (--random-steps, --video-episodes) are ignored here."""

    steps: int = 15_000
    """Stop (with a final checkpoint) once this many transitions from all actors are stored."""
    checkpoint_every: int = 1_000
    """Write a checkpoint (agent, optimizers, counters; atomically) every N agent updates, and at exit."""
    checkpoint_every_s: float = 60.0
    """Also write one once this many seconds passed since the last, if the agent updated since (0: by
    updates only); a crash loses the updates since the last checkpoint, and --resume says how many."""
    log_every: int = 100
    """Write train/* scalars every N agent updates."""
    eval_every: int = 2_500
    """Evaluate the deterministic policy every N stored transitions (with --eval)."""
    hil: str = "none"
    """Actors have a human in the loop (none, simulated, or a teleop device: `robot-rl envs` lists
    them): keep --intervention-capacity room in the demo buffer for
    the steps they flag as interventions (they also go to the online buffer either way)."""
    bind: str = DEFAULT_TRANSITIONS_ENDPOINT
    """ROUTER endpoint for actors (hello, transitions, stats, heartbeats). Loopback unless --bind-remote."""
    weights_bind: str = DEFAULT_WEIGHTS_ENDPOINT
    """PUB endpoint the weights are broadcast on."""
    bind_remote: bool = False
    """Allow binding addresses other machines can reach (tcp://*:5555, a LAN address); needs --keys."""
    keys: pathlib.Path | None = None
    """CURVE keys directory from `robot-rl keys` (learner.key_secret, authorized_actors/); none: no
    encryption or authentication (loopback only)."""
    publish_every: int = 50
    """Publish new weights every N agent updates (the current ones are also re-sent every 5 s)."""
    eval: bool = True
    """Evaluate the deterministic policy in a local sim env every --eval-every transitions; training
    pauses meanwhile (actors are still served between evaluation steps). Off for real-robot backends."""
    max_message_mb: float = 64.0
    """Largest message accepted from an actor, in MiB (bigger ones are logged and dropped; a single
    bigger frame makes ZeroMQ drop the connection)."""
    max_abs_reward: float = DEFAULT_MAX_ABS_REWARD
    """Refuse chunks holding a reward of larger magnitude (inf: any finite reward)."""
    max_abs_observation: float = DEFAULT_MAX_ABS_OBSERVATION
    """Refuse chunks holding a float observation (the state) of larger magnitude (inf: any finite value)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.algo != "sac":
            raise ValueError("the distributed learner trains SAC/RLPD; behaviour cloning needs no actors (robot-rl train --algo bc)")
        if self.warmup_as_demos:
            raise ValueError("--warmup-as-demos is an option of the single-process `robot-rl train`, not of the learner")
        if self.publish_every < 1 or self.max_message_mb <= 0:
            raise ValueError("--publish-every must be >= 1 and --max-message-mb > 0")
        if not (self.max_abs_reward > 0 and self.max_abs_observation > 0 and self.checkpoint_every_s >= 0):
            raise ValueError("--max-abs-reward and --max-abs-observation must be > 0 (inf: no limit), --checkpoint-every-s >= 0")

    @property
    def run_name(self) -> str:
        return self.name or f"{self.env.task.replace('/', '_')}-distributed-{self.env.obs}-s{self.env.seed}"

    @property
    def max_message_bytes(self) -> int:
        return int(self.max_message_mb * 2**20)


@dataclasses.dataclass
class ActorConfig:
    """An actor: runs the policy on one env (sim or a real robot) at the control rate, sends every
    transition to the learner (spooled to disk first, resent until acked) and swaps in the
    learner's newest weights between steps. It never waits for the learner: with the learner
    away it keeps acting on its current weights and spooling."""

    id: str
    """This actor's id: names its data on the learner, its spool and (unless --key-name) its key pair."""
    env: EnvOptions = dataclasses.field(default_factory=EnvConfig)
    """The task (or gymnasium id), observations and env options: they must match the learner's;
    the backend is this actor's robot (sim or a real one); the seed seeds the policy's sampling,
    the random actions and the first env reset."""
    learner: str = DEFAULT_TRANSITIONS_ENDPOINT
    """The learner's ROUTER endpoint, e.g. tcp://192.168.1.10:5555."""
    weights: str | None = None
    """The learner's weights (PUB) endpoint (default: the --learner host, port + 1)."""
    keys: pathlib.Path | None = None
    """CURVE keys directory holding learner.key and this actor's <key-name>.key_secret."""
    key_name: str | None = None
    """Name of this actor's key pair in --keys (default: --id)."""
    spool: pathlib.Path | None = None
    """Spool directory (default <out>/<name>/spool/<id>); reusing it continues this actor's numbering."""
    out: pathlib.Path = pathlib.Path("runs")
    """Parent of the run directory that holds the default spool."""
    name: str = "actors"
    """Run directory name under --out for the default spool (launch passes the learner's run name)."""
    max_hz: float = 0.0
    """Most control steps per second (0: as fast as the env steps; a real env keeps its own rate)."""
    steps: int = 0
    """Stop once this actor id has produced N transitions, counted across restarts (0: run until Ctrl-C)."""
    chunk_steps: int = 10
    """Steps per transitions message; a kill -9 loses at most the chunk being filled (chunk-steps - 1 steps)."""
    queue_size: int = 100
    """Chunks the control loop may queue for the network thread before it waits (never drops)."""
    flush_s: float = 10.0
    """On exit, wait this long for the learner to ack what is spooled (the rest is resent next run)."""
    random_steps: int = 0
    """Uniformly random actions until this actor has produced N transitions."""
    hil: str = "none"
    """A human can take over: none, simulated, or a teleop device (`robot-rl envs` lists them);
    the steps are flagged as interventions."""
    sim_human: SimulatedHumanConfig = dataclasses.field(default_factory=SimulatedHumanConfig)
    """Triggers of the simulated human (with --hil simulated)."""
    sac: SACConfig = dataclasses.field(default_factory=SACConfig)
    """Agent settings: must match the learner's (the hello compares them)."""
    init_from: pathlib.Path | None = None
    """Fly this pre-trained actor file (actor.pt of `robot-rl train-fused`) from the first step, until the
    learner's weights arrive (a learner started with the same --init-from publishes it as v0); checked
    like the learner's --init-from."""
    init_residual_scale: float | None = None
    """With --init-from: the learner learns a residual on the frozen pre-trained actor (its
    --init-residual-scale); the actor must build the same policy to load its weights."""
    device: str = "cpu"
    """Torch device of the policy."""
    threads: int = 1
    """torch CPU threads for the policy (1 keeps the control loop's latency steady)."""

    def __post_init__(self) -> None:
        from robot_rl.distributed.common import check_actor_id

        check_actor_id(self.id)
        check_device_name(self.hil)
        if self.chunk_steps < 1 or self.queue_size < 1 or self.steps < 0 or self.max_hz < 0:
            raise ValueError("--chunk-steps and --queue-size must be >= 1, --steps and --max-hz >= 0")

    @property
    def spool_dir(self) -> pathlib.Path:
        return self.spool or self.out / self.name / "spool" / self.id

    @property
    def weights_endpoint(self) -> str:
        if self.weights is not None:
            return self.weights
        head, _, port = self.learner.rpartition(":")
        if not port.isdigit():
            raise ValueError(f"cannot derive the weights endpoint from --learner {self.learner}; pass --weights")
        return f"{head}:{int(port) + 1}"

    def train_config(self) -> TrainConfig:
        """The training config the learner builds its env and agent from (same fields)."""
        return TrainConfig(env=self.env, sac=self.sac, device=self.device, init_from=self.init_from,
                           init_residual_scale=self.init_residual_scale)


@dataclasses.dataclass
class LaunchConfig(LearnerConfig):
    """One learner and N simulated actors on this machine, as subprocesses, with CURVE keys
    generated in <out>/<name>/keys (if missing). Prints every process's output prefixed with
    [learner] / [actor-0] ...; Ctrl-C or SIGTERM (or the learner finishing) stops them all; a learner
    that dies is restarted with --resume (--no-restart-learner: stops them all). Takes every learner
    option; the env, agent and --hil options go to the actors too."""

    actors: int = 2
    """Number of simulated actors (ids actor-0, actor-1, ...; actor i gets --seed seed+1+i)."""
    actor_max_hz: float = 10.0
    """--max-hz of each actor. The default, a real arm's 10 Hz control rate, makes sim actors produce
    data as robots would, so the learner (~40 updates/s on 2 CPU cores) keeps a useful update-to-data
    ratio; 0 runs them as fast as the sim goes (the learner then falls far behind on a CPU)."""
    actor_steps: int = 0
    """--steps of each actor (0: until stopped)."""
    chunk_steps: int = 10
    """--chunk-steps of each actor."""
    stop_timeout_s: float = 15.0
    """After SIGTERM, wait this long for each process to exit before SIGKILL."""
    restart_learner: bool = True
    """Restart a learner that died (crash, kill, out of memory) with --resume while the actors keep
    running (they spool and resend); at most 5 times in 10 minutes. Off: its death stops all."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.actors < 1:
            raise ValueError("--actors must be >= 1")
        if self.hil not in ("none", "simulated"):
            raise ValueError("launch runs simulated actors: --hil none or simulated (start a teleop actor with `robot-rl actor --hil ...`)")
