"""Env steps/s of pick_cube as a vector env: --num-envs 1, 2, 4, sync and subprocess, in one run.

    .venv/bin/python benchmarks/vector_envs.py [--seconds 10] [--obs state|pixels]

Every configuration is stepped with random actions (autoreset included) through the same
``robot_rl.envs.make_envs`` the trainer uses; the baseline is one env stepped in this process
(``--num-envs 1`` sync), measured in the same run, and each row prints its ratio to it. The
configurations are measured ``--repeats`` times in rotation (so a change of load hits all of
them alike) and each row shows the median and the range. The machine's load
(``/proc/loadavg``) is printed before and after. Timing excludes start-up (spawning the
workers); the first steps (GL contexts, caches) are a warm-up.
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

from robot_rl.envs import EnvConfig, make_envs  # noqa: E402

CONFIGS = [(1, "sync"), (2, "sync"), (4, "sync"), (1, "subprocess"), (2, "subprocess"), (4, "subprocess")]


def load() -> str:
    try:
        return pathlib.Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "?"


def time_steps(cfg: EnvConfig, num_envs: int, vectorization: str, seconds: float, warmup: int = 5) -> dict:
    """Transitions/s (all sub-envs together) of ``num_envs`` envs over ``seconds`` of stepping."""
    envs = make_envs(cfg, num_envs, vectorization)
    try:
        envs.reset(seed=0)
        rng = np.random.default_rng(0)
        shape = (num_envs, *envs.single_action_space.shape)
        for _ in range(warmup):
            envs.step(rng.uniform(-1, 1, shape).astype(np.float32))
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            envs.step(rng.uniform(-1, 1, shape).astype(np.float32))
            steps += 1
        elapsed = time.perf_counter() - start
    finally:
        envs.close()
    return {"vector_steps": steps, "transitions_per_s": steps * num_envs / elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timed stepping per configuration")
    parser.add_argument("--obs", choices=("state", "pixels"), default="state")
    parser.add_argument("--task", default="pick_cube")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over all configurations")
    args = parser.parse_args(argv)
    options = ("image_height=64", "image_width=64") if args.obs == "pixels" else ()
    cfg = EnvConfig(task=args.task, obs=args.obs, env_kwargs=options)
    before = load()
    rates: dict[tuple[int, str], list[float]] = {config: [] for config in CONFIGS}
    for round_ in range(args.repeats):
        for num_envs, vectorization in CONFIGS:
            print(f"round {round_ + 1}: --num-envs {num_envs} --vectorization {vectorization}...", file=sys.stderr, flush=True)
            rates[(num_envs, vectorization)].append(time_steps(cfg, num_envs, vectorization, args.seconds)["transitions_per_s"])
    base = float(np.median(rates[CONFIGS[0]]))
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load {before} before, {load()} after; {args.task} obs={args.obs}, {args.seconds:.0f} s per measurement, "
          f"median of {args.repeats} rounds.\n")
    print("| --num-envs | vectorization | env steps/s, all envs (range) | vs 1 env in-process |")
    print("|---|---|---|---|")
    for (num_envs, vectorization), values in rates.items():
        median = float(np.median(values))
        print(f"| {num_envs} | {vectorization} | {median:.0f} ({min(values):.0f}-{max(values):.0f}) | {median / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
