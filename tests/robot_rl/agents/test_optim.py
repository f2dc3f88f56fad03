"""The learner's optimizer shortcuts compute what torch's own calls compute (same kernels, same numbers)."""

from __future__ import annotations

import math

import pytest
import torch

from robot_rl.agents.optim import adam_state, adam_step, adam_update_, clip_gradients_, make_adam


def parameters(seed: int) -> list[torch.nn.Parameter]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in [(3, 7, 5), (3, 1, 5), ()]]


def gradients(step: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(100 + step)
    return [torch.randn(shape, generator=generator) for shape in [(3, 7, 5), (3, 1, 5), ()]]


def torch_step(optimizer: torch.optim.Adam, grads: list[torch.Tensor]) -> None:
    for param, grad in zip(optimizer.param_groups[0]["params"], grads):
        param.grad = grad.clone()
    optimizer.step()


@pytest.mark.parametrize("fused", [True, False])
def test_adam_step_equals_adam_step_of_torch_and_skips_on_the_flag(fused):
    ours, theirs = parameters(0), parameters(0)
    kwargs = {"fused": True} if fused else {"foreach": True}
    ours_opt = torch.optim.Adam(ours, lr=1e-2, weight_decay=0.1, **kwargs)
    theirs_opt = torch.optim.Adam(theirs, lr=1e-2, weight_decay=0.1, **kwargs)
    for step in range(4):  # the first creates the state through optimizer.step(), the rest call the kernel
        adam_step(ours_opt, [g.clone() for g in gradients(step)], torch.zeros(()))
        torch_step(theirs_opt, gradients(step))
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert all(p.grad is None for p in ours), "the gradients must not stay behind in .grad"
    before = [p.detach().clone() for p in ours]
    state_before = {k: v.clone() for k, v in ours_opt.state[ours[0]].items()}
    adam_step(ours_opt, [torch.full_like(p, math.nan) for p in ours], torch.ones(()))  # skipped
    for param, value in zip(ours, before):
        torch.testing.assert_close(param.detach(), value, atol=0, rtol=0)
    for key, value in state_before.items():
        torch.testing.assert_close(ours_opt.state[ours[0]][key], value, atol=0, rtol=0, msg=key)
    adam_step(ours_opt, [g.clone() for g in gradients(9)], torch.zeros(()))  # continues where it stopped
    torch_step(theirs_opt, gradients(9))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_adam_step_leaves_a_parameter_without_gradient_alone_as_adam_does():
    ours, theirs = parameters(1), parameters(1)
    ours_opt, theirs_opt = make_adam(ours, 1e-2, torch.device("cpu")), make_adam(theirs, 1e-2, torch.device("cpu"))
    for step in range(3):
        grads = gradients(step)
        adam_step(ours_opt, [grads[0].clone(), None, grads[2].clone()], torch.zeros(()))
        theirs[0].grad, theirs[1].grad, theirs[2].grad = grads[0].clone(), None, grads[2].clone()
        theirs_opt.step()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert ours[1] not in ours_opt.state


def test_adam_step_pairs_a_channels_last_gradient_with_the_right_weights():
    """A conv weight's gradient comes channels-last from autograd when its input is channels-last; torch's
    CPU fused kernel would pair elements by memory position (adam_step lays the gradient out first)."""
    ours, theirs = [torch.nn.Parameter(torch.randn(4, 3, 2, 2))], [torch.nn.Parameter(torch.randn(4, 3, 2, 2))]
    theirs[0].data.copy_(ours[0].data)
    ours_opt = make_adam(ours, 1e-2, torch.device("cpu"))
    theirs_opt = torch.optim.Adam(theirs, lr=1e-2, foreach=False)  # the single-tensor loop: logical elements
    for step in range(3):  # the first step goes through optimizer.step(), the rest call the kernel
        grad = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(step))
        adam_step(ours_opt, [grad.contiguous(memory_format=torch.channels_last)], torch.zeros(()))
        torch_step(theirs_opt, [grad])
    torch.testing.assert_close(ours[0], theirs[0], atol=1e-6, rtol=1e-5)


def test_adam_update_as_plain_ops_equals_the_fused_kernel_and_skips_on_the_flag():
    ours, theirs = parameters(2), parameters(2)
    ours_opt, theirs_opt = make_adam(ours, 1e-2, torch.device("cpu")), make_adam(theirs, 1e-2, torch.device("cpu"))
    state = adam_state(ours_opt)  # created as Adam's first step creates it
    assert [float(s) for s in state[3]] == [0.0] * 3 and all(float(m.abs().sum()) == 0 for m in state[1])
    lr = torch.tensor(1e-2)
    for step in range(5):
        adam_update_(state, gradients(step), lr, torch.zeros(()), (0.9, 0.999), 1e-8)
        torch_step(theirs_opt, gradients(step))
        if step == 2:  # a non-finite step changes nothing, not even the step count
            before = [t.clone() for tensors in state for t in tensors]
            adam_update_(state, [torch.full_like(p, math.nan) for p in ours], lr, torch.ones(()), (0.9, 0.999), 1e-8)
            for a, b in zip([t for tensors in state for t in tensors], before):
                torch.testing.assert_close(a, b, atol=0, rtol=0)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    theirs_state = adam_state(theirs_opt)  # the optimizer's own state tensors, in place
    for a, b in zip([t for tensors in state[1:] for t in tensors], [t for tensors in theirs_state[1:] for t in tensors]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    ours_opt.step()  # the optimizer still steps from that state (checkpoints load either way)


def test_adam_state_refuses_what_adam_update_does_not_implement():
    with pytest.raises(ValueError, match="weight decay"):
        adam_state(torch.optim.Adam(parameters(0), weight_decay=0.1))


@pytest.mark.parametrize("max_norm", [0.5, math.inf])
def test_clip_gradients_equals_clip_grad_norm(max_norm):
    ours = [g.clone() for g in gradients(0)]
    params = parameters(0)
    for param, grad in zip(params, gradients(0)):
        param.grad = grad.clone()
    expected_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    norm = clip_gradients_(ours, max_norm)
    torch.testing.assert_close(norm, expected_norm, atol=0, rtol=0)
    for grad, param in zip(ours, params):
        torch.testing.assert_close(grad, param.grad, atol=0, rtol=0)
    assert (norm > max_norm) == (max_norm == 0.5)  # the 0.5 case really clips
