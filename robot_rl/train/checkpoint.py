"""Checkpoints written atomically: a kill mid-write leaves the previous checkpoint intact."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import torch


def save_checkpoint(path: pathlib.Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temp file in the same directory, fsync, rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(path: pathlib.Path) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: nothing to resume (train without --resume first)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain containers only
    except Exception as err:  # a corrupt file: say which and why
        raise ValueError(f"checkpoint {path} is unreadable ({err}); delete it to restart the run") from err
