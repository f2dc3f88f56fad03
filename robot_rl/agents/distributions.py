"""The SAC policy: a tanh-squashed diagonal Gaussian with a state-dependent log-std.

Sampling takes an explicit ``torch.Generator`` so an agent's noise does not depend on (or disturb)
the global torch seed.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.agents.networks import mlp

LOG_STD_MIN = -10.0
LOG_STD_MAX = 2.0
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def tanh_log_det_jacobian(pre_tanh: torch.Tensor) -> torch.Tensor:
    """``sum log(1 - tanh(u)^2)`` over the last dim, in a form that is stable for large ``|u|``."""
    return (2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(-1)


def sample_tanh_gaussian(mean: torch.Tensor, log_std: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Reparameterized sample ``tanh(mean + std * eps)`` and its log-probability (B,)."""
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return tanh_gaussian(mean, log_std, noise)


def tanh_gaussian(mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`sample_tanh_gaussian` with its standard normal ``noise`` drawn by the caller (a compiled
    update draws it outside the graph, from the agent's generator, so it sees the eager path's numbers)."""
    pre_tanh = mean + log_std.exp() * noise
    gaussian_log_prob = (-0.5 * noise.square() - log_std - _HALF_LOG_2PI).sum(-1)
    return torch.tanh(pre_tanh), gaussian_log_prob - tanh_log_det_jacobian(pre_tanh)


class TanhGaussianPolicy(nn.Module):
    """Features -> MLP -> (mean, log-std clamped to ``[LOG_STD_MIN, LOG_STD_MAX]``) -> tanh-squashed action."""

    def __init__(self, feature_dim: int, hidden_dims: Sequence[int], action_dim: int):
        super().__init__()
        self.trunk = mlp(feature_dim, hidden_dims)
        self.head = nn.Linear(hidden_dims[-1] if hidden_dims else feature_dim, 2 * action_dim)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.head(self.trunk(features)).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, features: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """An action in ``(-1, 1)`` and its log-probability (with the tanh correction)."""
        return sample_tanh_gaussian(*self(features), generator)

    def mode(self, features: torch.Tensor) -> torch.Tensor:
        """The deterministic action ``tanh(mean)``."""
        return torch.tanh(self(features)[0])
