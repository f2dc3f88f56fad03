"""Soft actor-critic with a critic ensemble (REDQ target subsets), high UTD and pixel encoders.

One ``update(batch)`` = ``utd_ratio`` critic updates on consecutive minibatches, the last of which
also updates the actor and the temperature (RLPD's scheme). Images go through a shared encoder that
only the critic loss trains; the actor reuses the critic step's features of the same minibatch, detached. The next observation is encoded
once, without gradient, by the online encoder and shared by the actor (for ``a'``) and the target
critics (DrQ-v2 style: only the critic MLPs have Polyak targets).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.agents.distributions import TanhGaussianPolicy, tanh_gaussian
from robot_rl.agents.ensemble import Critic
from robot_rl.agents.networks import (
    augment,
    batch_to_tensors,
    build_encoder,
    check_action_dim,
    mlp,
    observation_to_tensors,
    one_observation,
    split_batch,
)
from robot_rl.agents.base import AgentBase, group_weights
from robot_rl.agents.memory import keep_freed_memory
from robot_rl.agents.optim import adam_step, clip_gradients_, fused_adam_supported, keep_implementation, make_adam
from robot_rl.agents.sac_compiled import CompiledUpdate
from robot_rl.agents.sac_config import SACConfig  # noqa: F401 - re-exported: the config lives beside the agent's users
from robot_rl.agents.sac_functions import (  # noqa: F401 - td_target, critic_subset, trust_region_distance: re-exported
    GRIPPER_COMMANDS,
    critic_subset,
    frozen,
    gripper_index,
    polyak_update,
    td_target,
    to_floats,
    trust_region_distance,
)
from robot_rl.data.schema import Batch, ObsSpec, check_finite

class SACAgent(AgentBase):
    """SAC on canonical observations; see the module docstring and :class:`SACConfig`."""

    def __init__(self, obs_spec: ObsSpec, action_dim: int, config: SACConfig = SACConfig(), device: str = "cpu", seed: int = 0):
        if action_dim < (2 if config.hybrid_gripper else 1):
            raise ValueError(f"action_dim {action_dim} is too small (hybrid_gripper needs >= 2)")
        self._config, self._obs_spec, self._action_dim = config, obs_spec, int(action_dim)
        self._device = torch.device(device)
        if self._device.type == "cpu":
            keep_freed_memory()  # CPU updates page-fault their activations in again otherwise (memory.py)
        self._continuous_dim = action_dim - 1 if config.hybrid_gripper else action_dim
        self._target_entropy = -self._continuous_dim / 2 if config.target_entropy is None else config.target_entropy
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._build_networks()
        self._build_optimizers()
        self._generator = torch.Generator(device=self._device).manual_seed(seed)
        self._act_generator = torch.Generator(device=self._device).manual_seed(seed + 1_000_003)
        self._num_updates = 0
        self._actor_steps = 0  # actor optimizer steps taken (the learning-rate warm-up's clock)
        self._reference_actor: nn.Module | None = None  # the trust region's center (set_trust_region_reference)
        # optimizer steps skipped for a non-finite gradient since construction, counted on the device
        self._skipped_steps = torch.zeros((), device=self._device)
        # config.compile: the whole critic step and the whole full step, each one compiled graph (sac_compiled.py)
        self._compiled = CompiledUpdate(self) if config.compile else None

    def _build_networks(self) -> None:
        cfg = self._config
        self.encoder = build_encoder(self._obs_spec, cfg).to(self._device)
        features = self.encoder.out_dim
        self._actor = TanhGaussianPolicy(features, cfg.hidden_dims, self._continuous_dim).to(self._device)
        self._critic = Critic(cfg.num_critics, features, self._continuous_dim, cfg.hidden_dims).to(self._device)
        self._target_critic = copy.deepcopy(self._critic).requires_grad_(False)
        self._log_alpha = torch.tensor(math.log(cfg.init_temperature), device=self._device, requires_grad=True)
        self._gripper_critic = self._target_gripper_critic = None
        if cfg.hybrid_gripper:
            self._gripper_critic = mlp(features, cfg.hidden_dims, len(GRIPPER_COMMANDS)).to(self._device)
            self._target_gripper_critic = copy.deepcopy(self._gripper_critic).requires_grad_(False)

    def _build_optimizers(self) -> None:
        cfg = self._config
        encoder_params = [p for p in self.encoder.parameters() if p.requires_grad]
        self._critic_params = [*self._critic.parameters(), *encoder_params]
        # One (fused) Adam step updates every critic of the ensemble: their weights are stacked tensors.
        self._actor_opt = make_adam(self._actor.parameters(), cfg.actor_lr, self._device)
        self._critic_opt = make_adam(self._critic_params, cfg.critic_lr, self._device)
        self._temperature_opt = make_adam([self._log_alpha], cfg.temperature_lr, self._device)
        self._gripper_opt = None
        if self._gripper_critic is not None:
            self._gripper_opt = make_adam(self._gripper_critic.parameters(), cfg.critic_lr, self._device)

    @property
    def skipped_steps(self) -> int:
        """Optimizer steps skipped for a non-finite gradient since construction (reading it syncs)."""
        return int(self._skipped_steps.item())

    # ------------------------------------------------------------ acting

    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        """One canonical observation -> float32 action (A,) in [-1, 1] (the gripper, if hybrid, greedy)."""
        return self.act_batch(one_observation(obs), deterministic)[0]

    @torch.no_grad()
    def act_batch(self, obs: Mapping[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        """Canonical observations with a leading axis N -> float32 actions (N, A) in [-1, 1]."""
        features = self.encoder(observation_to_tensors(obs, self._obs_spec, self._device))
        if deterministic:
            action = self._actor.mode(features)
        else:
            action = self._actor.sample(features, self._act_generator)[0]
        if self._gripper_critic is not None:
            command = torch.tensor(GRIPPER_COMMANDS, device=self._device)[self._gripper_critic(features).argmax(-1)]
            action = torch.cat([action, command[:, None]], dim=-1)
        return action.cpu().numpy().astype(np.float32)

    # ------------------------------------------------------------ learning

    def update(self, batch: Batch) -> dict[str, float]:
        """``utd_ratio`` critic updates, the last one followed by the actor and temperature updates."""
        check_finite(batch)
        check_action_dim(batch, self._action_dim)
        minibatches = split_batch(batch_to_tensors(batch, self._device), self._config.utd_ratio)
        if self._compiled is not None:
            metrics = self._compiled.update(minibatches)
        else:
            for minibatch in minibatches[:-1]:
                self._critic_update(minibatch)
            metrics = self._full_update(minibatches[-1])
        self._num_updates += 1
        return to_floats(metrics)

    def update_critic(self, batch: Batch) -> dict[str, float]:
        """``utd_ratio`` critic updates and no actor or temperature update: a fresh critic's warm-up
        under a pre-trained actor (WSRL fine-tuning, :mod:`robot_rl.train.init_from`). Does not
        count in :attr:`num_updates`."""
        check_finite(batch)
        check_action_dim(batch, self._action_dim)
        for minibatch in split_batch(batch_to_tensors(batch, self._device), self._config.utd_ratio):
            if self._compiled is not None:
                metrics = self._compiled.critic_update(minibatch)
            else:
                metrics, _ = self._critic_update(minibatch)
        return to_floats(metrics)

    def _full_update(self, batch: Batch) -> dict[str, torch.Tensor]:
        metrics, features = self._critic_update(batch)
        metrics.update(self._actor_and_temperature_update(features, batch))
        return metrics

    def _critic_update(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One critic (and gripper critic) step with Polyak; returns metrics and detached obs features."""
        cfg = self._config
        features = self.encoder(augment(batch.obs, cfg.drq_pad, self._generator))
        with torch.no_grad():
            next_features = self.encoder(augment(batch.next_obs, cfg.drq_pad, self._generator))
        next_noise = self._noise(next_features)  # the generator's draws in the eager order: a', then the subset
        # All critics, in order, need no gather of their weights (N == M, e.g. the default 2/2).
        members = None if cfg.num_min_critics == cfg.num_critics else critic_subset(cfg.num_critics, cfg.num_min_critics, self._generator)
        alpha = self._log_alpha.detach().exp() if cfg.backup_entropy else None
        loss, qs, target = self._critic_loss(features, next_features, batch.action[:, : self._continuous_dim], batch.reward,
                                                batch.terminated, self._discount(batch), next_noise, members, alpha)
        grad_norm = self._step(self._critic_opt, loss, self._critic_params)
        polyak_update(self._target_critic, self._critic, cfg.tau)
        metrics = {"train/critic_loss": loss.detach(), "train/q_mean": qs.mean(),
                   "train/target_q_mean": target.mean(), "train/critic_grad_norm": grad_norm}
        features = features.detach()
        if self._gripper_critic is not None:
            metrics["train/gripper_loss"] = self._gripper_update(batch, features, next_features)
        return metrics, features

    def _critic_loss(self, features: torch.Tensor, next_features: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
                     terminated: torch.Tensor, discount: float | torch.Tensor, next_noise: torch.Tensor,
                     members: torch.Tensor | None, alpha: torch.Tensor | None, critic: Callable[..., torch.Tensor] | None = None,
                     ) -> tuple[torch.Tensor, ...]:
        """The critic step's forward: loss, detached Qs (N, B), target (B,). ``critic`` is the online
        critic to differentiate (the compiled update passes it with its parameters swapped in)."""
        critic = self._critic if critic is None else critic
        with torch.no_grad():
            next_action, next_log_prob = tanh_gaussian(*self._actor(next_features), next_noise)
            next_qs = self._target_critic(next_features, next_action, members)
            target = td_target(reward, terminated, next_qs, discount, next_log_prob, 0.0 if alpha is None else alpha)
        qs = critic(features, action)
        return F.mse_loss(qs, target.expand_as(qs)), qs.detach(), target

    def _actor_loss(self, features: torch.Tensor, noise: torch.Tensor, batch: Batch, alpha: torch.Tensor,
                    actor: Callable[..., tuple[torch.Tensor, torch.Tensor]], critic: Callable[..., torch.Tensor],
                    ) -> tuple[torch.Tensor, tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        """The actor's loss and ``(detached log pi(a|s), metrics of its extra terms)``; ``actor`` and
        ``critic`` are the networks to evaluate (no gradient may reach the critic's weights)."""
        mean, log_std = actor(features)  # one actor forward serves the sample and the BC term's mode
        action, log_prob = tanh_gaussian(mean, log_std, noise)
        q_mean = critic(features, action).mean(dim=0)
        loss = (alpha * log_prob - q_mean).mean()
        metrics = {}
        if self._config.trust_region_weight > 0:
            loss, distance = self._with_trust_region(loss, q_mean, mean, features)
            metrics["train/actor_trust_region"] = distance.detach()
        if self._config.bc_weight > 0 and batch.demo is not None:
            bc_loss = self._bc_loss(torch.tanh(mean), batch)
            loss = loss + self._config.bc_weight * bc_loss
            metrics["train/actor_bc_loss"] = bc_loss.detach()
        return loss, (log_prob.detach(), metrics)

    def _temperature_gradient(self, log_prob: torch.Tensor) -> torch.Tensor:
        """The gradient of the temperature loss -log_alpha * (mean log pi + target entropy), written down
        (no backward pass)."""
        return -(log_prob + self._target_entropy).mean()

    def _actor_metrics(self, actor_loss: torch.Tensor, grad_norm: torch.Tensor, log_prob: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"train/actor_loss": actor_loss.detach(), "train/actor_grad_norm": grad_norm,
                "train/temperature": self._log_alpha.detach().exp(), "train/entropy": -log_prob.mean()}

    def _noise(self, features: torch.Tensor) -> torch.Tensor:
        """Standard normal noise of one action per row, from the update generator."""
        return torch.randn((features.shape[0], self._continuous_dim), generator=self._generator, device=features.device)

    def _discount(self, batch: Batch) -> float | torch.Tensor:
        return self._config.discount if batch.discount is None else batch.discount

    def _actor_and_temperature_update(self, features: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        alpha = self._log_alpha.detach().exp()
        noise = self._noise(features)
        with frozen(self._critic):
            actor_loss, (log_prob, metrics) = self._actor_loss(features, noise, batch, alpha, self._actor, self._critic)
        self._ramp_actor_lr()
        actor_grad_norm = self._step(self._actor_opt, actor_loss, list(self._actor.parameters()))
        grad_log_alpha = self._temperature_gradient(log_prob)
        found_inf = (~torch.isfinite(grad_log_alpha)).to(torch.float32)
        adam_step(self._temperature_opt, [grad_log_alpha], found_inf)
        self._skipped_steps += found_inf
        return {**self._actor_metrics(actor_loss, actor_grad_norm, log_prob), **metrics}

    def _ramp_actor_lr(self) -> None:
        """During ``actor_lr_warmup_updates``, set the actor's learning rate for its next step (k/N of
        ``actor_lr`` at the k-th); counted on the host, so no sync."""
        warmup = self._config.actor_lr_warmup_updates
        if warmup:
            self._actor_steps += 1
            self._actor_opt.param_groups[0]["lr"] = self._config.actor_lr * min(1.0, self._actor_steps / warmup)

    def set_trust_region_reference(self) -> None:
        """Freeze a copy of the current actor as the center of the trust region (``trust_region_weight``)."""
        self._reference_actor = copy.deepcopy(self._actor).requires_grad_(False)

    def _with_trust_region(self, sac_loss: torch.Tensor, q_mean: torch.Tensor, mean: torch.Tensor,
                           features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The actor loss with the trust-region term, and the distance."""
        if self._reference_actor is None:
            raise RuntimeError("trust_region_weight > 0 needs a reference actor: set_trust_region_reference() (--init-from)")
        with torch.no_grad():
            reference = torch.tanh(self._reference_actor(features)[0])
        distance = trust_region_distance(torch.tanh(mean), reference)
        return sac_loss / q_mean.detach().abs().mean().clamp_min(1e-6) + self._config.trust_region_weight * distance, distance

    def _bc_loss(self, deterministic_action: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Mean squared error of the deterministic action against the demo action, over demo rows."""
        error = (deterministic_action - batch.action[:, : self._continuous_dim]).pow(2).mean(dim=-1)
        # No host sync on an all-online minibatch: the term is then 0 (not NaN).
        return (error * batch.demo).sum() / batch.demo.sum().clamp_min(1.0)

    def _gripper_loss(self, batch: Batch, features: torch.Tensor, next_features: torch.Tensor,
                      gripper_critic: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Double-DQN loss of the discrete gripper critic (on detached encoder features)."""
        command = gripper_index(batch.action[:, -1])
        with torch.no_grad():
            best_next = self._gripper_critic(next_features).argmax(-1, keepdim=True)
            next_q = self._target_gripper_critic(next_features).gather(-1, best_next).squeeze(-1)
            reward = batch.reward - self._config.gripper_penalty * (command != 1).float()
            target = td_target(reward, batch.terminated, next_q[None], self._discount(batch))
        q = gripper_critic(features).gather(-1, command[:, None]).squeeze(-1)
        return F.mse_loss(q, target)

    def _gripper_update(self, batch: Batch, features: torch.Tensor, next_features: torch.Tensor) -> torch.Tensor:
        """One step of the gripper critic and its Polyak target; returns the loss."""
        loss = self._gripper_loss(batch, features, next_features, self._gripper_critic)
        self._step(self._gripper_opt, loss, list(self._gripper_critic.parameters()))
        polyak_update(self._target_gripper_critic, self._gripper_critic, self._config.tau)
        return loss.detach()

    def _step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        """Gradients, clipped to the global norm, one step; returns the pre-clip gradient norm."""
        grads = list(torch.autograd.grad(loss, params, allow_unused=True))
        grad_norm = clip_gradients_([g for g in grads if g is not None], self._config.grad_clip_norm)
        # A loss made non-finite by the batch would turn every weight into NaN: that step is skipped
        # and counted (:attr:`skipped_steps`), without reading the norm back to the host.
        found_inf = (~torch.isfinite(grad_norm)).to(torch.float32)
        adam_step(optimizer, grads, found_inf)
        self._skipped_steps += found_inf
        return grad_norm

    # ------------------------------------------------------------ checkpoints and weights

    def _modules(self) -> dict[str, torch.nn.Module]:
        modules = {"encoder": self.encoder, "actor": self._actor, "critic": self._critic, "target_critic": self._target_critic}
        if self._gripper_critic is not None:
            modules.update(gripper_critic=self._gripper_critic, target_gripper_critic=self._target_gripper_critic)
        return modules

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers = {"actor": self._actor_opt, "critic": self._critic_opt, "temperature": self._temperature_opt}
        if self._gripper_opt is not None:
            optimizers["gripper"] = self._gripper_opt
        return optimizers

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bit-identically (a deep copy: safe to keep while training goes on)."""
        return copy.deepcopy({
            "modules": {name: module.state_dict() for name, module in self._modules().items()},
            "log_alpha": self._log_alpha.detach(),
            "optimizers": {name: opt.state_dict() for name, opt in self._optimizers().items()},
            "generators": {"update": self._generator.get_state(), "act": self._act_generator.get_state()},
            "num_updates": self._num_updates,
        })

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name, module in self._modules().items():
            module.load_state_dict(state["modules"][name])
        fused = fused_adam_supported(self._device)
        for name, optimizer in self._optimizers().items():
            optimizer.load_state_dict(state["optimizers"][name])
            keep_implementation(optimizer, fused)  # checkpoints before 2026-12 were saved by foreach Adam
        with torch.no_grad():
            self._log_alpha.copy_(torch.as_tensor(state["log_alpha"]))
        self._generator.set_state(state["generators"]["update"].cpu())
        self._act_generator.set_state(state["generators"]["act"].cpu())
        self._num_updates = int(state["num_updates"])
        actor_state = list(self._actor_opt.state.values())  # Adam counts the actor's steps (skipped ones excluded)
        self._actor_steps = int(actor_state[0]["step"]) if actor_state else 0

    def actor_state_dict(self) -> dict[str, torch.Tensor]:
        """CPU copies of the weights act() needs (encoder without the frozen backbone, actor, gripper critic)."""
        out = {f"encoder.{k}": v for k, v in self.encoder.trainable_state_dict().items()}
        out.update({f"actor.{k}": v for k, v in self._actor.state_dict().items()})
        if self._gripper_critic is not None:
            out.update({f"gripper_critic.{k}": v for k, v in self._gripper_critic.state_dict().items()})
        return {k: v.detach().cpu().clone() for k, v in out.items()}

    def load_actor_state_dict(self, weights: Mapping[str, Any]) -> None:
        """Load :meth:`actor_state_dict` output (tensors or numpy arrays); every key must match."""
        groups = group_weights(weights, ("encoder", "actor", "gripper_critic"))
        self.encoder.load_trainable_state_dict(groups["encoder"])
        self._actor.load_state_dict(groups["actor"])
        if self._gripper_critic is not None:
            self._gripper_critic.load_state_dict(groups["gripper_critic"])
        elif groups["gripper_critic"]:
            raise KeyError("gripper_critic weights given but hybrid_gripper is off")
