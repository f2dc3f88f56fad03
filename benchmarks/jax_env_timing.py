"""Shared timing for the natively batched JAX envs against their MuJoCo RobotEnv (benchmarks/car.py,
benchmarks/puck_jax.py): both stepped with uniform random actions through their public interface
(numpy in and out, infos built, resets included), the MuJoCo env as the baseline of the table."""

from __future__ import annotations

import os
import pathlib
import platform
import time

import numpy as np

import robot_rl


def load() -> str:
    """The 1-minute load average, as /proc/loadavg writes it ("?" where there is none)."""
    try:
        return pathlib.Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "?"


def time_mujoco(task: str, seconds: float) -> float:
    """Env steps/s of one MuJoCo RobotEnv of ``task`` over ``seconds`` (resets included)."""
    env = robot_rl.make(task)
    env.reset(seed=0)
    low, high = env.action_space.low, env.action_space.high
    rng, steps, start = np.random.default_rng(0), 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(rng.uniform(low, high).astype(np.float32))
        if terminated or truncated:
            env.reset()
        steps += 1
    env.close()
    return steps / (time.perf_counter() - start)


def time_jax(task: str, num_envs: int, seconds: float) -> tuple[float, float]:
    """(env steps/s over all ``num_envs``, seconds of compile + first step) of ``task``'s JAX env."""
    envs = robot_rl.make_vector(task, backend="jax", num_envs=num_envs)
    space = envs.single_action_space
    actions = np.random.default_rng(0).uniform(space.low, space.high, (num_envs, *space.shape)).astype(np.float32)
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


def print_table(base: float, rows: list[tuple[str, float, float]], seconds: float, load_before: str) -> None:
    """The README table: the MuJoCo baseline, then ``(name, steps/s, compile s)`` rows as ratios to it."""
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load {load_before} before, {load()} after; {seconds:.0f} s per row.\n")
    print("| env | env steps/s | vs MuJoCo RobotEnv | compile + first step |")
    print("|---|---|---|---|")
    print(f"| MuJoCo RobotEnv, 1 env | {base:,.0f} | 1.0x | - |")
    for name, rate, compile_s in rows:
        print(f"| {name} | {rate:,.0f} | {rate / base:,.1f}x | {compile_s:.1f} s |")
