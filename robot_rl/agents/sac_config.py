"""The hyperparameters of :class:`~robot_rl.agents.sac.SACAgent` (``--sac.*``), apart from the agent's code."""

from __future__ import annotations

import dataclasses

from robot_rl.agents.base import EncoderConfig


@dataclasses.dataclass
class SACConfig(EncoderConfig):
    """Hyperparameters of :class:`SACAgent` (the image-encoder fields come from EncoderConfig)."""

    hidden_dims: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor and of each critic MLP."""
    num_critics: int = 2
    """N: critics in the ensemble (the actor maximizes their mean)."""
    num_min_critics: int = 2
    """M: size of the random critic subset whose minimum forms the target (M <= N; N=10, M=2 is REDQ)."""
    discount: float = 0.97
    """Discount factor gamma (0.97: with a sparse reward, values of states that never lead to
    success decay 3x faster than at 0.99; at 0.99 the critic kept ~0.8 on failing pick_cube states)."""
    tau: float = 0.005
    """Polyak rate of the target critics, applied after every critic update."""
    actor_lr: float = 1e-3
    """Adam learning rate of the actor (1e-3 beat 3e-4 on sparse pick_cube at UTD 1: 20% vs 0%
    eval success after 15k steps, one seed each)."""
    critic_lr: float = 1e-3
    """Adam learning rate of the critics, the image encoder and the gripper critic."""
    temperature_lr: float = 3e-4
    """Adam learning rate of the log-temperature."""
    init_temperature: float = 0.01
    """Initial entropy temperature alpha. Small, because robot rewards are O(1) per episode: at 1.0
    the entropy bonus outweighs a sparse 0/1 reward and the policy stays uniform (measured on
    pick_cube)."""
    target_entropy: float | None = None
    """Entropy the temperature steers the policy to; None means -(continuous action dims) / 2."""
    backup_entropy: bool = True
    """Subtract alpha * log pi(a'|s') in the TD target (soft backup)."""
    grad_clip_norm: float = 10.0
    """Clip actor and critic gradients to this global norm (inf disables; the metric is the pre-clip norm)."""
    utd_ratio: int = 1
    """Critic updates per update() call; the batch holds utd_ratio minibatches of batch_size."""
    batch_size: int = 256
    """Transitions per minibatch (what the trainer samples; update() splits by utd_ratio)."""
    hybrid_gripper: bool = False
    """The last action dim is a gripper command in {close=-1, stay=0, open=+1} chosen by a discrete critic."""
    gripper_penalty: float = 0.0
    """Subtracted from the gripper critic's reward for every non-'stay' gripper command."""
    n_step: int = 3
    """n-step TD targets: sum up to n rewards inside the episode before bootstrapping (the
    trainer samples n-step transitions; 1 is plain SAC/RLPD). Shortens the credit-assignment
    chain of a sparse reward n-fold."""
    compile: bool = False
    """Run each update step as one compiled graph (``torch.compile(fullgraph=True)``,
    :mod:`robot_rl.agents.sac_compiled`): the whole critic step (forward, gradients, clipping, Adam,
    Polyak, gripper critic) and the whole full step (plus the actor and the temperature). The numbers
    are the eager update's up to float rounding (random draws stay outside the graphs). About 1.3x
    less CPU per state update here (README, "Learner speed"), after ~40-60 s of compilation at the
    first update (a few seconds from inductor's on-disk cache in a later process with the same
    thread count)."""
    bc_weight: float = 1.0
    """Weight of a behaviour-cloning term in the actor loss: mean squared error between the actor's
    deterministic action and the demo action, on the batch's demo transitions (0 disables, and it
    does nothing without demos; it keeps the policy near the demonstrations while the
    sparse-reward critic is still wrong)."""
    trust_region_weight: float = 0.0
    """Weight w of a trust region around a frozen reference actor (fine-tuning a pre-trained one, set by
    :meth:`SACAgent.set_trust_region_reference`): w * mean((tanh(mu(s)) - tanh(mu0(s)))^2) on every batch,
    with the SAC term divided by mean|Q| (TD3+BC's normalization, so w means the same whatever the
    reward scale). 0 disables."""
    actor_lr_warmup_updates: int = 0
    """Actor steps over which the actor's learning rate ramps linearly up to ``actor_lr`` (k/N of it at
    the k-th step; 0: none). For fine-tuning a pre-trained actor: Adam's first steps move every weight
    by about the learning rate whatever the gradient's size, which alone threw a hovering quadrotor
    policy from 4 to 27 cm (README, "Fine-tuning a pre-trained policy")."""

    def __post_init__(self) -> None:
        self.hidden_dims = tuple(int(h) for h in self.hidden_dims)
        checks = [
            (1 <= self.num_min_critics <= self.num_critics, "need 1 <= num_min_critics <= num_critics"),
            (0.0 <= self.discount <= 1.0, "discount must be in [0, 1]"),
            (0.0 < self.tau <= 1.0, "tau must be in (0, 1]"),
            (min(self.actor_lr, self.critic_lr, self.temperature_lr) > 0, "learning rates must be > 0"),
            (self.init_temperature > 0, "init_temperature must be > 0"),
            (self.grad_clip_norm > 0, "grad_clip_norm must be > 0 (inf disables clipping)"),
            (self.utd_ratio >= 1 and self.batch_size >= 1, "utd_ratio and batch_size must be >= 1"),
            (self.bc_weight >= 0, "bc_weight must be >= 0"),
            (self.trust_region_weight >= 0, "trust_region_weight must be >= 0"),
            (self.actor_lr_warmup_updates >= 0, "actor_lr_warmup_updates must be >= 0"),
            (self.n_step >= 1, "n_step must be >= 1"),
        ]
        for message in [m for ok, m in checks if not ok] + self.encoder_problems():
            raise ValueError(f"SACConfig: {message}")
