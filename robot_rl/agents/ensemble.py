"""Critic ensembles as one module: N MLPs with stacked weights (one optimizer step for all).

A hidden layer is ``relu(layer_norm(x @ W + b) * gamma + beta)`` with per-member ``W, b, gamma, beta``.
Two ways to evaluate the same numbers (tested equal, values and gradients):

- **per member** (:meth:`EnsembleMLP.forward_per_member`, what a CPU runs): one member at a time,
  so its activations stay in cache between ops, with the affine transform fused into the
  LayerNorm kernel; the weights are ``unbind`` views of the stacked parameters.
- **batched** (:meth:`EnsembleMLP.forward_batched`: GPUs, ``torch.compile``, a target's M-subset):
  batched matmuls, and normalization + per-member affine + ReLU as one autograd node
  (:class:`LayerNormReLU`) whose backward makes four passes over the activations instead of the
  seven of autograd's LayerNorm -> addcmul -> ReLU chain (standalone here, N=10: half the time).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

LAYER_NORM_EPS = 1e-5  # nn.LayerNorm's default


class LayerNormReLU(torch.autograd.Function):
    """``relu(layer_norm(x) * weight + bias)`` over the last dim; ``weight``/``bias`` are ``(N, 1, D)``
    for ``x`` of ``(N, B, D)`` (one affine transform per ensemble member)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        normalized, mean, rstd = torch.native_layer_norm(x, x.shape[-1:], None, None, LAYER_NORM_EPS)
        out = torch.addcmul(bias, normalized, weight).relu_()
        ctx.save_for_backward(x, normalized, mean, rstd, weight, out)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable  # a second derivative raises instead of being wrong
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, normalized, mean, rstd, weight, out = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        grad_affine = torch.ops.aten.threshold_backward(grad_out, out, 0.0)  # the ReLU's mask
        if ctx.needs_input_grad[2]:
            grad_bias = grad_affine.sum(1, keepdim=True)
        if ctx.needs_input_grad[1]:
            grad_weight = (grad_affine * normalized).sum(1, keepdim=True)
        if ctx.needs_input_grad[0]:
            grad_normalized = grad_affine.mul_(weight)  # grad_affine is not needed after this
            grad_x = torch.ops.aten.native_layer_norm_backward(
                grad_normalized, x, x.shape[-1:], mean, rstd, None, None, [True, False, False])[0]
        return grad_x, grad_weight, grad_bias


def layer_norm_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """:class:`LayerNormReLU`, or the same as plain ops where ``torch.compile`` traces (it fuses them itself)
    or no gradient is recorded (a target's forward: no backward to speed up, and torch.func transforms,
    which the compiled update uses, cannot run this old-style autograd.Function)."""
    if torch.compiler.is_compiling() or not torch.is_grad_enabled():
        return F.relu(torch.addcmul(bias, F.layer_norm(x, x.shape[-1:], eps=LAYER_NORM_EPS), weight))
    return LayerNormReLU.apply(x, weight, bias)


class EnsembleLinear(nn.Module):
    """``num`` independent Linear layers evaluated as one batched matmul.

    Input ``(B, in)`` (shared by all members) or ``(N, B, in)``; output ``(N, B, out)``.
    ``members`` (a LongTensor of indices) evaluates only that subset.
    """

    def __init__(self, num: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)  # nn.Linear's default scale, per member
        self.weight = nn.Parameter(torch.empty(num, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        weight, bias = (self.weight, self.bias) if members is None else (self.weight[members], self.bias[members])
        if x.dim() == 2:  # one input for all members: a broadcast view, bias fused into the batched matmul
            x = x.expand(weight.shape[0], *x.shape)  # (2.5x less time than matmul + bias, forward and backward)
        return torch.baddbmm(bias, x, weight)


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the last dim with a separate affine transform per ensemble member, then ReLU."""

    def __init__(self, num: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num, 1, dim))
        self.bias = nn.Parameter(torch.zeros(num, 1, dim))

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        weight, bias = (self.weight, self.bias) if members is None else (self.weight[members], self.bias[members])
        return layer_norm_relu(x, weight, bias)


class EnsembleMLP(nn.Module):
    """``num`` MLPs (Linear + LayerNorm + ReLU hidden layers) vectorized over a leading dim."""

    def __init__(self, num: int, in_dim: int, hidden_dims: Sequence[int], out_dim: int):
        super().__init__()
        dims = [in_dim, *hidden_dims]
        self.linears = nn.ModuleList(EnsembleLinear(num, a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList(EnsembleLayerNorm(num, b) for b in dims[1:])
        self.out = EnsembleLinear(num, dims[-1], out_dim)

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` of ``(B, in)`` (shared by all members) or ``(N, B, in)`` -> ``(N or M, B, out)``."""
        if members is None and x.dim() == 2 and x.device.type == "cpu" and not torch.compiler.is_compiling():
            return self.forward_per_member(x)
        return self.forward_batched(x, members)  # (a target's M-subset is small: batched, its weights gathered)

    def forward_batched(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """All members (or ``members``) at once: batched matmuls, one fused LayerNorm+ReLU node per layer
        (fewer kernel launches: the path for GPUs and ``torch.compile``)."""
        for linear, norm in zip(self.linears, self.norms):
            x = norm(linear(x, members), members)
        return self.out(x, members)

    def forward_per_member(self, x: torch.Tensor, members: Sequence[int] | None = None) -> torch.Tensor:
        """The same MLPs (or the ``members`` among them) on a shared ``(B, in)`` input, evaluated one
        member at a time (what a CPU runs faster).

        Batched, every op streams all N members' activations (N=10, batch 256: 2.6 MB per layer,
        more than this CPU's 512 KB L2) before the next op reads them back; one member's stay in
        cache, and its LayerNorm's affine transform is fused into the LayerNorm kernel forward and
        backward. Measured here at batch 256, (256, 256): a critic's forward + backward 30% less
        CPU at N=10, ~10% at N=2. ``unbind`` views the stacked weights, so each weight's gradient
        is assembled by one stack, not N full-size scatters.
        """
        linears = [(layer.weight.unbind(0), layer.bias.unbind(0)) for layer in (*self.linears, self.out)]
        norms = [(norm.weight[:, 0].unbind(0), norm.bias[:, 0].unbind(0)) for norm in self.norms]
        outputs = []
        for i in range(len(linears[0][0])) if members is None else members:
            h = x
            for (weight, bias), (gamma, beta) in zip(linears, norms):
                h = torch.addmm(bias[i], h, weight[i])
                h = F.layer_norm(h, h.shape[-1:], gamma[i], beta[i], LAYER_NORM_EPS).relu_()
            weight, bias = linears[-1]
            outputs.append(torch.addmm(bias[i], h, weight[i]))
        return torch.stack(outputs)


class Critic(nn.Module):
    """An ensemble of ``num`` Q-functions on ``[features, action]``: returns ``(N, B)``."""

    def __init__(self, num: int, feature_dim: int, action_dim: int, hidden_dims: Sequence[int]):
        super().__init__()
        self.num = num
        self.net = EnsembleMLP(num, feature_dim + action_dim, hidden_dims, 1)

    def forward(self, features: torch.Tensor, action: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(torch.cat([features, action], dim=-1), members).squeeze(-1)
