"""SAC's small pure pieces, shared by the eager update (sac.py) and the compiled one (sac_compiled.py)."""

from __future__ import annotations

import contextlib
from typing import Iterator, Mapping

import torch
from torch import nn

GRIPPER_COMMANDS = (-1.0, 0.0, 1.0)  # close, stay, open: the discrete gripper action values


def td_target(reward: torch.Tensor, terminated: torch.Tensor, next_qs: torch.Tensor, discount: float | torch.Tensor,
              next_log_prob: torch.Tensor | None = None, alpha: float | torch.Tensor = 0.0) -> torch.Tensor:
    """``r + discount * (1 - terminated) * (min_i next_qs[i] - alpha * next_log_prob)``.

    ``next_qs`` is ``(M, B)``: the target critics of the chosen subset at ``(s', a')``. A
    terminated transition (1.0) does not bootstrap; a truncated one (0.0) does. ``discount`` is
    a float, or per transition ``(B,)`` (gamma^k of n-step transitions).
    """
    next_value = next_qs.min(dim=0).values
    if next_log_prob is not None:
        next_value = next_value - alpha * next_log_prob
    return reward + discount * (1.0 - terminated) * next_value


def to_floats(metrics: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Scalar metric tensors -> floats, read back to the host at once (an update's one sync)."""
    values = torch.stack([v.reshape(()).float() for v in metrics.values()]).tolist()
    return dict(zip(metrics, values))


def critic_subset(num_critics: int, num_min: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of ``num_min`` distinct critics drawn at random (all of them, in order, when equal)."""
    if num_min == num_critics:
        return torch.arange(num_critics, device=generator.device)
    return torch.randperm(num_critics, generator=generator, device=generator.device)[:num_min]


def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """``target <- (1 - tau) * target + tau * source``, in place."""
    with torch.no_grad():
        torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Temporarily stop gradients into ``module``'s parameters (they still pass through it)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for param, flag in zip(module.parameters(), flags):
            param.requires_grad_(flag)


def trust_region_distance(action: torch.Tensor, reference_action: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of deterministic actions from the reference actor's (zero gradient where equal)."""
    return (action - reference_action).pow(2).mean()


def gripper_index(action: torch.Tensor) -> torch.Tensor:
    """Gripper action values -> index into :data:`GRIPPER_COMMANDS` (rounded to the nearest command)."""
    return action.clamp(-1.0, 1.0).round().long() + 1
