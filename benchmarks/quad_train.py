"""Hover training in seconds: ``robot-rl train-fused`` (fused TD3 in the JAX quadrotor) over several
seeds, each evaluated in MuJoCo, with the wall time and the machine's load.

    .venv/bin/python benchmarks/quad_train.py [--seeds 10] [--first-seed 0] [--episodes 32] [--compile-cache DIR] [--out DIR]

Every seed is a fresh ``robot-rl train-fused`` process (imports, env build, compilation, training:
``train_wall_s`` counts from building the JAX env to the trained actor; the import time is the
process's total minus what it reports). The torch actor it writes is loaded back as the SAC agent
and flown in MuJoCo from ``--episodes`` random starts (tilted up to 90 degrees); an episode holds
when its final-second position error RMS is within 5 cm. With ``--compile-cache`` the first seed
fills JAX's persistent compilation cache and the later ones reuse it (reported per seed).
Extra arguments after ``--`` go to ``robot-rl train-fused``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
ROBOT_RL = pathlib.Path(sys.executable).with_name("robot-rl")


def load() -> str:
    try:
        return pathlib.Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "?"


def run_seed(seed: int, args: argparse.Namespace, out: pathlib.Path, extra: list[str]) -> dict:
    cache = ["--compile-cache", str(args.compile_cache)] if args.compile_cache else []
    warm = bool(args.compile_cache and any(pathlib.Path(args.compile_cache).glob("*")))
    command = [str(ROBOT_RL), "train-fused", "--out", str(out), "--name", f"s{seed}", "--fused.seed", str(seed),
               "--eval-episodes", str(args.episodes), "--video-episodes", "1" if seed == 0 else "0", *cache, *extra]
    before, start = load(), time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        raise RuntimeError(f"seed {seed} failed ({done.returncode}): {done.stderr[-2000:]}")
    result = json.loads((out / f"s{seed}" / "result.json").read_text())
    return {"seed": seed, "process_s": time.perf_counter() - start, "load_before": before, "load_after": load(),
            "cache": "warm" if warm else ("cold" if args.compile_cache else "none"), **result}


def row(r: dict) -> str:
    return (f"| {r['seed']} | {r['cache']} | {r['train_wall_s']:.1f} | {r['process_s']:.0f} | "
            f"{r['within_tolerance']}/{r['episodes']} | {r['final_rms_median_m'] * 100:.2f} | "
            f"{r['final_rms_max_m'] * 100:.2f} | {r['crash_rate']:.0%} | {r['load_before']} / {r['load_after']} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--compile-cache", type=pathlib.Path, default=None)
    parser.add_argument("--out", type=pathlib.Path, default=None, help="run directories (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per seed [s]")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    out = args.out or pathlib.Path(tempfile.mkdtemp(prefix="quad_train_"))
    print(f"runs in {out}; load {load()}", flush=True)
    print("| seed | compile cache | train wall s | process s | held (<= 5 cm) | RMS median cm | RMS max cm | crashes | load before / after |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|", flush=True)
    results = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        results.append(run_seed(seed, args, out, extra))
        print(row(results[-1]), flush=True)
    held = sum(r["within_tolerance"] == r["episodes"] for r in results)
    walls = sorted(r["train_wall_s"] for r in results)
    print(f"\n{held}/{len(results)} seeds held every episode within 5 cm; train wall s min {walls[0]:.1f}, median "
          f"{walls[len(walls) // 2]:.1f}, max {walls[-1]:.1f}; under 60 s: {sum(w <= 60 for w in walls)}/{len(walls)}")
    (out / "summary.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0 if held == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
