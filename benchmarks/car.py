"""The car's natively batched JAX env against its MuJoCo RobotEnv, measured in the same run.

    .venv/bin/python benchmarks/car.py [--seconds 5]

Both run car_lap with random actions through their public interface (``env.step`` /
``envs.step``: numpy in and out, infos built, resets included -- in MuJoCo a reset after a
collision runs the recovery manoeuvre, ~1.5 s of simulated driving); the baseline is one MuJoCo
``RobotEnv`` (``robot_rl.make("car_lap")``, state observations). The JAX env is timed at 1, 1,024
and 16,384 envs after its compile (reported separately), and once more at 16,384 envs fused: 50
steps per call inside one ``jax.lax.scan`` over ``envs.functional()``'s step, nothing leaving the
device (how a fused pre-training loop would run it). Prints the load before and after.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import robot_rl  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))

from jax_env_timing import load, print_table, time_jax, time_mujoco  # noqa: E402

BATCHES = (1, 1024, 16384)
FUSED_BATCH, FUSED_STEPS = 16384, 50


def time_fused(seconds: float) -> tuple[float, float]:
    """(env steps/s, compile seconds) of FUSED_STEPS steps per jitted call, state kept on the device."""
    import jax

    envs = robot_rl.make_vector("car_lap", backend="jax", num_envs=FUSED_BATCH)
    reset, step = envs.functional()
    actions = jax.numpy.asarray(np.random.default_rng(0).uniform(-1, 1, (FUSED_BATCH, 2)).astype(np.float32))

    @jax.jit
    def rollout(batch, key):
        def body(carry, _):
            batch, key, out = step(*carry, actions)
            return (batch, key), out[1].sum()
        (batch, key), rewards = jax.lax.scan(body, (batch, key), None, length=FUSED_STEPS)
        return batch, key, rewards

    start = time.perf_counter()
    batch, key, _ = reset(jax.random.key(0))
    batch, key, rewards = rollout(batch, key)
    rewards.block_until_ready()
    compile_s = time.perf_counter() - start
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch, key, rewards = rollout(batch, key)
        rewards.block_until_ready()
        calls += 1
    return calls * FUSED_STEPS * FUSED_BATCH / (time.perf_counter() - start), compile_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    before = load()
    base = time_mujoco("car_lap", args.seconds)
    rows = [(f"JAX, {n:,} envs", *time_jax("car_lap", n, args.seconds)) for n in BATCHES]
    rows.append((f"JAX, {FUSED_BATCH:,} envs, fused ({FUSED_STEPS} steps per call)", *time_fused(args.seconds)))
    print_table(base, rows, args.seconds, before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
