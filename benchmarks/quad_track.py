"""quad_track baselines in MuJoCo: the scripted expert (the position controller tracking the
figure-eight) over seeded episodes, with the metrics of :func:`tasks.quad.track.tracking_metrics`.

    .venv/bin/python benchmarks/quad_track.py [--episodes 16] [--first-seed 0] [--json FILE] [-- key=value ...]

Rows: the position controller with velocity and acceleration feed-forward (the task's expert), and
with velocity feed-forward only. Every episode starts from quad_hover-style random starts around the
reference's first point with a random phase; extra ``key=value`` pairs after ``--`` are task
options (:class:`tasks.quad.track.QuadTrackConfig`, numbers parsed as Python literals).
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import robot_rl  # noqa: E402
from tasks.quad.track import QuadTrackConfig, tracking_metrics  # noqa: E402

ROWS = {"PID, velocity + acceleration feed-forward (expert)": {"accel_feedforward": True},
        "PID, velocity feed-forward only": {"accel_feedforward": False}}


def load() -> str:
    try:
        return pathlib.Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "?"


def fly_episode(env, seed: int) -> dict[str, float]:
    """One episode of the task's expert; the metrics of its per-step tracking errors."""
    env.reset(seed=seed)
    task, errors, crashed = env.unwrapped.task, [], False
    for _ in range(task.max_episode_steps):
        _, _, terminated, truncated, info = env.step(task.expert(env.unwrapped.state))
        errors.append(info["tracking_error_m"])
        if terminated or truncated:
            crashed = terminated
            break
    c = task.config
    return {"seed": seed, **tracking_metrics(errors, 1.0 / task.control_hz, c.settle_time_s, c.settle_tolerance_m,
                                             crashed)}


def summarize(name: str, episodes: list[dict], wall_s: float) -> dict:
    rms = np.array([e["rms_m"] for e in episodes])
    settle = np.array([e["settle_s"] for e in episodes])
    settled = settle[np.isfinite(settle)]
    return {"controller": name, "episodes": len(episodes), "rms_median_m": float(np.nanmedian(rms)),
            "rms_max_m": float(np.nanmax(rms)), "settled": int(settled.size),
            "settle_median_s": float(np.median(settled)) if settled.size else math.nan,
            "settle_max_s": float(settled.max()) if settled.size else math.nan,
            "crash_rate": float(np.mean([e["crashed"] for e in episodes])), "wall_s": wall_s, "load": load(),
            "per_episode": episodes}


def seconds(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"


def row(r: dict) -> str:
    return (f"| {r['controller']} | {r['episodes']} | {r['rms_median_m'] * 100:.1f} | {r['rms_max_m'] * 100:.1f} | "
            f"{r['settled']}/{r['episodes']} | {seconds(r['settle_median_s'])} | {seconds(r['settle_max_s'])} | "
            f"{r['crash_rate']:.0%} |")


def parse_options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"task options are key=value, got {pair!r}")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--json", type=pathlib.Path, default=None, help="write the results here")
    args, extra = parser.parse_known_args()
    options = {"random_phase": True, **parse_options([a for a in extra if a != "--"])}
    print(f"quad_track in MuJoCo, {args.episodes} episodes (seeds {args.first_seed}..), options {options}; "
          f"load {load()}", flush=True)
    config = QuadTrackConfig(**options)
    print(f"| controller | episodes | RMS after {config.settle_time_s:g} s, median cm | RMS max cm | settled "
          f"(<= {config.settle_tolerance_m * 100:g} cm) | "
          "settle median s | settle max s | crashes |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    results = []
    for name, row_options in ROWS.items():
        env = robot_rl.make("quad_track", **{**options, **row_options})
        try:
            start = time.perf_counter()
            episodes = [fly_episode(env, seed) for seed in range(args.first_seed, args.first_seed + args.episodes)]
            results.append(summarize(name, episodes, time.perf_counter() - start))
        finally:
            env.close()
        print(row(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
