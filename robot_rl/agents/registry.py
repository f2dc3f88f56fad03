"""Agents by name (``--algo``): the one place the trainer, the learner and the actors make one.

A new agent (the quadrotor family's TD3, ...) is a module implementing
:class:`~robot_rl.agents.base.Agent` plus one :func:`register_agent` call here and a config field
of that name in :class:`~robot_rl.train.config.TrainConfig`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from robot_rl.agents.base import Agent
from robot_rl.data.schema import ObsSpec


@dataclasses.dataclass(frozen=True)
class AgentEntry:
    """A registered agent.

    Attributes:
        name: the ``--algo`` value.
        agent: ``"module:Class"``; ``Class(obs_spec, action_dim, config, device=, seed=)``.
        config_field: the training config's field holding its config (``sac`` -> ``--sac.*``).
        online: it learns from env interaction; False: offline from demonstrations only.
        description: one line for help texts.
    """

    name: str
    agent: str
    config_field: str
    online: bool
    description: str


_AGENTS: dict[str, AgentEntry] = {}


def register_agent(entry: AgentEntry) -> None:
    _AGENTS[entry.name] = entry


def agent_names() -> list[str]:
    return sorted(_AGENTS)


def agent_entry(name: str) -> AgentEntry:
    try:
        return _AGENTS[name]
    except KeyError:
        raise ValueError(f"unknown agent {name!r}; known agents: {agent_names()}") from None


def make_agent(name: str, obs_spec: ObsSpec, action_dim: int, config: Any, device: str = "cpu", seed: int = 0) -> Agent:
    """The agent ``name`` for these observations and actions (its module is imported now)."""
    from robot_rl.registry import load

    return load(agent_entry(name).agent)(obs_spec, action_dim, config, device=device, seed=seed)


register_agent(AgentEntry("sac", "robot_rl.agents.sac:SACAgent", "sac", True,
                          "SAC/RLPD: ensembles, REDQ subsets, UTD, n-step, BC term on demos, pixels"))
register_agent(AgentEntry("bc", "robot_rl.agents.bc:BCAgent", "bc", False, "behaviour cloning on the demonstrations"))
