"""The torch actor as an ONNX file: ``obs (B, obs_dim) float32 -> action (B, action_dim)``, the
deterministic action ``tanh(mean)`` of :class:`robot_rl.agents.distributions.TanhGaussianPolicy`.

Made with torch's TorchScript exporter (``torch.onnx.export(..., dynamo=False)``, which needs the
``onnx`` package: ``pip install -e ".[export]"``); the tests check the file with onnxruntime.
"""

from __future__ import annotations

import pathlib
from typing import Any, Mapping

import torch
from torch import nn

from robot_rl.agents.distributions import TanhGaussianPolicy
from robot_rl.fused.convert import policy_from_weights

OPSET = 17


class DeterministicActor(nn.Module):
    """The policy's mode as a module's forward (what is exported)."""

    def __init__(self, policy: TanhGaussianPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy.mode(obs)


def export_onnx(path: pathlib.Path, weights: Mapping[str, Any]) -> pathlib.Path:
    """Write actor weights (``actor.``-prefixed, e.g. ``actor.pt``) as an ONNX model with a dynamic batch axis."""
    try:
        import onnx  # noqa: F401  (the exporter needs it; fail with the fix, not deep inside torch)
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("ONNX export needs the onnx package: pip install -e '.[export]'") from err
    policy = policy_from_weights(weights)
    example = torch.zeros((1, policy.trunk[0].in_features if len(policy.trunk) else policy.head.in_features))
    torch.onnx.export(DeterministicActor(policy), (example,), str(path), input_names=["obs"], output_names=["action"],
                      dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}}, opset_version=OPSET, dynamo=False)
    return path
