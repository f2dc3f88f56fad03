"""Residual fine-tuning: a frozen pre-trained actor pi0 plus a learned, bounded residual.

``--init-from FILE --init-residual-scale S``: the executed action is
``clip(pi0(obs) + S * r, -1, 1)`` where ``r`` in [-1, 1] is the action of an ordinary SAC agent (the
residual learner) whose mean head starts at zero, so its deterministic action is 0 and the policy
flies exactly pi0 at step 0; its exploration is bounded by ``S``. pi0 never changes, so the
pre-trained hold cannot be lost by an untrained critic's pull on its weights (the collapse the README's
table measured with ``--init-from`` alone): the residual can move each action by at most ``S``.

The buffers store the **executed** action (what the env received), as for any agent; the residual
learner sees ``r = clip((a - pi0(s)) / S, -1, 1)``, which executes to the same ``a`` (where ``a`` was
clipped at +-1, ``r`` is the smallest residual that reaches it). :class:`ResidualAgent` is the whole
thing behind the Agent contract, so the trainer, the learner and the actors build, update, publish and
load it like a plain agent. Its actor weights (``actor.pt``, what a learner publishes) say what they
are: ``base.*`` (pi0), ``residual.*`` (the residual actor) and ``residual_scale``;
:func:`load_policy` rebuilds either kind of actor file.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Mapping

import numpy as np
import torch

from robot_rl.agents.networks import one_observation
from robot_rl.data.schema import Batch, ObsSpec
from robot_rl.train.init_from import ActorSizes, load_pretrained_actor, read_actor_file

SCALE_KEY = "residual_scale"


def check_scale(scale: float) -> float:
    if not 0.0 < scale <= 2.0:
        raise ValueError(f"--init-residual-scale must be in (0, 2] (actions live in [-1, 1]), got {scale}")
    return float(scale)


def zero_mean_head(agent: Any) -> None:
    """Zero the rows of the actor head that output the action mean: the deterministic action is tanh(0) = 0."""
    head = agent._actor.head
    with torch.no_grad():
        rows = head.out_features // 2
        head.weight[:rows].zero_()
        head.bias[:rows].zero_()


class ResidualAgent:
    """``clip(pi0(obs) + scale * residual(obs), -1, 1)``; only the residual SAC agent learns."""

    def __init__(self, residual: Any, base: Any, scale: float):
        if getattr(residual.config, "hybrid_gripper", False):
            raise ValueError("--init-residual-scale does not support --sac.hybrid-gripper (a discrete gripper has no residual)")
        if residual.action_dim != base.action_dim:
            raise ValueError(f"residual actions {residual.action_dim} != pre-trained actions {base.action_dim}")
        self.residual, self.base, self.scale = residual, base, check_scale(scale)

    config = property(lambda self: self.residual.config)
    obs_spec = property(lambda self: self.residual.obs_spec)
    action_dim = property(lambda self: self.residual.action_dim)
    num_updates = property(lambda self: self.residual.num_updates)

    def __getattr__(self, name: str) -> Any:  # skipped_steps and other read-only extras of the residual learner
        if name in ("residual", "base", "scale"):
            raise AttributeError(name)
        return getattr(self.residual, name)

    # ------------------------------------------------------------ acting
    def executed(self, base_action: np.ndarray, residual_action: np.ndarray) -> np.ndarray:
        return np.clip(base_action + self.scale * residual_action, -1.0, 1.0).astype(np.float32)

    def act_batch(self, obs: Mapping[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        return self.executed(self.base.act_batch(obs, True), self.residual.act_batch(obs, deterministic))

    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        return self.act_batch(one_observation(obs), deterministic)[0]

    # ------------------------------------------------------------ learning
    def to_residual(self, batch: Batch) -> Batch:
        """The batch with its executed actions replaced by the residuals that execute to them."""
        action = np.asarray(batch.action, np.float32)
        base_action = self.base.act_batch(batch.obs, True)
        return dataclasses.replace(batch, action=np.clip((action - base_action) / self.scale, -1.0, 1.0).astype(np.float32))

    def update(self, batch: Batch) -> dict[str, float]:
        return self.residual.update(self.to_residual(batch))

    def update_critic(self, batch: Batch) -> dict[str, float]:
        return self.residual.update_critic(self.to_residual(batch))

    # ------------------------------------------------------------ weights
    def state_dict(self) -> dict[str, Any]:
        return {"residual": self.residual.state_dict(), "base_actor": self.base.actor_state_dict(), SCALE_KEY: self.scale}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "residual" not in state:
            raise ValueError("checkpoint of a plain agent, not of a residual one: drop --init-residual-scale to resume it")
        self._check_scale(state[SCALE_KEY])
        self.base.load_actor_state_dict(state["base_actor"])
        self.residual.load_state_dict(state["residual"])

    def actor_state_dict(self) -> dict[str, torch.Tensor]:
        out = {f"base.{k}": v for k, v in self.base.actor_state_dict().items()}
        out.update({f"residual.{k}": v for k, v in self.residual.actor_state_dict().items()})
        out[SCALE_KEY] = torch.tensor(self.scale, dtype=torch.float64)
        return out

    def load_actor_state_dict(self, weights: Mapping[str, Any]) -> None:
        if SCALE_KEY not in weights:
            raise KeyError("plain actor weights given to a residual agent (pi0 + residual): no 'residual_scale'")
        self._check_scale(weights[SCALE_KEY])
        base, residual = split_residual_weights(weights)
        self.base.load_actor_state_dict(base)
        self.residual.load_actor_state_dict(residual)

    def _check_scale(self, scale: Any) -> None:
        if abs(float(scale) - self.scale) > 1e-9:
            raise ValueError(f"weights of a residual with scale {float(scale)}, this agent's is {self.scale} "
                             f"(pass --init-residual-scale {float(scale)})")


def is_residual(weights: Mapping[str, Any]) -> bool:
    return SCALE_KEY in weights


def split_residual_weights(weights: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pi0's, the residual's) actor weights of a residual actor file, unprefixed."""
    parts: dict[str, dict[str, Any]] = {"base": {}, "residual": {}}
    for key, value in weights.items():
        prefix, _, name = key.partition(".")
        if key != SCALE_KEY:
            if prefix not in parts:
                raise KeyError(f"unexpected residual actor weight {key!r}; expected base.*, residual.* and {SCALE_KEY}")
            parts[prefix][name] = value
    return parts["base"], parts["residual"]


def build_residual_agent(make: Any, actor_path: pathlib.Path, task: str, env_options: Mapping[str, Any], scale: float,
                         config: Any) -> ResidualAgent:
    """pi0 from ``actor_path`` (checked like ``--init-from``, with its own hidden sizes) and a fresh residual SAC
    agent ``make(config)`` whose deterministic action is 0. ``make(config) -> agent`` builds a SAC agent."""
    actor = read_actor_file(actor_path)
    if is_residual(actor.weights):
        raise ValueError(f"--init-from {actor.path} is already pi0 + residual; fine-tune it with --resume in its run, "
                         "or start from a plain actor file")
    base = make(dataclasses.replace(config, hidden_dims=actor.sizes.hidden_dims))
    load_pretrained_actor(base, actor.path, task, env_options)
    residual = make(config)
    zero_mean_head(residual)
    if getattr(config, "trust_region_weight", 0) > 0:
        residual.set_trust_region_reference()  # the zero residual: the trust region then keeps the policy near pi0
    print(f"residual fine-tuning: executed action = clip(pi0 + {scale} * residual); pi0 stays frozen", flush=True)
    return ResidualAgent(residual, base, scale)


def load_policy(path: pathlib.Path, spec: ObsSpec, task: str, env_options: Mapping[str, Any]) -> Any:
    """The agent an actor file describes (a plain SAC actor, or pi0 + residual), for deterministic acting."""
    from robot_rl.agents.sac import SACAgent, SACConfig

    actor = read_actor_file(path)
    if not is_residual(actor.weights):
        agent = SACAgent(spec, actor.sizes.action_dim, SACConfig(hidden_dims=actor.sizes.hidden_dims))
        load_pretrained_actor(agent, actor.path, task, env_options)
        return agent
    base_weights, residual_weights = split_residual_weights(actor.weights)
    base_sizes, residual_sizes = ActorSizes.of(base_weights), ActorSizes.of(residual_weights)
    agent = ResidualAgent(SACAgent(spec, residual_sizes.action_dim, SACConfig(hidden_dims=residual_sizes.hidden_dims)),
                          SACAgent(spec, base_sizes.action_dim, SACConfig(hidden_dims=base_sizes.hidden_dims)),
                          float(actor.weights[SCALE_KEY]))
    agent.load_actor_state_dict(actor.weights)
    return agent
