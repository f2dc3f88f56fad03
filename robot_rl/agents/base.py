"""What every agent shares: the read-only properties the trainer and actors use, weight grouping."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from robot_rl.data.schema import ObsSpec


class AgentBase:
    """``config``, ``obs_spec``, ``action_dim`` and ``num_updates`` of an agent."""

    _config: Any
    _obs_spec: ObsSpec
    _action_dim: int
    _num_updates: int

    @property
    def config(self) -> Any:
        return self._config

    @property
    def obs_spec(self) -> ObsSpec:
        return self._obs_spec

    @property
    def action_dim(self) -> int:
        return self._action_dim

    @property
    def num_updates(self) -> int:
        """update() calls so far (restored by load_state_dict)."""
        return self._num_updates


def group_weights(weights: Mapping[str, Any], prefixes: tuple[str, ...]) -> dict[str, dict[str, torch.Tensor]]:
    """Split ``{"actor.fc.weight": w, ...}`` by prefix into per-module state dicts; unknown prefixes raise."""
    groups: dict[str, dict[str, torch.Tensor]] = {prefix: {} for prefix in prefixes}
    for key, value in weights.items():
        prefix, _, name = key.partition(".")
        if prefix not in groups:
            raise KeyError(f"unexpected actor weight {key!r}; expected prefixes {list(prefixes)}")
        groups[prefix][name] = torch.as_tensor(value)
    return groups
