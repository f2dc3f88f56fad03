"""A straightforward SAC/RLPD update, written the slow way, to check SACAgent's fast one against.

State observations only (the encoder is the identity on ``state``). Critics are evaluated one
member at a time with plain ops, the target minimum is taken over a Python list, the optimizers
are ``torch.optim.Adam(foreach=False)`` (the single-tensor loop, not the fused kernel the agent
uses) loaded from the agent's own optimizer state, and every step reads its gradient norm back
to the host. The random draws come from a generator restored from the agent's state_dict and are
made in the agent's documented order: per critic step the policy's noise at s', then (M < N) the
critic subset; then the actor's noise at s.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F


def _leaves(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().requires_grad_(True) for k, v in state.items()}


def critic_member(p: dict[str, torch.Tensor], i: int, x: torch.Tensor, layers: int) -> torch.Tensor:
    """Q of ensemble member ``i`` on ``x = [features, action]``: (B,)."""
    for k in range(layers):
        x = x @ p[f"net.linears.{k}.weight"][i] + p[f"net.linears.{k}.bias"][i, 0]
        x = F.layer_norm(x, x.shape[-1:]) * p[f"net.norms.{k}.weight"][i, 0] + p[f"net.norms.{k}.bias"][i, 0]
        x = torch.relu(x)
    return (x @ p["net.out.weight"][i] + p["net.out.bias"][i, 0])[:, 0]


def actor_mean_log_std(p: dict[str, torch.Tensor], features: torch.Tensor, layers: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = features
    for k in range(layers):
        x = F.linear(x, p[f"trunk.{3 * k}.weight"], p[f"trunk.{3 * k}.bias"])
        x = torch.relu(F.layer_norm(x, x.shape[-1:], p[f"trunk.{3 * k + 1}.weight"], p[f"trunk.{3 * k + 1}.bias"]))
    mean, log_std = F.linear(x, p["head.weight"], p["head.bias"]).chunk(2, dim=-1)
    return mean, log_std.clamp(-10.0, 2.0)


def sample(mean: torch.Tensor, log_std: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """tanh(N(mean, std)) and its log-probability, from torch.distributions plus the tanh Jacobian."""
    noise = torch.randn(mean.shape, generator=generator)
    pre_tanh = mean + log_std.exp() * noise
    log_prob = torch.distributions.Normal(mean, log_std.exp()).log_prob(pre_tanh).sum(-1)
    # log(1 - tanh(u)^2) in float64: in float32 it loses all precision once |u| > ~5
    log_det = torch.log1p(-torch.tanh(pre_tanh.double()) ** 2).sum(-1).float()
    return torch.tanh(pre_tanh), log_prob - log_det


class ReferenceSAC:
    """The agent's networks and optimizers rebuilt from ``SACAgent.state_dict()``, updated the slow way."""

    def __init__(self, state: dict[str, Any], config: Any, action_dim: int):
        self.cfg, self.action_dim = config, action_dim
        self.layers = len(config.hidden_dims)
        modules = state["modules"]
        self.critic, self.actor = _leaves(modules["critic"]), _leaves(modules["actor"])
        self.target = {k: v.detach().clone() for k, v in modules["target_critic"].items()}
        self.log_alpha = state["log_alpha"].detach().clone().requires_grad_(True)
        self.opts = {
            "critic": torch.optim.Adam(list(self.critic.values()), lr=config.critic_lr, foreach=False),
            "actor": torch.optim.Adam(list(self.actor.values()), lr=config.actor_lr, foreach=False),
            "temperature": torch.optim.Adam([self.log_alpha], lr=config.temperature_lr, foreach=False),
        }
        for name, opt in self.opts.items():
            opt.load_state_dict(state["optimizers"][name])
            for group in opt.param_groups:
                group["foreach"], group["fused"] = False, None
        self.generator = torch.Generator().manual_seed(0)
        self.generator.set_state(state["generators"]["update"])
        self.target_entropy = -action_dim / 2 if config.target_entropy is None else config.target_entropy

    def q_values(self, params: dict[str, torch.Tensor], features: torch.Tensor, action: torch.Tensor, members: list[int]) -> list[torch.Tensor]:
        x = torch.cat([features, action], dim=-1)
        return [critic_member(params, i, x, self.layers) for i in members]

    def _step(self, name: str, loss: torch.Tensor, params: list[torch.Tensor], clip: bool = True) -> None:
        self.opts[name].zero_grad()
        loss.backward()
        if clip:
            norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip_norm, foreach=False)
            if not math.isfinite(float(norm)):
                return
        self.opts[name].step()

    def critic_step(self, batch: Any) -> float:
        cfg = self.cfg
        with torch.no_grad():
            next_action, next_log_prob = sample(*actor_mean_log_std(self.actor, batch.next_obs["state"], self.layers), self.generator)
            members = list(range(cfg.num_critics))
            if cfg.num_min_critics < cfg.num_critics:
                members = torch.randperm(cfg.num_critics, generator=self.generator)[: cfg.num_min_critics].tolist()
            next_q = torch.stack(self.q_values(self.target, batch.next_obs["state"], next_action, members)).min(dim=0).values
            alpha = self.log_alpha.exp() if cfg.backup_entropy else 0.0
            discount = cfg.discount if batch.discount is None else batch.discount
            target = batch.reward + discount * (1.0 - batch.terminated) * (next_q - alpha * next_log_prob)
        qs = self.q_values(self.critic, batch.obs["state"], batch.action, list(range(cfg.num_critics)))
        loss = sum(((q - target) ** 2).mean() for q in qs) / len(qs)
        self._step("critic", loss, list(self.critic.values()))
        with torch.no_grad():
            for key, value in self.critic.items():
                self.target[key] = (1.0 - cfg.tau) * self.target[key] + cfg.tau * value
        return float(loss.detach())

    def actor_step(self, batch: Any) -> float:
        cfg, state = self.cfg, batch.obs["state"]
        alpha = self.log_alpha.detach().exp()
        mean, log_std = actor_mean_log_std(self.actor, state, self.layers)
        action, log_prob = sample(mean, log_std, self.generator)
        frozen = {k: v.detach() for k, v in self.critic.items()}
        q_mean = sum(self.q_values(frozen, state, action, list(range(cfg.num_critics)))) / cfg.num_critics
        loss = (alpha * log_prob - q_mean).mean()
        if cfg.bc_weight > 0 and batch.demo is not None:
            error = ((torch.tanh(mean) - batch.action) ** 2).mean(dim=-1)
            loss = loss + cfg.bc_weight * (error * batch.demo).sum() / max(float(batch.demo.sum()), 1.0)
        self._step("actor", loss, list(self.actor.values()))
        temperature_loss = -self.log_alpha * (log_prob.detach() + self.target_entropy).mean()
        self._step("temperature", temperature_loss, [self.log_alpha], clip=False)
        return float(loss.detach())

    def update(self, minibatches: list[Any]) -> dict[str, float]:
        """utd_ratio - 1 critic steps, then a critic step, an actor step and a temperature step."""
        for minibatch in minibatches[:-1]:
            self.critic_step(minibatch)
        critic_loss = self.critic_step(minibatches[-1])
        return {"train/critic_loss": critic_loss, "train/actor_loss": self.actor_step(minibatches[-1])}
