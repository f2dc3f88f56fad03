"""Typed training configuration; ``robot-rl train --help`` is generated from it (tyro)."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Literal

from robot_rl.agents.bc import BCConfig
from robot_rl.agents.registry import agent_entry
from robot_rl.agents.sac import SACConfig
from robot_rl.envs import EnvConfig, EnvOptions
from robot_rl.human.devices import check_device_name
from robot_rl.human.simulated import SimulatedHumanConfig
from robot_rl.vector import VECTORIZATIONS

@dataclasses.dataclass
class TrainConfig:
    """Train an agent on a robot_rl task or any gymnasium env (single process)."""

    env: EnvOptions = dataclasses.field(default_factory=EnvConfig)
    """The task, its backend, observations, env options and the seed (which also seeds the
    agent, the replay sampling and the random actions)."""
    algo: str = "sac"
    """sac: SAC/RLPD (online, with demos); bc: behaviour cloning on the demos alone."""
    num_envs: int = 1
    """Envs stepped together (a vector env); each step adds num-envs transitions and makes
    num-envs agent updates, so the update-to-data ratio does not change. Episodes of every
    sub-env are written to episode files."""
    vectorization: Literal["sync", "subprocess"] = "sync"
    """With --num-envs > 1: step the envs one after the other in this process (sync), or each in
    its own worker process (subprocess). A natively batched backend (e.g. --backend jax) ignores it."""
    demos: pathlib.Path | None = None
    """Directory of demonstration episode files (from `robot-rl record`)."""
    expert_demos: int = 0
    """Record this many scripted-expert demos into <out>/<name>/demos first (robot_rl tasks; ignored with --demos)."""
    demo_ratio: float = 0.5
    """Share of each batch drawn from the demo buffer (RLPD symmetric sampling: 0.5)."""
    pretrain_updates: int = 0
    """Agent updates on demo-only batches before the first env step (offline warm start; needs demos)."""
    steps: int = 15_000
    """Environment steps to train for (for bc: gradient updates)."""
    out: pathlib.Path = pathlib.Path("runs")
    """Parent directory of the run directory."""
    name: str | None = None
    """Run name (default: <task>-<algo>-<obs>-s<seed>)."""
    resume: bool = False
    """Continue the run in <out>/<name> from its last checkpoint and its episode files."""
    device: str = "cpu"
    """Torch device: cpu or cuda."""
    hil: str = "none"
    """Human in the loop: none, simulated, or a teleop device (`robot-rl envs` lists them) that can
    take over the training env (its steps are flagged as interventions and also go to the demo
    buffer). `simulated` is the task's scripted expert taking over when the policy strays (see
    --sim-human.*); evaluation is never assisted."""
    sim_human: SimulatedHumanConfig = dataclasses.field(default_factory=SimulatedHumanConfig)
    """Triggers of the simulated human (with --hil simulated)."""
    intervention_capacity: int = 50_000
    """Room in the demo buffer for intervention transitions (with --hil)."""
    reward_classifier: pathlib.Path | None = None
    """Train on the success reward of this classifier file (`robot-rl train-reward`) instead of the
    env's; the env renders the classifier's cameras even with --obs state (the agent still sees only
    the state). Evaluation reports the env's true success. Pair with env option
    terminate_on_success=false so the classifier, not the simulator, ends episodes."""
    random_steps: int = 0
    """Uniformly random actions for the first N env steps (exploration without demos)."""
    learning_starts: int = 256
    """Start updating once the online buffer holds this many transitions."""
    init_from: pathlib.Path | None = None
    """Start the actor from this pre-trained actor file (actor.pt of `robot-rl train-fused` or of a run,
    or its run directory); checked against the task, its options, the observation and action sizes and
    --sac.hidden-dims. Only the actor carries over: the critic starts fresh (robot_rl.train.init_from)."""
    init_residual_scale: float | None = None
    """With --init-from: keep the pre-trained actor pi0 frozen and learn a residual on top of it, executed
    action = clip(pi0(obs) + S * residual(obs)) with the residual in [-1, 1] starting at 0
    (robot_rl.train.residual); --sac.hidden-dims then sizes the residual, pi0 keeps its own sizes."""
    warmup_steps: int = 0
    """WSRL warm-up: no update before the online buffer holds this many transitions (rollouts of the
    current, e.g. pre-trained, policy; the larger of this and --learning-starts counts)."""
    critic_warmup_updates: int = 0
    """The first N updates train the critic alone (the actor stays as it is): a fresh critic learns the
    pre-trained actor's values before it steers it (sac only)."""
    warmup_as_demos: bool = False
    """After --warmup-steps, the warm-up episodes (the pre-trained policy's rollouts) also serve as
    demonstrations: --demo-ratio of every batch, with --sac.bc-weight pulling the actor toward their
    actions (an anchor against actor collapse; single-process `robot-rl train` only, without --demos)."""
    replay_capacity: int = 200_000
    """Online replay capacity in transitions (checked against available memory)."""
    eval_every: int = 2_500
    """Evaluate the deterministic policy every N env steps."""
    eval_episodes: int = 10
    """Episodes per evaluation."""
    checkpoint_every: int = 2_500
    """Write a checkpoint every N env steps (atomically)."""
    log_every: int = 250
    """Write train/* scalars every N env steps."""
    video_episodes: int = 2
    """Final-evaluation episodes to record into eval.mp4 (0: none)."""
    threads: int = 0
    """torch CPU threads (0: automatic: 1, or torch's one per core when updates run a conv image encoder;
    see robot_rl.train.setup.choose_threads)."""
    sac: SACConfig = dataclasses.field(default_factory=SACConfig)
    """SAC/RLPD agent settings."""
    bc: BCConfig = dataclasses.field(default_factory=BCConfig)
    """Behaviour-cloning settings."""

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"--steps must be >= 1, got {self.steps}")
        if not 0.0 <= self.demo_ratio <= 1.0:
            raise ValueError(f"--demo-ratio must be in [0, 1], got {self.demo_ratio}")
        for name in ("eval_every", "checkpoint_every", "log_every", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not agent_entry(self.algo).online and self.demos is None and self.expert_demos == 0:
            raise ValueError(f"--algo {self.algo} needs demonstrations: --demos DIR or --expert-demos N")
        if self.num_envs < 1 or self.vectorization not in VECTORIZATIONS:
            raise ValueError(f"--num-envs must be >= 1 and --vectorization one of {list(VECTORIZATIONS)}")
        check_device_name(self.hil)
        if self.warmup_steps < 0 or self.critic_warmup_updates < 0:
            raise ValueError("--warmup-steps and --critic-warmup-updates must be >= 0")
        if self.warmup_as_demos and (self.warmup_steps < 1 or self.demos is not None or self.expert_demos or self.hil != "none"):
            raise ValueError("--warmup-as-demos needs --warmup-steps > 0 and no other demonstrations (--demos, --expert-demos, --hil)")
        if self.init_residual_scale is not None and (self.init_from is None or self.algo != "sac"):
            raise ValueError("--init-residual-scale needs --init-from FILE (the frozen pi0) and --algo sac")
        if self.init_residual_scale is not None:
            from robot_rl.train.residual import check_scale

            check_scale(self.init_residual_scale)
        if self.algo == "sac" and self.sac.trust_region_weight > 0 and self.init_from is None:
            raise ValueError("--sac.trust-region-weight needs --init-from FILE (the pre-trained actor it keeps the actor near)")
        if self.critic_warmup_updates and self.algo != "sac":
            raise ValueError("--critic-warmup-updates needs --algo sac (an actor-critic agent)")
        if self.num_envs > 1 and self.hil not in ("none", "simulated"):
            raise ValueError(f"--hil {self.hil} is one person at one device: use --num-envs 1 (the simulated human "
                             "works with any --num-envs)")

    @property
    def agent_config(self):
        """The config of the --algo agent (its field: --sac.*, --bc.*)."""
        return getattr(self, agent_entry(self.algo).config_field)

    @property
    def run_name(self) -> str:
        return self.name or f"{self.env.task.replace('/', '_')}-{self.algo}-{self.env.obs}-s{self.env.seed}"

    @property
    def run_dir(self) -> pathlib.Path:
        return self.out / self.run_name
