"""Random draws for a few rows of a batch, equal to those rows of the draw for the whole batch.

The JAX quadrotor restarts only the sub-envs whose episode ended; drawing their new starts for all
``N`` sub-envs and keeping a few rows costs ~10 ns per number per sub-env on this CPU (threefry),
more than the whole physics step. JAX's default PRNG (threefry2x32 with
``jax_threefry_partitionable``, the default since JAX 0.5) computes element ``i`` of a draw from the
key and the counter ``i`` alone, so the rows ``r`` of ``jax.random.uniform(key, (N, W))`` are the
threefry of counters ``r * W + j``: :func:`uniform_rows` computes just those, bit for bit (tested
against the full draw, tests/sim/test_quad_jax_fast.py). For any other PRNG it draws the whole batch
and gathers the rows (the same numbers, at the full cost).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry2x32_p

_ONE_BITS = np.array(1.0, np.float32).view(np.uint32)


def counter_based(key: Any) -> bool:
    """Whether rows of ``key``'s draws can be computed alone (a typed threefry key, partitionable mode)."""
    if not (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ()):
        return False
    return bool(jax.config.jax_threefry_partitionable) and str(jax.random.key_impl(key)) == "threefry2x32"


def uniform_rows(key: Any, rows: Any, num_rows: int, width: int, minval: Any = 0.0, maxval: Any = 1.0) -> Any:
    """``jax.random.uniform(key, (num_rows, width), float32, minval, maxval)[rows]``, ``(len(rows), width)``.

    ``rows=None`` is the whole draw; rows outside ``[0, num_rows)`` give numbers no caller may use.
    """
    if rows is None:
        return jax.random.uniform(key, (num_rows, width), jnp.float32, minval, maxval)
    if num_rows * width >= 2 ** 32 or not counter_based(key):
        return jax.random.uniform(key, (num_rows, width), jnp.float32, minval, maxval)[jnp.clip(rows, 0, num_rows - 1)]
    words = jax.random.key_data(key)
    counts = rows.astype(jnp.uint32)[:, None] * np.uint32(width) + jnp.arange(width, dtype=jnp.uint32)
    bits1, bits2 = threefry2x32_p.bind(words[0], words[1], jnp.zeros_like(counts), counts)
    mantissa = jax.lax.shift_right_logical(bits1 ^ bits2, np.uint32(32 - 23)) | _ONE_BITS
    floats = jax.lax.bitcast_convert_type(mantissa, jnp.float32) - np.float32(1.0)
    low, high = np.float32(minval), np.float32(maxval)
    return jnp.maximum(low, floats * (high - low) + low)


def normal_rows(key: Any, rows: Any, num_rows: int, width: int) -> Any:
    """``jax.random.normal(key, (num_rows, width), float32)[rows]`` (``rows=None``: the whole draw)."""
    if rows is None:
        return jax.random.normal(key, (num_rows, width), jnp.float32)
    low = np.nextafter(np.float32(-1.0), np.float32(0.0), dtype=np.float32)
    return np.float32(np.sqrt(2)) * jax.lax.erf_inv(uniform_rows(key, rows, num_rows, width, low, 1.0))
