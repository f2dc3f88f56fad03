"""Start from a pre-trained actor (``--init-from``) and fine-tune it online the WSRL way.

WSRL (Zhou et al., "Efficient Online RL Fine-Tuning Need Not Retain Offline Data", 2024): keep no
pre-training data; a short warm-up of rollouts of the pre-trained policy seeds the online buffer
(``--warmup-steps``: no update before the buffer holds them), then ordinary online SAC updates at
the configured UTD. Only the actor carries over: ``robot-rl train-fused``'s critic sees privileged
simulator state (an asymmetric critic) and is a TD3 critic, so the SAC critic starts fresh; to keep
that untrained critic from dragging the pre-trained actor away (actor collapse), the first
``--critic-warmup-updates`` updates train the critic alone (:class:`CriticWarmup`). Two ways to keep the
pre-trained actor: ``--init-residual-scale`` freezes it and learns a bounded residual on top
(:mod:`robot_rl.train.residual`), ``--sac.trust-region-weight`` pulls the learning actor toward it.

An actor file is ``actor.pt`` (``SACAgent.actor_state_dict()`` keys, from ``robot-rl train-fused``
or a training run) with, when ``train-fused`` wrote it, ``actor.json`` beside it (task, task options,
sizes). :func:`load_pretrained_actor` checks it against the agent and the env before loading.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Mapping

import torch

from robot_rl.registry import parse_overrides
from robot_rl.train.checkpoint import load_checkpoint

TRUNK_STRIDE = 3  # robot_rl.agents.networks.mlp: Linear, LayerNorm, ReLU per hidden layer


@dataclasses.dataclass(frozen=True)
class ActorSizes:
    """What an actor's weights fix: its input (observation features), hidden widths and action size."""

    obs_dim: int
    hidden_dims: tuple[int, ...]
    action_dim: int

    @classmethod
    def of(cls, weights: Mapping[str, Any]) -> "ActorSizes":
        """Read from ``actor.``-prefixed weights (the tanh-Gaussian head outputs mean and log-std)."""
        if "actor.head.weight" not in weights:
            raise ValueError("not actor weights: no 'actor.head.weight' (expected SACAgent.actor_state_dict() keys)")
        hidden = []
        while f"actor.trunk.{TRUNK_STRIDE * len(hidden)}.weight" in weights:
            hidden.append(int(weights[f"actor.trunk.{TRUNK_STRIDE * len(hidden)}.weight"].shape[0]))
        first = weights["actor.trunk.0.weight" if hidden else "actor.head.weight"]
        return cls(int(first.shape[1]), tuple(hidden), int(weights["actor.head.weight"].shape[0]) // 2)

    def describe(self) -> str:
        return f"observation features {self.obs_dim}, hidden {list(self.hidden_dims)}, actions {self.action_dim}"


@dataclasses.dataclass(frozen=True)
class ActorFile:
    """A pre-trained actor: its weights and what ``actor.json`` says about it (empty without one)."""

    path: pathlib.Path
    weights: dict[str, torch.Tensor]
    info: dict[str, Any]

    @property
    def sizes(self) -> ActorSizes:
        return ActorSizes.of(self.weights)


def read_actor_file(path: pathlib.Path) -> ActorFile:
    """``path`` is ``actor.pt`` or a run directory holding one; ``actor.json`` beside it is optional."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "actor.pt"
    if not path.is_file():
        raise FileNotFoundError(f"--init-from {path}: no such actor file (robot-rl train-fused writes <run>/actor.pt)")
    weights = load_checkpoint(path)
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise ValueError(f"--init-from {path}: not an actor file (expected a dict of tensors: SACAgent.actor_state_dict())")
    bad = [k for k, v in weights.items() if not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"--init-from {path}: non-finite weights in {bad[:3]}")
    side = path.with_suffix(".json")
    info = json.loads(side.read_text()) if side.is_file() else {}
    return ActorFile(path, weights, info)


def check_actor_file(actor: ActorFile, agent_weights: Mapping[str, Any], task: str, env_options: Mapping[str, Any]) -> None:
    """ValueError saying what differs between the file and this run: the task, the task options the
    actor was trained with (they shape its observation and the meaning of its actions), the sizes,
    the set of weights (an image encoder, a gripper critic)."""
    trained_on = actor.info.get("task")
    if trained_on is not None and trained_on != task:
        raise ValueError(f"--init-from {actor.path}: an actor for task {trained_on!r}, not {task!r}")
    trained_options = parse_overrides(actor.info.get("task_kwargs", ()))
    differing = {k: v for k, v in trained_options.items() if env_options.get(k) != v}
    mine = ActorSizes.of(agent_weights)
    if differing or actor.sizes != mine:
        hints = [f"--sac.hidden-dims {' '.join(map(str, actor.sizes.hidden_dims))}"] if actor.sizes.hidden_dims != mine.hidden_dims else []
        hints += [f"--env-kwargs {k}={json.dumps(v)}" for k, v in trained_options.items()]
        raise ValueError(f"--init-from {actor.path} does not fit this agent: the file has {actor.sizes.describe()}"
                         f"{f', trained with task options {trained_options}' if trained_options else ''}; this run has "
                         f"{mine.describe()}{f', task options {dict(env_options)}' if trained_options else ''}. "
                         f"Pass {' '.join(hints) or 'the options it was trained with'}")
    if set(actor.weights) != set(agent_weights):
        raise ValueError(f"--init-from {actor.path}: its weights {sorted(set(actor.weights) - set(agent_weights))[:3]} / this "
                         f"agent's {sorted(set(agent_weights) - set(actor.weights))[:3]} have no counterpart (an image encoder "
                         "or a gripper critic on one side only?)")
    wrong = [k for k, v in actor.weights.items() if tuple(v.shape) != tuple(agent_weights[k].shape)]
    if wrong:
        raise ValueError(f"--init-from {actor.path}: weight {wrong[0]} has shape {tuple(actor.weights[wrong[0]].shape)}, "
                         f"this agent's {tuple(agent_weights[wrong[0]].shape)} (different encoder settings?)")


def load_pretrained_actor(agent: Any, path: pathlib.Path, task: str, env_options: Mapping[str, Any]) -> ActorFile:
    """Check ``path`` (:func:`check_actor_file`) and load it into ``agent``'s actor; the critic stays fresh."""
    actor = read_actor_file(path)
    check_actor_file(actor, agent.actor_state_dict(), task, env_options)
    agent.load_actor_state_dict(actor.weights)
    print(f"actor initialized from {actor.path} ({actor.sizes.describe()}); the critic starts fresh", flush=True)
    return actor


class CriticWarmup:
    """The first ``updates`` learning steps of a fresh agent train only its critic (``update_critic``),
    so the pre-trained actor is not steered by a critic that knows nothing yet. A resumed agent
    (``num_updates > 0``) skips it."""

    def __init__(self, updates: int) -> None:
        if updates < 0:
            raise ValueError(f"critic warm-up updates must be >= 0, got {updates}")
        self.left = updates

    def update(self, agent: Any, batch: Any) -> dict[str, float]:
        if self.left > 0 and agent.num_updates == 0:
            self.left -= 1
            return agent.update_critic(batch)
        return agent.update(batch)


def warmup_demos(cfg: Any, run_dir: pathlib.Path, spec: Any, action_dim: int) -> Any:
    """The first episodes on disk, at least ``cfg.warmup_steps`` steps of them (the warm-up rollouts of
    the pre-trained policy), as a demo buffer: batches then draw ``--demo-ratio`` from them and the
    actor's BC term (``--sac.bc-weight``) keeps its actions near the pre-trained ones on those states
    (``--warmup-as-demos``); None while no episode has ended yet."""
    from robot_rl.data import read_episodes
    from robot_rl.train.setup import new_replay

    episodes, _ = read_episodes(run_dir / "episodes", task=cfg.env.task)
    kept, steps = [], 0
    for episode in episodes:
        if steps >= cfg.warmup_steps:
            break
        kept.append(episode)
        steps += len(episode)
    if not kept:
        return None
    buffer = new_replay(cfg.agent_config, spec, action_dim, steps + len(kept) + 1, "warm-up demos", cfg.env.seed + 2)
    for episode in kept:
        buffer.add_episode(episode)
    print(f"warm-up rollouts as demonstrations: {len(kept)} episodes, {steps} steps", flush=True)
    return buffer


def updates_start_at(learning_starts: int, warmup_steps: int) -> int:
    """Transitions the online buffer must hold before the first update (at least one)."""
    return max(learning_starts, warmup_steps, 1)
