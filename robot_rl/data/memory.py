"""The replay buffer's memory budget: what is available (cgroup-aware), a readable line, a refusal."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from robot_rl.data.schema import ObsSpec

MEMORY_FRACTION = 0.9
"""A buffer may take at most this share of the available memory (``check_memory=True``)."""


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (else free physical pages), capped by a cgroup v2 limit."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return _cap_by_cgroup(available)


def _cap_by_cgroup(available: int) -> int:
    """A container's memory limit (cgroup v2 ``memory.max`` minus usage), when lower."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        return available
    return available if limit == "max" else min(available, max(int(limit) - used, 0))


def describe_obs(obs_spec: ObsSpec) -> str:
    """``2 cameras 128x128 uint8 + 7 floats``: a canonical observation, for the memory budget line."""
    sizes = {f"{h}x{w}" for h, w, _ in obs_spec.images.values()}
    count = len(obs_spec.images)
    if count and len(sizes) == 1:
        cameras = f"{count} camera{'s' if count > 1 else ''} {sizes.pop()} uint8"
    else:
        cameras = "cameras " + ", ".join(f"{k} {h}x{w}" for k, (h, w, _) in obs_spec.images.items()) + " uint8"
    floats = f"{obs_spec.state_dim} floats"
    return f"{cameras} + {floats}" if count else floats


def announce_memory(buffer: Any, check: bool) -> None:
    """Print the budget; with ``check``, raise ``MemoryError`` past 90% of the available memory."""
    needed = buffer.planned_nbytes()
    available = available_memory_bytes()
    shown = "unknown" if available is None else f"{available / 1e9:.1f} GB"
    print(f"replay {buffer.name!r}: capacity {buffer.capacity:,} transitions, {buffer.describe_contents()} "
          f"-> {needed / 1e9:.1f} GB, {needed // buffer.capacity:,} bytes per transition (available: {shown})", flush=True)
    if check and available is not None and needed > MEMORY_FRACTION * available:
        per_slot = needed // buffer.capacity
        fits = int(MEMORY_FRACTION * available) // per_slot
        raise MemoryError(
            f"replay {buffer.name!r} needs {needed / 1e9:.1f} GB for capacity {buffer.capacity:,} "
            f"({per_slot:,} bytes per transition) but only {available / 1e9:.1f} GB is available; "
            f"a capacity of at most {fits:,} fits in {MEMORY_FRACTION:.0%} of it "
            "(or pass check_memory=False)")
