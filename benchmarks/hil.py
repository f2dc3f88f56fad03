"""Human-in-the-loop benchmark: env steps to >= 90% eval success on pick_cube with 20 demos, with
and without the simulated human (the task's scripted expert taking over when the policy strays),
and the intervention rate falling over training.

    .venv/bin/python benchmarks/hil.py --seeds 0 1 2 --steps 15000 [-- more robot-rl train flags]

Runs are real `robot-rl train` processes (see benchmarks/learning.py); the intervention rate per
2,500-step window comes from the `intervention` flags in each run's episode files.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from learning import ROOT, plot, run_one  # noqa: E402

WINDOW = 2_500


def intervention_rates(run_dir: pathlib.Path, steps: int) -> list[float]:
    """Share of intervened steps in each WINDOW-step window of the run's online episodes."""
    from robot_rl.data import read_episodes

    episodes, _ = read_episodes(run_dir / "episodes")
    flags = np.concatenate([e.intervention for e in episodes]) if episodes else np.zeros(0, bool)
    return [float(flags[i : i + WINDOW].mean()) for i in range(0, min(len(flags), steps), WINDOW)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=15_000)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "runs" / "bench-hil")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--configs", default="rlpd,rlpd-hil", help="rlpd-hil alone reuses nothing: compare with a learning.py run")
    parser.add_argument("--reuse", action="store_true", help="report finished runs already in --out instead of rerunning them")
    parser.add_argument("extra", nargs="*", help="more `robot-rl train` flags, after --")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(c, s) for c in args.configs.split(",") for s in args.seeds]
    with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
        results = list(pool.map(lambda job: run_one(job[0], job[1], args.steps, args.out, args.extra, args.reuse), jobs))
    print(f"Machine: {os.cpu_count()} cores; {args.steps} steps per run; flags: {' '.join(args.extra) or '(defaults)'}\n")
    print(f"| config | seed | first eval >= 90% at step | final eval success | intervention rate per {WINDOW:,} steps | wall time |")
    print("|---|---|---|---|---|---|")
    for r in results:
        rates = intervention_rates(args.out / f"{r['config']}-s{r['seed']}", args.steps) if r["config"] == "rlpd-hil" else []
        rate_text = " -> ".join(f"{x:.0%}" for x in rates) or "-"
        print(f"| {r['config']} | {r['seed']} | {r['reached_90'] or 'not reached'} | {r['final']:.0%} | {rate_text} | {r['wall_s'] / 60:.1f} min |")
    plot(results, args.out / "hil.png", "pick_cube (state): RLPD with and without the simulated human")
    print(f"\ncurves: {args.out / 'hil.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
