"""Sim speed: robot_rl's pick_cube vs gym-hil's PandaPickCubeBase-v0, measured in the same run.

    .venv/bin/python benchmarks/sim_speed.py            # or: make bench

Both envs step with random actions (reset when an episode ends; resets are timed too), with
state observations and with two 128x128 cameras (front + wrist); ours also with the numpy
reference controller ticked from Python (the path before the compiled kernel). Every measurement
runs in ``--rounds`` interleaved rounds (ours, then gym-hil), pooled, with the per-round ratios
printed beside the pooled one: the machine's load drifts hit both sides alike. gym-hil runs in its
own venv (`.venv-bench`, created on first use: it pins mujoco < 3.9). Also reports the cost per
physics tick each way, the compiled kernels' first-use cost (compiling, and loading from numba's
cache), and the machine's load before and after. Prints a markdown table; paste it into the README.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_venv import ensure_bench_venv, run_peer  # noqa: E402

import robot_rl  # noqa: E402
from sim.arm.backend import MujocoArmConfig  # noqa: E402


def time_ours(obs: str, steps: int, seconds: float, seed: int = 0, kernel: str = "auto") -> dict:
    """Env steps/s of robot_rl pick_cube with random actions (2 cameras at 128x128 for pixels);
    ``kernel`` picks the impedance controller ("numpy": the reference, ticked from Python)."""
    impedance = dataclasses.replace(MujocoArmConfig().impedance, kernel=kernel)
    env = robot_rl.make("pick_cube", obs=obs, image_height=128, image_width=128, impedance=impedance)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    for _ in range(5):  # warm-up (first render creates the GL context)
        env.step(env.action_space.sample())
    timed, n = 0.0, 0
    start = time.perf_counter()
    while n < steps and time.perf_counter() - start < seconds:
        action = env.action_space.sample()
        t0 = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
        timed += time.perf_counter() - t0
        n += 1
    env.close()
    return {"steps": n, "seconds": timed, "steps_per_s": n / timed}


def _per_call_us(fn: Callable[[], object], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1e6


def time_ticks(ticks: int = 10000) -> dict:
    """Microseconds per controller call and per 500 Hz physics tick on the sim arm, each way."""
    arms = {}
    for kernel in ("numpy", "numba"):
        env = robot_rl.make("pick_cube", impedance=dataclasses.replace(MujocoArmConfig().impedance, kernel=kernel))
        env.reset(seed=0)
        arms[kernel] = (env, env.unwrapped.backend)
    fast, ref = arms["numba"][1], arms["numpy"][1]
    args = fast.controller_inputs()
    out = {
        "controller_numpy_us": _per_call_us(lambda: ref.controller.compute(*args), ticks),
        "controller_numba_call_us": _per_call_us(lambda: fast.controller.compute(*args), ticks),
        "tick_numpy_python_us": _per_call_us(lambda: ref.run_ticks(50), ticks // 50) / 50,
        "tick_numba_python_us": _per_call_us(lambda: fast.run_ticks(50, native=False), ticks // 50) / 50,
        "tick_native_us": _per_call_us(lambda: fast.run_ticks(50), ticks // 50) / 50,
        "mj_step_us": _per_call_us(lambda: mujoco.mj_step(fast.model, fast.data, nstep=50), ticks // 50) / 50,
        "native_ticks": fast.native_ticks,
    }
    for env, _ in arms.values():
        env.close()
    return out


def first_call_cost() -> dict:
    """Seconds to import the compiled kernels in a fresh process: compiling them (an empty
    NUMBA_CACHE_DIR) and loading them from the on-disk cache (numba's import included in both)."""
    code = "import time; t = time.perf_counter(); import drivers.arm.impedance_kernel; print(time.perf_counter() - t)"
    result = {}
    with tempfile.TemporaryDirectory() as empty:
        for label, extra in (("compile_s", {"NUMBA_CACHE_DIR": empty}), ("cached_s", {})):
            env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600, check=True)
            result[label] = float(proc.stdout.split()[-1])
    return result


def pooled(results: list[dict]) -> dict:
    """All rounds of one measurement as one: total steps over total timed seconds."""
    steps, seconds = sum(r["steps"] for r in results), sum(r["seconds"] for r in results)
    return {"steps": steps, "seconds": seconds, "steps_per_s": steps / seconds, "rounds": [r["steps_per_s"] for r in results]}


def table(rows: list[tuple[str, dict, dict, float]], ticks: dict, first: dict) -> str:
    lines = [
        "| observation | robot_rl steps/s | gym-hil steps/s | ratio (per round) | target |",
        "|---|---|---|---|---|",
    ]
    for label, ours, peer, target in rows:
        ratio = ours["steps_per_s"] / peer["steps_per_s"]
        per_round = ", ".join(f"{a / b:.1f}" for a, b in zip(ours["rounds"], peer["rounds"]))
        goal = f">= {target:.0f}x" if target else "-"
        lines.append(f"| {label} | {ours['steps_per_s']:.0f} | {peer['steps_per_s']:.2f} ({peer['steps']} steps) "
                     f"| **{ratio:.1f}x** ({per_round}) | {goal} |")
    lines.append("")
    lines.append(
        f"Per 500 Hz physics tick (MuJoCo step + Jacobian + controller; one 10 Hz env step = 50 ticks): "
        f"numpy controller ticked from Python {ticks['tick_numpy_python_us']:.1f} us, compiled controller ticked from "
        f"Python {ticks['tick_numba_python_us']:.1f} us, whole control steps in one native call {ticks['tick_native_us']:.1f} us "
        f"(native loop in use: {ticks['native_ticks']}); MuJoCo's mj_step alone {ticks['mj_step_us']:.1f} us. "
        f"One controller call from Python: numpy {ticks['controller_numpy_us']:.1f} us, compiled {ticks['controller_numba_call_us']:.1f} us. "
        f"First use of the compiled kernels in a process (numba import included): {first['compile_s']:.1f} s compiling "
        f"(empty cache), {first['cached_s']:.1f} s from the on-disk cache."
    )
    return "\n".join(lines)


def measure_rounds(args: argparse.Namespace, python: pathlib.Path) -> dict[str, dict]:
    """Each measurement in ``args.rounds`` interleaved rounds (ours, then gym-hil, per observation),
    each round with its share of the step and time budgets, so load drifts hit both sides alike."""
    k = args.rounds
    plan = {
        "ours_state_numpy": lambda: time_ours("state", args.state_steps // k, args.seconds / k, kernel="numpy"),
        "ours_state": lambda: time_ours("state", args.state_steps // k, args.seconds / k),
        "peer_state": lambda: run_peer(python, "state", args.state_steps // k, args.seconds / k, args.seconds / k + 120),
        "ours_pixels": lambda: time_ours("pixels", args.pixel_steps // k, args.seconds / k),
        "peer_pixels": lambda: run_peer(python, "pixels", args.peer_pixel_steps // k, args.peer_pixel_seconds / k,
                                        args.peer_pixel_seconds / k + 120),
    }
    results: dict[str, list[dict]] = {name: [] for name in plan}
    for round_ in range(k):
        for name, measure in plan.items():
            print(f"round {round_ + 1}/{k}: {name}...", file=sys.stderr, flush=True)
            results[name].append(measure())
    info = {key: results["peer_pixels"][0][key] for key in ("gl_renderer", "gym_hil_version", "mujoco_version")}
    return {**{name: pooled(runs) for name, runs in results.items()}, "peer_info": info}


def load_line() -> str:
    return "load average (1/5/15 min): " + " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-steps", type=int, default=3000)
    parser.add_argument("--pixel-steps", type=int, default=600)
    parser.add_argument("--peer-pixel-steps", type=int, default=120, help="gym-hil renders ~1 step/s: enough steps for a stable rate")
    parser.add_argument("--seconds", type=float, default=60.0, help="cap on each timed loop (over all rounds)")
    parser.add_argument("--peer-pixel-seconds", type=float, default=240.0, help="cap on gym-hil's pixel loop (over all rounds)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every measurement")
    parser.add_argument("--json", type=pathlib.Path, default=None, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")

    python = ensure_bench_venv(ROOT)
    load_before = load_line()
    first = first_call_cost()
    m = measure_rounds(args, python)
    ticks = time_ticks()
    load_after = load_line()

    info = m.pop("peer_info")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, MUJOCO_GL={os.environ['MUJOCO_GL']} (GL: {info['gl_renderer']}); "
          f"gym-hil {info['gym_hil_version']} (mujoco {info['mujoco_version']}), ours mujoco {mujoco.__version__}. "
          f"Before: {load_before}; after: {load_after}.\n")
    rows = [("state, numpy controller ticked from Python (before)", m["ours_state_numpy"], m["peer_state"], 0),
            ("state", m["ours_state"], m["peer_state"], 10), ("2 cameras 128x128", m["ours_pixels"], m["peer_pixels"], 100)]
    print(table(rows, ticks, first))
    if args.json:
        raw = {**m, "peer_info": info, **ticks, **first, "load_before": load_before, "load_after": load_after}
        args.json.write_text(json.dumps(raw, indent=1))
    return 0

if __name__ == "__main__":
    sys.exit(main())
