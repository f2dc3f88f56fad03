"""peg_insert benchmark: the scripted expert's success rate, env speed against pick_cube, and
RLPD (20 scripted demos, state observations) env steps to >= 90% eval success per seed.

    .venv/bin/python benchmarks/peg_insert.py --expert-episodes 50 --speed-seconds 10   # expert + speed
    .venv/bin/python benchmarks/peg_insert.py --seeds 0 1 2 --steps 20000               # + the learning runs
    .venv/bin/python benchmarks/peg_insert.py --seeds 0 --report                        # report runs in --out

Learning runs are real `robot-rl train --task peg_insert --expert-demos 20` processes (one torch
thread each, one after the other unless --parallel), read back from their eval.csv; --report
summarizes runs already in --out, finished or still going. SERL's reference: peg insertion at
100% within ~30 min of real training at 10 Hz, i.e. <= 18k env steps.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import robot_rl  # noqa: E402
from learning import plot, read_rows  # noqa: E402

TRAIN_FLAGS = ["--task", "peg_insert", "--expert-demos", "20", "--threads", "1", "--video-episodes", "0"]


def expert_success(episodes: int) -> tuple[int, float]:
    """Seeded episodes of the scripted expert: (successes, mean episode length in steps)."""
    env = robot_rl.make("peg_insert")
    successes, lengths = 0, []
    try:
        for seed in range(episodes):
            env.reset(seed=seed)
            task = env.unwrapped.task
            for step in range(1, task.max_episode_steps + 1):
                _, _, terminated, truncated, info = env.step(task.expert(env.unwrapped.state))
                if terminated or truncated:
                    break
            successes += bool(info["success"])
            lengths.append(step)
    finally:
        env.close()
    return successes, float(np.mean(lengths))


def random_steps_per_s(task: str, seconds: float, seed: int = 0) -> float:
    """Env steps/s with random actions, state observations, resets included."""
    env = robot_rl.make(task)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    steps, start = 0, time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            steps += 1
            if terminated or truncated:
                env.reset()
    finally:
        env.close()
    return steps / (time.perf_counter() - start)


def speed_table(seconds: float, repeats: int) -> list[str]:
    """peg_insert vs pick_cube, alternating rounds so both see the same machine load."""
    rates: dict[str, list[float]] = {"pick_cube": [], "peg_insert": []}
    for _ in range(repeats):
        for task in rates:
            rates[task].append(random_steps_per_s(task, seconds))
    base = statistics.median(rates["pick_cube"])
    lines = ["| task | env steps/s, median (range) | vs pick_cube |", "|---|---|---|"]
    for task, values in rates.items():
        lines.append(f"| {task} | {statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f}) | "
                     f"{statistics.median(values) / base:.2f}x |")
    return lines


def run_summary(run_dir: pathlib.Path, seed: int) -> dict:
    """What a run (finished or not) has reached: eval rows, first step at >= 90%, last logged step."""
    rows = read_rows(run_dir / "eval.csv") if (run_dir / "eval.csv").exists() else []
    configured = int(json.loads((run_dir / "config.json").read_text())["steps"]) if (run_dir / "config.json").exists() else 0
    reached = next((int(r["step"]) for r in rows if r["success_rate"] >= 0.9), None)
    last = int(rows[-1]["step"]) if rows else 0
    return {"config": "rlpd", "seed": seed, "rows": rows, "reached_90": reached, "last_eval_step": last,
            "final": rows[-1]["success_rate"] if rows else None, "finished": bool(rows) and last >= configured}


def train(seed: int, steps: int, out: pathlib.Path, eval_every: int, extra: list[str]) -> dict:
    name = f"rlpd-s{seed}"
    args = [sys.executable, "-m", "robot_rl.cli", "train", *TRAIN_FLAGS, "--seed", str(seed), "--steps", str(steps),
            "--eval-every", str(eval_every), "--out", str(out), "--name", name, *extra]
    start = time.monotonic()
    with open(out / f"{name}.log", "w") as log:
        proc = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed (exit {proc.returncode}), see {out / f'{name}.log'}")
    return run_summary(out / name, seed) | {"wall_s": time.monotonic() - start}


def learning_table(results: list[dict]) -> list[str]:
    lines = ["| seed | evals (step: success) | first eval >= 90% at step | state |", "|---|---|---|---|"]
    for r in results:
        evals = ", ".join(f"{int(x['step'])}: {x['success_rate']:.0%}" for x in r["rows"]) or "none yet"
        state = "finished" if r["finished"] else f"stopped/running, last eval at {r['last_eval_step']}"
        lines.append(f"| {r['seed']} | {evals} | {r['reached_90'] or 'not reached'} | {state} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expert-episodes", type=int, default=50)
    parser.add_argument("--speed-seconds", type=float, default=10.0)
    parser.add_argument("--speed-repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="*", default=[], help="RLPD learning runs (none: expert and speed only)")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--eval-every", type=int, default=2_000)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "runs" / "bench-peg_insert")
    parser.add_argument("--report", action="store_true", help="summarize the runs in --out instead of training")
    parser.add_argument("extra", nargs="*", help="more `robot-rl train` flags, after --")
    args = parser.parse_args()
    print(f"Machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start\n")
    if args.expert_episodes:
        successes, mean_len = expert_success(args.expert_episodes)
        print(f"expert: {successes}/{args.expert_episodes} seeded episodes succeed, {mean_len:.1f} steps on average\n")
    if args.speed_seconds > 0:
        print("\n".join(speed_table(args.speed_seconds, args.speed_repeats)) + "\n")
    if args.seeds:
        args.out.mkdir(parents=True, exist_ok=True)
        if args.report:
            results = [run_summary(args.out / f"rlpd-s{seed}", seed) for seed in args.seeds]
        else:
            with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
                results = list(pool.map(lambda s: train(s, args.steps, args.out, args.eval_every, args.extra), args.seeds))
        print("\n".join(learning_table(results)))
        plot(results, args.out / "peg_insert.png", title="peg_insert (state), RLPD with 20 demos, one line per seed")
        print(f"\ncurves: {args.out / 'peg_insert.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
