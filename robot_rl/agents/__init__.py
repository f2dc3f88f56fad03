"""Learning agents: SAC (ensembles, REDQ subsets, high UTD, pixels) and behaviour cloning.

Every agent has ``act(obs, deterministic)``, ``update(batch) -> metrics``,
``state_dict()/load_state_dict()`` (full resume) and ``actor_state_dict()/load_actor_state_dict()``
(the weights actors need).
"""

from robot_rl.agents.bc import BCAgent, BCConfig
from robot_rl.agents.networks import ObservationEncoder, ResNetBackbone, load_backbone, save_backbone
from robot_rl.agents.sac import SACAgent, SACConfig, critic_subset, td_target

__all__ = [
    "BCAgent",
    "BCConfig",
    "ObservationEncoder",
    "ResNetBackbone",
    "SACAgent",
    "SACConfig",
    "critic_subset",
    "load_backbone",
    "save_backbone",
    "td_target",
]
