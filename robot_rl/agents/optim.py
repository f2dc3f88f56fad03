"""Optimizer steps without host syncs: fused Adam, and a non-finite step skipped on the device.

A learner step must not wait on the host: ``if not torch.isfinite(norm): skip`` reads the norm
back (a sync per optimizer step, per UTD minibatch on a GPU). PyTorch's fused Adam takes a
``found_inf`` flag (the mechanism ``torch.amp.GradScaler`` uses): when it is 1 the kernel leaves
weights, moments and step counts untouched. :func:`step_unless_nonfinite` sets that flag from the
gradient norm and returns it, so skipped steps are counted on the device and read once, when asked.
Fused Adam is also ~3x faster than ``foreach`` Adam on a CPU (torch 2.13, 256-256 critics:
0.3 vs 0.9 ms per step for two critics, measured).
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


def step_unless_nonfinite(optimizer: torch.optim.Optimizer, gradient_norm: torch.Tensor) -> torch.Tensor:
    """Step ``optimizer`` unless ``gradient_norm`` is NaN or inf; returns 1.0 if skipped, else 0.0 (a tensor).

    With fused Adam the decision stays on the device. Other optimizers fall back to reading the
    flag on the host.
    """
    found_inf = (~torch.isfinite(gradient_norm)).to(torch.float32).reshape(())
    if all(group.get("fused") for group in optimizer.param_groups):
        optimizer.found_inf = found_inf  # read by the fused kernel, as GradScaler does
        try:
            optimizer.step()
        finally:
            del optimizer.found_inf
    elif not bool(found_inf):
        optimizer.step()
    return found_inf
