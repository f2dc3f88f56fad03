"""The critic ensemble's fast paths compute what the plain ops compute (values and gradients)."""

from __future__ import annotations

import platform
import sys

import pytest
import torch
import torch.nn.functional as F

from robot_rl.agents.ensemble import LAYER_NORM_EPS, Critic, LayerNormReLU, layer_norm_relu
from robot_rl.agents.memory import keep_freed_memory


def plain_layer_norm_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return F.relu(F.layer_norm(x, x.shape[-1:], eps=LAYER_NORM_EPS) * weight + bias)


def test_fused_layer_norm_relu_gradients_are_the_analytic_ones():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    weight = torch.randn(2, 1, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    bias = torch.randn(2, 1, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    assert torch.autograd.gradcheck(LayerNormReLU.apply, (x, weight, bias))
    torch.testing.assert_close(layer_norm_relu(x, weight, bias), plain_layer_norm_relu(x, weight, bias))


@pytest.mark.parametrize("needs", [(True, True, True), (True, False, False), (False, True, True)])
def test_fused_layer_norm_relu_matches_autograd_for_every_subset_of_inputs_needing_gradients(needs):
    generator = torch.Generator().manual_seed(1)
    tensors = [torch.randn(shape, generator=generator) for shape in [(4, 64, 32), (4, 1, 32), (4, 1, 32)]]
    grad_out = torch.randn(4, 64, 32, generator=generator)
    results = []
    for function in (LayerNormReLU.apply, plain_layer_norm_relu):
        inputs = [t.clone().requires_grad_(need) for t, need in zip(tensors, needs)]
        out = function(*inputs)
        out.backward(grad_out)
        results.append((out.detach(), [None if t.grad is None else t.grad for t in inputs]))
    (fused, fused_grads), (plain, plain_grads) = results
    torch.testing.assert_close(fused, plain)
    for ours, theirs in zip(fused_grads, plain_grads):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("num, members", [(3, None), (5, [3, 0])])
def test_per_member_and_batched_critic_paths_agree(num, members):
    torch.manual_seed(2)
    critic = Critic(num, 6, 2, (32, 16))
    features, action = torch.randn(40, 6), torch.randn(40, 2, requires_grad=True)
    outputs = {}
    for name in ("forward_per_member", "forward_batched"):
        critic.zero_grad()
        action.grad = None
        index = None if members is None else (members if name == "forward_per_member" else torch.tensor(members))
        q = getattr(critic.net, name)(torch.cat([features, action], dim=-1), index).squeeze(-1)
        grad_out = torch.randn(q.shape, generator=torch.Generator().manual_seed(3))
        q.backward(grad_out)
        outputs[name] = (q.detach(), action.grad.clone(), [p.grad.clone() for p in critic.parameters()])
    assert outputs["forward_per_member"][0].shape == (num if members is None else len(members), 40)
    (q1, a1, g1), (q2, a2, g2) = outputs.values()
    torch.testing.assert_close(q1, q2)
    torch.testing.assert_close(a1, a2, atol=1e-5, rtol=1e-4)
    for ours, theirs in zip(g1, g2):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(critic(features, action, None if members is None else torch.tensor(members)), q1)


def test_keep_freed_memory_sets_glibcs_thresholds_on_linux():
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's; other C libraries keep their own policy")
    assert keep_freed_memory() is True  # both mallopt calls succeeded (glibc returns 1)
