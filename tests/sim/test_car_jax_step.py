"""The JAX car's step: restarts built for the restarting sub-envs alone (``sparse_restarts``) give
the very episodes that building them for every sub-env gives."""

from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np

import robot_rl
from sim.car.jax_step import build_step, placeholder_batch

NUM_ENVS, SPARSE, STEPS = 256, 32, 40


def _run(envs, sparse: int) -> tuple[list, list[int]]:
    """``STEPS`` steps with random actions after a reset of every sub-env; the outputs and the restart counts."""
    reset, _, env_step, _ = build_step(envs.task.arrays, envs.task.config.max_episode_steps, envs.config, NUM_ENVS,
                                       envs.control_hz, sparse)
    rng = np.random.default_rng(3)
    batch, key, _ = env_step(placeholder_batch(reset, jax.random.key(5)), jax.random.key(5),
                             np.zeros((NUM_ENVS, 2), np.float32), True)
    outputs, restarts = [], []
    for _ in range(STEPS):
        batch, key, out = env_step(batch, key, rng.uniform(-1, 1, (NUM_ENVS, 2)).astype(np.float32), False)
        outputs.append(jax.device_get((out, batch)))
        restarts.append(int(np.sum(out[3])))
    return outputs, restarts


def test_sparse_restarts_match_restarting_every_sub_env():
    envs = robot_rl.make_vector("car_lap", backend="jax", num_envs=NUM_ENVS)
    # The two builds compile in parallel threads (XLA compiles without holding the GIL).
    with ThreadPoolExecutor(2) as pool:
        (dense, restarts), (sparse, sparse_restarts) = pool.map(lambda sparse_rows: _run(envs, sparse_rows), (0, SPARSE))
    assert restarts == sparse_restarts
    assert any(0 < n <= SPARSE for n in restarts), f"no step took the sparse path: {restarts}"
    for want, got in zip(jax.tree.leaves(dense), jax.tree.leaves(sparse)):
        if np.issubdtype(np.asarray(want).dtype, np.floating):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(got, want)
