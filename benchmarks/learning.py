"""Learning benchmark: eval success against env steps on pick_cube, several seeds per config.

    .venv/bin/python benchmarks/learning.py --configs rlpd,sac,bc --seeds 0 1 2 --steps 15000

Each run is a real `robot-rl train` process (two at a time, one torch thread each, since these
machines have 2 cores); results come from each run's eval.csv. Prints a markdown table (final
success, first step at >= 90%, wall time) and writes one curve PNG with every run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

CONFIGS = {
    "rlpd": ["--expert-demos", "20"],  # SAC/RLPD with 20 scripted demos, 50/50 sampling
    "sac": [],  # the same agent without demos
    "bc": ["--algo", "bc", "--expert-demos", "20"],
    "rlpd-pixels": ["--expert-demos", "20", "--obs", "pixels"],
    "rlpd-hil": ["--expert-demos", "20", "--hil", "simulated"],  # + the simulated human taking over
}


def read_rows(path: pathlib.Path) -> list[dict]:
    with open(path) as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def _configured_steps(run_dir: pathlib.Path) -> int:
    import json

    return int(json.loads((run_dir / "config.json").read_text())["steps"])


def run_one(config: str, seed: int, steps: int, out: pathlib.Path, extra: list[str], reuse: bool = False) -> dict:
    name = f"{config}-s{seed}"
    done = out / name / "eval.csv"
    if reuse and done.exists() and read_rows(done) and read_rows(done)[-1]["step"] >= _configured_steps(out / name):
        rows = read_rows(done)  # a finished run (--reuse): report it, don't rerun; wall time from file times
        reached = next((int(r["step"]) for r in rows if r["success_rate"] >= 0.9), None)
        return {"config": config, "seed": seed, "rows": rows, "final": rows[-1]["success_rate"], "reached_90": reached,
                "wall_s": done.stat().st_mtime - (out / name / "config.json").stat().st_mtime}
    args = [sys.executable, "-m", "robot_rl.cli", "train", "--task", "pick_cube", "--seed", str(seed), "--steps", str(steps),
            "--out", str(out), "--name", name, "--threads", "1", *CONFIGS[config], *extra]
    start = time.monotonic()
    log = out / f"{name}.log"
    with open(log, "w") as f:
        proc = subprocess.run(args, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed, see {log}")
    rows = read_rows(out / name / "eval.csv")
    reached = next((int(r["step"]) for r in rows if r["success_rate"] >= 0.9), None)
    return {"config": config, "seed": seed, "rows": rows, "final": rows[-1]["success_rate"], "reached_90": reached, "wall_s": wall}


def plot(results: list[dict], png: pathlib.Path, title: str = "pick_cube (state), one line per seed") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"rlpd": "tab:green", "sac": "tab:red", "bc": "tab:blue", "rlpd-pixels": "tab:purple", "rlpd-hil": "tab:orange"}
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for r in results:
        ax.plot([x["step"] for x in r["rows"]], [x["success_rate"] for x in r["rows"]], "o-", color=colors.get(r["config"]), alpha=0.7,
                label=r["config"] if r["seed"] == min(x["seed"] for x in results if x["config"] == r["config"]) else None)
    ax.set_xlabel("env steps (bc: gradient updates)")
    ax.set_ylabel("eval success rate")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(png)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="rlpd,sac,bc")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=15_000)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "runs" / "bench-learning")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="report finished runs already in --out instead of rerunning them")
    parser.add_argument("extra", nargs="*", help="more `robot-rl train` flags, after --")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(c, s) for c in args.configs.split(",") for s in args.seeds]
    with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
        results = list(pool.map(lambda job: run_one(job[0], job[1], args.steps, args.out, args.extra, args.reuse), jobs))
    print(f"Machine: {os.cpu_count()} cores; {args.steps} steps per run; flags: {' '.join(args.extra) or '(defaults)'}\n")
    print("| config | seed | final eval success | first eval >= 90% at step | wall time |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['config']} | {r['seed']} | {r['final']:.0%} | {r['reached_90'] or 'not reached'} | {r['wall_s'] / 60:.1f} min |")
    plot(results, args.out / "learning.png")
    print(f"\ncurves: {args.out / 'learning.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
