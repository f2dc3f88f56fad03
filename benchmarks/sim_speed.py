"""Sim speed: robot_rl's pick_cube vs gym-hil's PandaPickCubeBase-v0, measured in the same run.

    .venv/bin/python benchmarks/sim_speed.py            # or: make bench

Both envs step with random actions (reset when an episode ends; resets are timed too), with
state observations and with two 128x128 cameras (front + wrist). gym-hil runs in its own venv
(`.venv-bench`, created on first use: it pins mujoco < 3.9). Also reports the impedance
controller's cost per tick. Prints a markdown table of ratios; paste it into the README.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import robot_rl  # noqa: E402
from bench_venv import ensure_bench_venv, run_peer  # noqa: E402


def time_ours(obs: str, steps: int, seconds: float, seed: int = 0) -> dict:
    """Env steps/s of robot_rl pick_cube with random actions (2 cameras at 128x128 for pixels)."""
    env = robot_rl.make("pick_cube", obs=obs, image_height=128, image_width=128)
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


def time_controller(ticks: int = 20000) -> dict:
    """Microseconds per impedance-controller tick and per full physics tick, on the sim arm."""
    env = robot_rl.make("pick_cube")
    env.reset(seed=0)
    arm = env.unwrapped.backend
    args = arm.controller_inputs()
    compute = arm.controller.compute
    t0 = time.perf_counter()
    for _ in range(ticks):
        compute(*args)
    controller_us = (time.perf_counter() - t0) / ticks * 1e6
    t0 = time.perf_counter()
    arm.sync(ticks * arm.model.opt.timestep / 4)
    tick_us = (time.perf_counter() - t0) / (ticks / 4) * 1e6
    env.close()
    return {"controller_us": controller_us, "physics_tick_us": tick_us}


def table(rows: list[tuple[str, dict, dict, float]], ctrl: dict) -> str:
    lines = [
        "| observation | robot_rl steps/s | gym-hil steps/s | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for label, ours, peer, target in rows:
        ratio = ours["steps_per_s"] / peer["steps_per_s"]
        lines.append(f"| {label} | {ours['steps_per_s']:.0f} | {peer['steps_per_s']:.1f} | **{ratio:.1f}x** | >= {target:.0f}x |")
    lines.append("")
    lines.append(
        f"Impedance controller: {ctrl['controller_us']:.1f} us per tick (numpy); one 500 Hz physics tick "
        f"(MuJoCo step + Jacobian + controller): {ctrl['physics_tick_us']:.1f} us; one 10 Hz env step = 50 ticks."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-steps", type=int, default=3000)
    parser.add_argument("--pixel-steps", type=int, default=600)
    parser.add_argument("--peer-pixel-steps", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=60.0, help="cap on each timed loop")
    parser.add_argument("--json", type=pathlib.Path, default=None, help="also write the raw numbers here")
    args = parser.parse_args(argv)

    python = ensure_bench_venv(ROOT)
    print("timing robot_rl (state)...", file=sys.stderr, flush=True)
    ours_state = time_ours("state", args.state_steps, args.seconds)
    print("timing gym-hil (state)...", file=sys.stderr, flush=True)
    peer_state = run_peer(python, "state", args.state_steps, args.seconds, args.seconds + 120)
    print("timing robot_rl (pixels)...", file=sys.stderr, flush=True)
    ours_pixels = time_ours("pixels", args.pixel_steps, args.seconds)
    print("timing gym-hil (pixels)...", file=sys.stderr, flush=True)
    peer_pixels = run_peer(python, "pixels", args.peer_pixel_steps, args.seconds, args.seconds + 120)
    ctrl = time_controller()

    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, MUJOCO_GL={os.environ['MUJOCO_GL']} "
          f"(GL: {peer_pixels.get('gl_renderer')}); gym-hil {peer_state['gym_hil_version']} "
          f"(mujoco {peer_state['mujoco_version']}), ours mujoco {__import__('mujoco').__version__}.\n")
    print(table([("state", ours_state, peer_state, 10), ("2 cameras 128x128", ours_pixels, peer_pixels, 100)], ctrl))
    if args.json:
        raw = {"ours_state": ours_state, "peer_state": peer_state, "ours_pixels": ours_pixels, "peer_pixels": peer_pixels, **ctrl}
        args.json.write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
