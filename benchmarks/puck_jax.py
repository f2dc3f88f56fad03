"""The puck's natively batched JAX env against its MuJoCo RobotEnv, measured in the same run.

    .venv/bin/python benchmarks/puck_jax.py [--seconds 5]

Both are stepped with random actions through their public interface (``env.step`` /
``envs.step``: numpy in and out, infos built, resets included); the baseline is one MuJoCo
``RobotEnv`` (``robot_rl.make("puck_reach")``). The JAX env is timed at 1, 1,024 and 16,384
envs after its compile (reported separately). Prints the load before and after.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import robot_rl  # noqa: E402

BATCHES = (1, 1024, 16384)


def load() -> str:
    try:
        return pathlib.Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "?"


def time_mujoco(seconds: float) -> float:
    env = robot_rl.make("puck_reach")
    env.reset(seed=0)
    rng, steps, start = np.random.default_rng(0), 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        if terminated or truncated:
            env.reset()
        steps += 1
    env.close()
    return steps / (time.perf_counter() - start)


def time_jax(num_envs: int, seconds: float) -> tuple[float, float]:
    """(env steps/s over all envs, seconds of compile + first step)."""
    envs = robot_rl.make_vector("puck_reach", backend="jax", num_envs=num_envs)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (num_envs, 2)).astype(np.float32)
    start = time.perf_counter()
    envs.reset(seed=0)
    envs.step(actions)
    compile_s = time.perf_counter() - start
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        envs.step(actions)
        steps += 1
    rate = steps * num_envs / (time.perf_counter() - start)
    envs.close()
    return rate, compile_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    before = load()
    base = time_mujoco(args.seconds)
    rows = [(n, *time_jax(n, args.seconds)) for n in BATCHES]
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load {before} before, {load()} after; {args.seconds:.0f} s per row.\n")
    print("| env | env steps/s | vs MuJoCo RobotEnv | compile + first step |")
    print("|---|---|---|---|")
    print(f"| MuJoCo RobotEnv, 1 env | {base:,.0f} | 1.0x | - |")
    for n, rate, compile_s in rows:
        print(f"| JAX, {n:,} envs | {rate:,.0f} | {rate / base:,.1f}x | {compile_s:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
