"""Checkpoints written atomically: a kill mid-write leaves the previous checkpoint intact."""

from __future__ import annotations

import io
import pathlib
from typing import Any

import torch

from robot_rl.files import atomic_write


def save_checkpoint(path: pathlib.Path, payload: dict[str, Any]) -> None:
    """``torch.save`` through :func:`robot_rl.files.atomic_write`: a kill mid-write keeps the old one.

    The payload is serialized in memory first, so a failing disk (full: ENOSPC) raises ``OSError``
    from the write itself -- torch's zip writer reports it as an opaque ``RuntimeError`` -- and the
    previous file stays whole."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getbuffer()
    atomic_write(path, lambda file: file.write(data))


def load_checkpoint(path: pathlib.Path) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: nothing to resume (train without --resume first)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain containers only
    except Exception as err:  # a corrupt file: say which and why
        raise ValueError(f"checkpoint {path} is unreadable ({err}); delete it to restart the run") from err
