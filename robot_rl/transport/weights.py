"""torch ``state_dict`` <-> name -> numpy array, for :class:`~robot_rl.transport.messages.Weights`."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def state_dict_to_arrays(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """torch ``state_dict`` -> name -> numpy array (floats as float32, on the CPU, copied)."""
    import torch

    out = {}
    for name, tensor in state_dict.items():
        tensor = tensor.detach()
        if tensor.is_floating_point():
            tensor = tensor.to(torch.float32)
        out[name] = tensor.cpu().numpy().copy()
    return out


def arrays_to_state_dict(arrays: Mapping[str, np.ndarray], like: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """name -> array -> torch ``state_dict`` (copies, so read-only received arrays are fine).

    With ``like`` (e.g. ``agent.state_dict()``) names and shapes must match (ValueError naming
    the differences) and each tensor takes ``like``'s dtype.
    """
    import torch

    if like is not None:
        problems = [f"missing {n!r}" for n in like if n not in arrays] + [f"unexpected {n!r}" for n in arrays if n not in like]
        problems += [f"{n!r} shape {tuple(arrays[n].shape)} != {tuple(like[n].shape)}" for n in like
                     if n in arrays and tuple(arrays[n].shape) != tuple(like[n].shape)]
        if problems:
            raise ValueError(f"weights do not fit the agent: {'; '.join(problems[:10])}")
    out = {}
    for name, array in arrays.items():
        tensor = torch.from_numpy(np.array(array))
        out[name] = tensor.to(like[name].dtype) if like is not None else tensor
    return out
