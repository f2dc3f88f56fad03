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
import sys

os.environ.setdefault("MUJOCO_GL", "egl")

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "benchmarks"))

from jax_env_timing import load, print_table, time_jax, time_mujoco  # noqa: E402

BATCHES = (1, 1024, 16384)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    before = load()
    base = time_mujoco("puck_reach", args.seconds)
    rows = [(f"JAX, {n:,} envs", *time_jax("puck_reach", n, args.seconds)) for n in BATCHES]
    print_table(base, rows, args.seconds, before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
