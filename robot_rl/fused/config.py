"""The fused trainer's settings, importable without JAX (the CLI builds its parser from them)."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class TD3Config:
    """Hyperparameters of the fused TD3.

    Attributes:
        actor_hidden_dims: the actor's hidden widths (also the torch actor's ``--sac.hidden-dims``).
        critic_hidden_dims: each critic's hidden widths.
        discount: gamma.
        tau: Polyak rate of the target networks, per actor step.
        actor_lr, critic_lr: Adam learning rates.
        batch_size: transitions per critic step.
        policy_delay: critic steps per actor step.
        target_noise, target_noise_clip: target policy smoothing (std and clip of the noise on a').
        initial_log_std: the log-std the converted actor's stochastic head gives (TD3 never trains it).
        alpha: weight of the normalized Q term when ``bc_weight > 0`` (TD3+BC's 2.5).
        bc_weight, bc_final_weight, bc_decay_updates: the expert term's weight, from first to last actor step.
        critic_warmup_updates: updates that train the critics alone before the actor's first step (the
            actor, e.g. a fresh one acting near the task's safe fallback, is not steered by a critic
            that knows nothing yet).
    """

    actor_hidden_dims: tuple[int, ...] = (64, 64)
    critic_hidden_dims: tuple[int, ...] = (64, 64)
    discount: float = 0.99
    tau: float = 0.005
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    batch_size: int = 128
    policy_delay: int = 2
    target_noise: float = 0.1
    target_noise_clip: float = 0.3
    initial_log_std: float = math.log(0.1)
    alpha: float = 2.5
    bc_weight: float = 0.0
    bc_final_weight: float = 0.0
    bc_decay_updates: int = 1
    critic_warmup_updates: int = 0

    def __post_init__(self) -> None:
        for name in ("actor_hidden_dims", "critic_hidden_dims"):
            dims = tuple(int(d) for d in getattr(self, name))
            if not dims or min(dims) < 1:
                raise ValueError(f"TD3Config.{name} must be one or more widths >= 1, got {getattr(self, name)!r}")
            object.__setattr__(self, name, dims)
        checks = [(0.0 <= self.discount < 1.0, "discount must be in [0, 1)"), (0.0 < self.tau <= 1.0, "tau must be in (0, 1]"),
                  (min(self.actor_lr, self.critic_lr) > 0, "learning rates must be > 0"),
                  (self.batch_size >= 1 and self.policy_delay >= 1, "batch_size and policy_delay must be >= 1"),
                  (self.target_noise >= 0 and self.target_noise_clip >= 0, "target noise and its clip must be >= 0"),
                  (min(self.alpha, self.bc_weight, self.bc_final_weight) >= 0, "alpha and the bc weights must be >= 0"),
                  (self.bc_decay_updates >= 1, "bc_decay_updates must be >= 1"),
                  (self.critic_warmup_updates >= 0, "critic_warmup_updates must be >= 0")]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"TD3Config: {message}")


@dataclasses.dataclass(frozen=True)
class RewardCurriculum:
    """A curriculum on the reward's weights (Learning to Fly in Seconds ramps its penalties up):
    while the first ``steps`` env steps are collected the cost weights go linearly from
    ``start_weights`` to the task's own (its reward at the end), and an action penalty
    ``action_weight * |a|^2`` (the executed action; with residual actions its distance from the
    task's fallback) from ``action_weight_start`` to ``action_weight_final``. Each transition's
    reward is the one at the weights of the step that collected it.

    Attributes:
        start_weights: the cost weights at step 0, in the task's order (quad_hover: pos, vel, tilt,
            rate); empty: the task's throughout.
        action_weight_start, action_weight_final: the action penalty's weight at step 0 and from
            ``steps`` on (0 and 0: none; a final weight > 0 trains for another reward than the task's).
        steps: env steps the ramp takes.
    """

    start_weights: tuple[float, ...] = ()
    action_weight_start: float = 0.0
    action_weight_final: float = 0.0
    steps: int = 100_000

    def __post_init__(self) -> None:
        weights = tuple(float(w) for w in self.start_weights)
        if not all(math.isfinite(w) and w >= 0 for w in weights):
            raise ValueError(f"RewardCurriculum.start_weights must be finite and >= 0, got {self.start_weights!r}")
        object.__setattr__(self, "start_weights", weights)
        for name in ("action_weight_start", "action_weight_final"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"RewardCurriculum.{name} must be finite and >= 0, got {getattr(self, name)}")
        if self.steps < 1:
            raise ValueError(f"RewardCurriculum.steps must be >= 1, got {self.steps}")

    @property
    def enabled(self) -> bool:
        return bool(self.start_weights) or self.action_weight_start > 0 or self.action_weight_final > 0


@dataclasses.dataclass(frozen=True)
class FusedConfig:
    """The fused loop's settings (the algorithm's are :class:`~robot_rl.fused.td3.TD3Config`).

    Attributes:
        num_envs: envs stepped together per iteration.
        env_steps: transitions to collect in all (iterations x num_envs; rounded up to whole chunks).
        updates_per_step: TD3 updates per iteration (each ``policy_delay`` critic steps, one actor step).
        learning_starts: transitions in the buffer before the first update.
        exploration_noise: std of the Gaussian noise on the actor's action while collecting.
        replay_capacity: replay ring size in transitions (rounded down to a multiple of num_envs).
        chunk_steps: iterations per jitted call (the host reports between calls).
        seed: seeds the networks, the env and the noise.
        curriculum: the reward weights' schedule (:class:`RewardCurriculum`; default: none).
    """

    num_envs: int = 64
    env_steps: int = 256_000
    updates_per_step: int = 1
    learning_starts: int = 4_096
    exploration_noise: float = 0.1
    replay_capacity: int = 262_144
    chunk_steps: int = 100
    seed: int = 0
    td3: TD3Config = dataclasses.field(default_factory=TD3Config)
    curriculum: RewardCurriculum = dataclasses.field(default_factory=RewardCurriculum)

    def __post_init__(self) -> None:
        for name in ("num_envs", "env_steps", "updates_per_step", "chunk_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"FusedConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.replay_capacity < max(self.num_envs, self.td3.batch_size):
            raise ValueError(f"replay_capacity {self.replay_capacity} must hold at least num_envs ({self.num_envs}) "
                             f"and batch_size ({self.td3.batch_size}) transitions")
        if not self.exploration_noise >= 0 or self.learning_starts < 0:
            raise ValueError("exploration_noise and learning_starts must be >= 0")

    @property
    def chunks(self) -> int:
        return -(-self.env_steps // (self.num_envs * self.chunk_steps))

    @property
    def capacity(self) -> int:
        return self.replay_capacity - self.replay_capacity % self.num_envs
