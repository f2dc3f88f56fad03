"""SACAgent's update as compiled graphs (``SACConfig.compile``): a whole critic step is one graph, a
whole full step (critic, actor and temperature) another.

Eager, an N=2 state update on a CPU spends about a third of its time outside the matmuls: hundreds
of op dispatches, the autograd engine's nodes, optimizer calls (README, "Learner speed"). Here each
step, with its gradients (``torch.func.grad_and_value`` through ``functional_call``), gradient
clipping, Adam (:func:`~robot_rl.agents.optim.adam_update_` on the optimizers' own state tensors,
so checkpoints are the same either way), Polyak averaging, the skip of a non-finite step and the
metrics, is traced once by ``torch.compile(fullgraph=True)``: one Python call per step, and
Inductor fuses the elementwise work around the matmuls.

The losses are the agent's own methods (``_critic_loss``, ``_actor_loss``, ``_gripper_loss``),
called with the differentiated network's parameters swapped in. Random draws (DrQ shifts, the
policy noise at s' and at s, the target's critic subset) are made outside the graphs from the
agent's generator in the eager order, so the numbers are the eager update's up to float rounding
(``tests/robot_rl/agents/test_sac_compiled.py``, against the slow reference). ``compiled=False``
runs the same functions without compiling (how the tests check them quickly).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch.func import functional_call, grad_and_value

from robot_rl.agents.networks import augment
from robot_rl.agents.optim import adam_state, adam_update_, clip_gradients_
from robot_rl.agents.sac_functions import critic_subset, polyak_update
from robot_rl.data.schema import Batch

if TYPE_CHECKING:
    from robot_rl.agents.sac import SACAgent


def with_params(module: torch.nn.Module, params: dict[str, torch.Tensor]) -> Callable[..., Any]:
    """``module`` as a function of its inputs, evaluated with ``params`` in place of its own parameters."""
    return lambda *inputs: functional_call(module, params, inputs)


class CompiledUpdate:
    """The graphs of one :class:`~robot_rl.agents.sac.SACAgent` (which owns the networks, optimizers
    and generators this reads and updates in place)."""

    def __init__(self, agent: "SACAgent", compiled: bool = True):
        self._agent = agent
        trainable = {n: p for n, p in agent.encoder.named_parameters() if p.requires_grad}
        self._critic_params = {"critic": dict(agent._critic.named_parameters()), "encoder": trainable}
        self._actor_params = dict(agent._actor.named_parameters())
        self._gripper_params = None if agent._gripper_critic is None else dict(agent._gripper_critic.named_parameters())
        # learning rates as tensors: a changed float would be a new constant, so a recompilation
        self._lrs = {name: torch.tensor(float(opt.param_groups[0]["lr"]), device=agent._device)
                     for name, opt in agent._optimizers().items()}
        # Adam's constants, read here: an optimizer object read inside a graph is guarded by identity, so
        # every new agent in a process would recompile (and the ninth would hit dynamo's recompile limit)
        self._adam_constants = {name: (tuple(opt.param_groups[0]["betas"]), float(opt.param_groups[0]["eps"]))
                                for name, opt in agent._optimizers().items()}
        wrap: Callable[[Callable[..., Any]], Callable[..., Any]] = (
            functools.partial(torch.compile, dynamic=False, fullgraph=True) if compiled else (lambda f: f))
        self._critic_graph, self._full_graph = wrap(self._critic_step), wrap(self._full_step)
        self._uncompiled = {"critic step", "full step"} if compiled else set()  # announced at their first call

    def update(self, minibatches: list[Batch]) -> dict[str, torch.Tensor]:
        """``utd_ratio`` critic steps, the last one with the actor and temperature steps: metrics (tensors)."""
        for minibatch in minibatches[:-1]:
            self.critic_update(minibatch)
        batch, next_noise, members = self._critic_draws(minibatch=minibatches[-1])
        noise = self._agent._noise(batch.action)  # the actor's noise at s, drawn after the critic step's
        self._agent._ramp_actor_lr()
        with torch.no_grad():  # gradients come from torch.func inside; nothing outside records a graph
            return self._call("full step", self._full_graph, batch, next_noise, members, noise, self._states(), self._lrs)

    def critic_update(self, minibatch: Batch) -> dict[str, torch.Tensor]:
        """One critic (and gripper critic) step with Polyak: metrics (tensors)."""
        batch, next_noise, members = self._critic_draws(minibatch)
        with torch.no_grad():
            return self._call("critic step", self._critic_graph, batch, next_noise, members, self._states(), self._lrs)[0]

    def _call(self, name: str, graph: Callable[..., Any], *args: Any) -> Any:
        """``graph(*args)``; its first call (the compilation: no silent minute) says so on stdout."""
        if name not in self._uncompiled:
            return graph(*args)
        print(f"--sac.compile: compiling the SAC {name} (about a minute on a 2-core CPU; seconds once "
              "Inductor's on-disk cache has it)...", flush=True)
        start = time.perf_counter()
        out = graph(*args)
        self._uncompiled.discard(name)
        print(f"--sac.compile: the {name} compiled in {time.perf_counter() - start:.0f} s", flush=True)
        return out

    def _critic_draws(self, minibatch: Batch) -> tuple[Batch, torch.Tensor, torch.Tensor | None]:
        """The minibatch with its DrQ shifts, the policy noise at s' and the target's critic subset,
        drawn in the eager update's order."""
        agent, cfg = self._agent, self._agent.config
        obs, next_obs = (augment(o, cfg.drq_pad, agent._generator) for o in (minibatch.obs, minibatch.next_obs))
        next_noise = agent._noise(minibatch.action)
        members = None if cfg.num_min_critics == cfg.num_critics else critic_subset(cfg.num_critics, cfg.num_min_critics,
                                                                                     agent._generator)
        return dataclasses.replace(minibatch, obs=obs, next_obs=next_obs), next_noise, members

    def _states(self) -> dict[str, tuple[list[torch.Tensor], ...]]:
        """Each optimizer's parameters and Adam state, and its learning rate into ``self._lrs``: re-read
        every call (loading a checkpoint replaces the state and the param groups; the actor's rate ramps)."""
        optimizers = self._agent._optimizers()
        for name, optimizer in optimizers.items():
            self._lrs[name].fill_(optimizer.param_groups[0]["lr"])
        return {name: adam_state(opt) for name, opt in optimizers.items()}

    def _optimizer_step(self, name: str, grads: list[torch.Tensor], states: dict, lrs: dict) -> torch.Tensor:
        """Clip ``grads`` to the global norm and take optimizer ``name``'s step, skipped when non-finite."""
        agent = self._agent
        grad_norm = clip_gradients_(grads, agent.config.grad_clip_norm)
        found_inf = (~torch.isfinite(grad_norm)).to(torch.float32)
        adam_update_(states[name], grads, lrs[name], found_inf, *self._adam_constants[name])
        agent._skipped_steps += found_inf
        return grad_norm

    def _critic_step(self, batch: Batch, next_noise: torch.Tensor, members: torch.Tensor | None, states: dict,
                     lrs: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        agent, cfg = self._agent, self._agent.config
        next_features = agent.encoder(batch.next_obs)
        alpha = agent._log_alpha.detach().exp() if cfg.backup_entropy else None
        action = batch.action[:, : agent._continuous_dim]

        def loss(params: dict[str, dict[str, torch.Tensor]]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
            features = functional_call(agent.encoder, params["encoder"], (batch.obs,))
            critic = with_params(agent._critic, params["critic"])
            value, qs, target = agent._critic_loss(features, next_features, action, batch.reward, batch.terminated,
                                                   agent._discount(batch), next_noise, members, alpha, critic)
            return value, (qs, target, features.detach())

        grads, (value, (qs, target, features)) = grad_and_value(loss, has_aux=True)(self._critic_params)
        grad_norm = self._optimizer_step("critic", [*grads["critic"].values(), *grads["encoder"].values()], states, lrs)
        polyak_update(agent._target_critic, agent._critic, cfg.tau)
        metrics = {"train/critic_loss": value, "train/q_mean": qs.mean(), "train/target_q_mean": target.mean(),
                   "train/critic_grad_norm": grad_norm}
        if self._gripper_params is not None:
            metrics["train/gripper_loss"] = self._gripper_step(batch, features, next_features, states, lrs)
        return metrics, features

    def _gripper_step(self, batch: Batch, features: torch.Tensor, next_features: torch.Tensor, states: dict,
                      lrs: dict) -> torch.Tensor:
        agent = self._agent

        def loss(params: dict[str, torch.Tensor]) -> torch.Tensor:
            critic = with_params(agent._gripper_critic, params)
            return agent._gripper_loss(batch, features, next_features, critic)

        grads, value = grad_and_value(loss)(self._gripper_params)
        self._optimizer_step("gripper", list(grads.values()), states, lrs)
        polyak_update(agent._target_gripper_critic, agent._gripper_critic, agent.config.tau)
        return value

    def _full_step(self, batch: Batch, next_noise: torch.Tensor, members: torch.Tensor | None, noise: torch.Tensor,
                   states: dict, lrs: dict) -> dict[str, torch.Tensor]:
        agent = self._agent
        metrics, features = self._critic_step(batch, next_noise, members, states, lrs)
        alpha = agent._log_alpha.detach().exp()
        frozen_critic = {name: p.detach() for name, p in self._critic_params["critic"].items()}
        critic = with_params(agent._critic, frozen_critic)

        def loss(params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, dict[str, torch.Tensor]]]:
            actor = with_params(agent._actor, params)
            return agent._actor_loss(features, noise, batch, alpha, actor, critic)

        grads, (actor_loss, (log_prob, actor_metrics)) = grad_and_value(loss, has_aux=True)(self._actor_params)
        grad_norm = self._optimizer_step("actor", list(grads.values()), states, lrs)
        grad_log_alpha = agent._temperature_gradient(log_prob)
        found_inf = (~torch.isfinite(grad_log_alpha)).to(torch.float32)
        adam_update_(states["temperature"], [grad_log_alpha], lrs["temperature"], found_inf, *self._adam_constants["temperature"])
        agent._skipped_steps += found_inf
        return {**metrics, **agent._actor_metrics(actor_loss, grad_norm, log_prob), **actor_metrics}
