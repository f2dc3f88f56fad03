"""Optimizer steps without host syncs: fused Adam, and a non-finite step skipped on the device.

A learner step must not wait on the host: ``if not torch.isfinite(norm): skip`` reads the norm
back (a sync per optimizer step, per UTD minibatch on a GPU). PyTorch's fused Adam takes a
``found_inf`` flag (the mechanism ``torch.amp.GradScaler`` uses): when it is 1 the kernel leaves
weights, moments and step counts untouched. :func:`adam_step` takes that flag (the caller sets it
from the gradient norm and counts skipped steps on the device, read once, when asked) and calls
the fused kernel without ``Optimizer.step``'s Python; :func:`clip_gradients_` is
``clip_grad_norm_``'s arithmetic on a list of gradients (from ``torch.autograd.grad``, so no
``.grad`` to zero). Fused Adam is also ~3x faster than ``foreach`` Adam on a CPU (torch 2.13,
256-256 critics: 0.3 vs 0.9 ms per step for two critics, measured).
"""

from __future__ import annotations

from typing import Iterable

import torch


def fused_adam_supported(device: torch.device) -> bool:
    """Whether this torch has a fused Adam kernel for ``device`` (CPU and CUDA do in torch >= 2.4)."""
    return device.type in ("cpu", "cuda")


def make_adam(params: Iterable[torch.Tensor], lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam, fused where the device has the kernel (else ``foreach``)."""
    fused = fused_adam_supported(device)
    return torch.optim.Adam(list(params), lr=lr, fused=fused or None, foreach=None if fused else True)


def keep_implementation(optimizer: torch.optim.Optimizer, fused: bool) -> None:
    """After ``load_state_dict``: a checkpoint's param groups carry the ``fused``/``foreach`` flags it
    was saved with (``foreach`` before fused Adam was used); keep the implementation chosen at build."""
    for group in optimizer.param_groups:
        group["fused"], group["foreach"] = (True, None) if fused else (None, True)


def _step_unless_flagged(optimizer: torch.optim.Optimizer, found_inf: torch.Tensor) -> None:
    """``optimizer.step()`` unless ``found_inf`` is 1: decided in the fused kernel, else read on the host."""
    if all(group.get("fused") for group in optimizer.param_groups):
        optimizer.found_inf = found_inf  # read by the fused kernel, as GradScaler does
        try:
            optimizer.step()
        finally:
            del optimizer.found_inf
    elif not bool(found_inf):
        optimizer.step()


def clip_gradients_(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale ``grads`` in place to a global 2-norm of at most ``max_norm``; returns the norm before.

    The arithmetic of ``torch.nn.utils.clip_grad_norm_`` (same numbers) on a list of gradients,
    without its per-call grouping by device and dtype (one learner's gradients share both).
    """
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))
    return total


def adam_step(optimizer: torch.optim.Adam, grads: list[torch.Tensor | None], found_inf: torch.Tensor) -> None:
    """One step of ``optimizer`` with ``grads`` (one per parameter, in the order of its param groups),
    skipped on the device when ``found_inf`` is 1.

    Once a fused Adam (one param group) has its state, this calls the fused kernel as ``Adam.step``
    does (step counts +1, the kernel, step counts -found_inf) without ``Optimizer.step``'s Python
    around it (~0.2 ms a step here, three steps per SAC update; same numbers, tested). Otherwise
    (the first step, which creates the state; other optimizers; a ``None`` gradient, whose
    parameter Adam leaves alone) the gradients go through ``.grad`` and ``optimizer.step()``.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if len(grads) != len(params):
        raise ValueError(f"adam_step got {len(grads)} gradients for {len(params)} parameters")
    grads = [laid_out_like(param, grad) for param, grad in zip(params, grads)]
    group, states = optimizer.param_groups[0], [optimizer.state.get(p) for p in params]
    if (len(optimizer.param_groups) > 1 or not group.get("fused") or group["amsgrad"] or group.get("decoupled_weight_decay")
            or not all(states) or any(g is None for g in grads)):
        _step_through_grad(optimizer, params, grads, found_inf)
        return
    steps = [state["step"] for state in states]
    torch._foreach_add_(steps, 1)
    torch._fused_adam_(params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [], steps,
                       amsgrad=False, lr=group["lr"], beta1=group["betas"][0], beta2=group["betas"][1],
                       weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"],
                       grad_scale=None, found_inf=found_inf)
    torch._foreach_sub_(steps, [found_inf] * len(steps))


def laid_out_like(param: torch.Tensor, grad: torch.Tensor | None) -> torch.Tensor | None:
    """``grad`` with ``param``'s strides (a copy only where they differ).

    torch 2.13's CPU fused Adam pairs parameter and gradient elements by memory position, without
    checking the layouts (pytorch/pytorch#106951 is the CUDA side, where it raises). Autograd gives a
    conv weight's gradient in channels-last strides when the input is channels-last (our images are),
    so the DrQ conv trunks were updated with scrambled gradients until this copy (measured: 388 of 864
    first-layer elements took the wrong sign; ``tests/robot_rl/agents/test_optim.py``).
    """
    if grad is None or grad.stride() == param.stride():
        return grad
    return torch.empty_like(param, memory_format=torch.preserve_format).copy_(grad)


def _step_through_grad(optimizer: torch.optim.Optimizer, params: list[torch.Tensor], grads: list[torch.Tensor | None],
                       found_inf: torch.Tensor) -> None:
    for param, grad in zip(params, grads):
        param.grad = grad
    try:
        _step_unless_flagged(optimizer, found_inf)
    finally:
        for param in params:
            param.grad = None


def adam_state(optimizer: torch.optim.Adam) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """``(params, exp_avgs, exp_avg_sqs, steps)`` of a one-group Adam, its state created as its first
    ``step()`` would (zero moments, a float32 step count of 0) where it has none yet: the tensors that
    :func:`adam_update_` updates in place, so a checkpoint of the optimizer is the same either way."""
    if len(optimizer.param_groups) != 1:
        raise ValueError("adam_state handles one param group")
    group = optimizer.param_groups[0]
    if group["amsgrad"] or group["maximize"] or group["weight_decay"] or group.get("decoupled_weight_decay"):
        raise ValueError("adam_update_ implements plain Adam (no amsgrad, maximize or weight decay)")
    params = list(group["params"])
    for param in params:
        if not optimizer.state.get(param):
            optimizer.state[param] = {"step": torch.zeros((), dtype=torch.float32, device=param.device),
                                      "exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
                                      "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format)}
    states = [optimizer.state[param] for param in params]
    return params, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [s["step"] for s in states]


def adam_update_(state: tuple[list[torch.Tensor], ...], grads: list[torch.Tensor], lr: torch.Tensor, found_inf: torch.Tensor,
                 betas: tuple[float, float], eps: float) -> None:
    """One Adam step on :func:`adam_state`'s tensors, in place, written as plain tensor ops (what a
    compiled update traces: ``torch._fused_adam_`` is not), skipped entirely where ``found_inf`` is 1.

    The fused kernel's arithmetic: ``m <- lerp(m, g, 1 - b1)``, ``v <- b2 v + (1 - b2) g^2``, ``p <- p -
    lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`` (equal to float rounding, tested).
    """
    beta1, beta2 = betas
    skip = found_inf > 0
    params, exp_avgs, exp_avg_sqs, steps = state
    with torch.no_grad():
        for param, grad, exp_avg, exp_avg_sq, step in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
            _adam_update_one_(param, grad, exp_avg, exp_avg_sq, step, lr, found_inf, skip, beta1, beta2, eps)


def _adam_update_one_(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, step: torch.Tensor,
                      lr: torch.Tensor, found_inf: torch.Tensor, skip: torch.Tensor, beta1: float, beta2: float, eps: float) -> None:
    step.add_(1.0 - found_inf)
    new_avg = torch.lerp(exp_avg, grad, 1.0 - beta1)
    new_avg_sq = exp_avg_sq * beta2 + (1.0 - beta2) * grad * grad
    denom = new_avg_sq.sqrt() / (1.0 - beta2 ** step).sqrt() + eps
    new_param = param - lr / (1.0 - beta1 ** step) * new_avg / denom
    param.copy_(torch.where(skip, param, new_param))  # a skipped step's NaNs never reach the state
    exp_avg.copy_(torch.where(skip, exp_avg, new_avg))
    exp_avg_sq.copy_(torch.where(skip, exp_avg_sq, new_avg_sq))
