"""A JAX env's batch split over several XLA CPU devices in one process, each running its share on one core.

XLA on CPU spreads one program over the cores by itself, but a simulator step is ~200 small
elementwise kernels and the threads meet after each. Split over two CPU devices, each
single-threaded (``--xla_cpu_multi_thread_eigen=false``,
``--xla_cpu_enable_concurrency_optimized_scheduler=false``), the two shares run side by side. The
quadrotor's fused step at 16,384 sub-envs on the idle 2-core VM (``benchmarks/quad.py``, medians of
5 processes): hold actions 1.13e7 env steps/s on one device against 1.89e7 on two devices of 8,192;
random actions 7.3e6 against 1.05e7 (README, "Speed").

XLA reads ``XLA_FLAGS`` when JAX's CPU backend starts (the process's first JAX computation), so call
:func:`use_host_devices` before any::

    from robot_rl.host_devices import over_devices, use_host_devices
    use_host_devices(2)                                   # before the first JAX computation
    reset, step = robot_rl.make_vector("quad_hover", backend="jax", num_envs=8192).functional
    batch, key, obs = over_devices(reset)(jax.random.split(jax.random.key(0), 2))   # 2 x 8,192 sub-envs
    rollout = over_devices(lambda batch, key: jax.lax.scan(..., (batch, key), None, length=100))

Every input and output of a function given to :func:`over_devices` gains a leading device axis.
"""

from __future__ import annotations

import os
import shlex
from typing import Any, Callable

DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"
ONE_CORE_FLAGS = ("--xla_cpu_multi_thread_eigen=false", "--xla_cpu_enable_concurrency_optimized_scheduler=false")


def host_device_flags(count: int, existing: str = "") -> str:
    """``existing`` XLA flags with ``count`` CPU devices, each single-threaded (a previous device count
    is replaced, other flags kept)."""
    if not (isinstance(count, int) and count >= 1):
        raise ValueError(f"the number of host devices must be an integer >= 1, got {count!r}")
    kept = [flag for flag in shlex.split(existing) if not flag.startswith(DEVICE_COUNT_FLAG)]
    wanted = [flag for flag in ONE_CORE_FLAGS if flag.split("=")[0] not in {f.split("=")[0] for f in kept}]
    return " ".join(kept + [f"{DEVICE_COUNT_FLAG}={count}", *wanted])


def _backend_started() -> bool:
    try:  # private, but the only way to ask without starting it (jax 0.10)
        from jax._src.xla_bridge import backends_are_initialized
    except ImportError:  # pragma: no cover - another jax: assume it may have started
        return True
    return backends_are_initialized()


def use_host_devices(count: int) -> None:
    """Make JAX's CPU backend start with ``count`` single-threaded devices (see the module docstring).
    Raises ``RuntimeError`` if JAX already started with another device count."""
    flags = host_device_flags(count, os.environ.get("XLA_FLAGS", ""))
    if _backend_started():
        import jax

        if jax.local_device_count() != count:
            raise RuntimeError(f"JAX already started with {jax.local_device_count()} device(s): call "
                               f"use_host_devices({count}) before the process's first JAX computation, or set "
                               f"XLA_FLAGS='{flags}' in the environment")
        return
    os.environ["XLA_FLAGS"] = flags


def over_devices(fn: Callable[..., Any], count: int | None = None) -> Callable[..., Any]:
    """``fn`` (of one device's share) jitted over the first ``count`` local devices (default: all): each
    argument's and result's leaves carry a leading axis of ``count``, one entry per device."""
    import jax
    import numpy as np
    from jax.sharding import Mesh, PartitionSpec

    devices = jax.local_devices()
    count = len(devices) if count is None else count
    if not 1 <= count <= len(devices):
        raise ValueError(f"over_devices: {count} devices asked, {len(devices)} available (use_host_devices)")
    mesh = Mesh(np.array(devices[:count]), ("devices",))

    def share(*args: Any) -> Any:
        out = fn(*jax.tree.map(lambda leaf: leaf[0], args))
        return jax.tree.map(lambda leaf: leaf[None], out)

    # check_vma=False: the env's conditionals mix per-device and replicated values, which the
    # varying-axes check rejects; each device runs its own share, nothing crosses devices.
    return jax.jit(jax.shard_map(share, mesh=mesh, in_specs=PartitionSpec("devices"),
                                 out_specs=PartitionSpec("devices"), check_vma=False))
