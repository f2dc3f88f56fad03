"""car_lap benchmark (MuJoCo car, state observations): RLPD from the pure-pursuit expert's demos --
env steps until the first collision-free lap, and the best lap time against the expert's.

    nice .venv/bin/python benchmarks/car_lap.py --seeds 0 1 2 --steps 6000 --eval-every 1000   # expert + runs
    .venv/bin/python benchmarks/car_lap.py --seeds 0 1 2 --report             # report the runs in --out
    nice .venv/bin/python benchmarks/car_lap.py --seeds 1 --steps 6000 --eval-every 1000 \
        --out runs/bench-car_lap-respawn -- --env-kwargs respawn=true        # more `robot-rl train` flags

Learning runs are real `robot-rl train --task car_lap --expert-demos N` processes (one torch thread each,
one after the other), read back from their files:

* first clean lap, training: the env step at the end of the first online episode that completed a lap
  (the episode files' ``success``; a collision ends an episode, so a completed lap is collision-free;
  counted at the episode's end, so up to one episode late);
* first clean lap, evaluation: the first ``eval.csv`` row with success > 0 (a deterministic episode
  from the evaluation starts completing a lap);
* lap times: the final policy and the expert each drive the same seeded evaluation starts
  (:func:`lap_times`, the same function for both): every completed lap's ``info["lap_time_s"]``
  (the first lap starts at rest, the second is a flying lap), best and mean, and collisions;
* wasted steps (:func:`wasted_steps`): the share of the online env steps spent facing backwards
  (the observation's heading cosine < 0) and without progress (reward, the progress rate, < 0.1 m/s).

Before/after a change of the task (e.g. the recovery manoeuvre): ``--env-kwargs recovery=reverse``
runs the old recovery with the same code.

FastRLAP's anchor: a real car learns to lap in about 12k steps (20 min at 10 Hz); the target here is
<= 12k env steps (10 min at car_lap's 20 Hz).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time
from typing import Callable

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import robot_rl  # noqa: E402
from learning import plot, read_rows  # noqa: E402

EVAL_SEED = 1_000_000  # robot_rl.train.setup.EVAL_SEED: the starts every evaluation uses


def lap_times(act: Callable[[np.ndarray, object], np.ndarray], episodes: int) -> dict:
    """``act(obs, env)`` drives car_lap from the evaluation starts ``EVAL_SEED + i``: every completed
    lap's time [s], and what ended each episode (``wall``, ``flip``, ``stuck`` or the time limit)."""
    env = robot_rl.make("car_lap")
    laps, ends = [], dict.fromkeys(("wall", "flip", "stuck", "time limit"), 0)
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=EVAL_SEED + i)
            done, done_laps = False, 0
            while not done:
                obs, _, terminated, truncated, info = env.step(act(obs, env.unwrapped))
                if info["laps_completed"] > done_laps:
                    done_laps, laps = info["laps_completed"], laps + [float(info["lap_time_s"])]
                done = terminated or truncated
            ends[_end_of(env.unwrapped.task.tracker)] += 1
    finally:
        env.close()
    return {"laps": laps, "ends": ends, "episodes": episodes,
            "best_s": min(laps) if laps else None, "mean_s": float(np.mean(laps)) if laps else None}


def recovery_headings(recovery: str, crashes: int, seed: int = 0) -> dict:
    """Drive car_lap with random actions (seeded) until ``crashes`` episodes ended by a collision, flip or
    stuck; after each, the unseeded ``reset()`` runs the ``recovery`` manoeuvre: the next episode's
    heading error (from its first observation), whether the simulator had to put the car back on the
    track (still against a wall or upside down: ``set_pose`` restarts the sim clock) and the
    manoeuvre's simulated seconds otherwise."""
    env = robot_rl.make("car_lap", recovery=recovery)
    rng, errors_deg, seconds, put_back, ends = np.random.default_rng(seed), [], [], 0, []
    try:
        env.reset(seed=seed)
        parts, task = env.unwrapped.state_layout, env.unwrapped.task
        while len(errors_deg) < crashes:
            truncated = False
            while not truncated:
                _, _, _, truncated, _ = env.step(rng.uniform(-1.0, 1.0, 2).astype(np.float32))
            end, before_s = _end_of(task.tracker), env.unwrapped.state.time_s
            obs, _ = env.reset()
            if end != "time limit":
                ends.append(end)
                sin_err, cos_err = obs[parts["heading_sin_cos"]]
                errors_deg.append(abs(np.degrees(np.arctan2(sin_err, cos_err))))
                elapsed_s = env.unwrapped.state.time_s - before_s
                put_back += elapsed_s < 0
                seconds += [elapsed_s] if elapsed_s >= 0 else []
    finally:
        env.close()
    errors = np.asarray(errors_deg)
    return {"recovery": recovery, "crashes": crashes, "backwards": float(np.mean(errors > 90)),
            "within_20_deg": float(np.mean(errors <= 20)), "median_deg": float(np.median(errors)),
            "put_back": put_back / crashes, "ends": {e: ends.count(e) for e in sorted(set(ends))},
            "mean_s": float(np.mean(seconds)), "max_s": float(np.max(seconds))}


def _end_of(tracker) -> str:
    """What ended an episode (``info["collided"]`` is wall or flip; the tracker tells them apart)."""
    return "wall" if tracker.crashed else "flip" if tracker.flipped else "stuck" if tracker.stuck else "time limit"


def expert_act(obs: np.ndarray, env) -> np.ndarray:
    return env.task.expert(env.state)


def policy_act(run_dir: pathlib.Path) -> Callable[[np.ndarray, object], np.ndarray]:
    """The run's final actor (``actor.pt``), deterministic, on the canonical observation."""
    from robot_rl.agents.registry import make_agent
    from robot_rl.agents.sac import SACConfig
    from robot_rl.train.checkpoint import load_checkpoint
    from robot_rl.train.setup import spaces_of

    env = robot_rl.make("car_lap")
    spec, action_dim = spaces_of(env)
    env.close()
    hidden = json.loads((run_dir / "config.json").read_text())["sac"]["hidden_dims"]
    agent = make_agent("sac", spec, action_dim, SACConfig(hidden_dims=tuple(hidden)))
    agent.load_actor_state_dict(load_checkpoint(run_dir / "actor.pt"))
    return lambda obs, env: agent.act(spec.canonical(obs), deterministic=True)


def first_training_lap(run_dir: pathlib.Path) -> int | None:
    """Env steps at the end of the first online episode that completed a lap (episode files, in order)."""
    steps = 0
    for path in sorted((run_dir / "episodes").glob("episode_*.npz")):
        with np.load(path, allow_pickle=False) as episode:
            steps += len(episode["action"])
            if json.loads(str(episode["metadata"])).get("success"):
                return steps
    return None


def wasted_steps(run_dir: pathlib.Path) -> dict:
    """Shares of the run's online env steps facing backwards (cos of the heading error < 0 after the
    step, from the state observation) and without progress (reward < 0.1 m/s)."""
    steps = backwards = stalled = 0
    for path in sorted((run_dir / "episodes").glob("episode_*.npz")):
        with np.load(path, allow_pickle=False) as episode:
            parts = json.loads(str(episode["metadata"]))["observation_spec"]["state"]["parts"]
            cos_heading = episode["obs/state"][1:, parts["heading_sin_cos"][0] + 1]
            steps += len(episode["reward"])
            backwards += int(np.sum(cos_heading < 0))
            stalled += int(np.sum(episode["reward"] < 0.1))
    return {"steps": steps, "backwards": backwards / max(steps, 1), "no_progress": stalled / max(steps, 1)}


def run_summary(run_dir: pathlib.Path, seed: int, lap_episodes: int) -> dict:
    """What a run (finished or not) has reached."""
    rows = read_rows(run_dir / "eval.csv") if (run_dir / "eval.csv").exists() else []
    configured = int(json.loads((run_dir / "config.json").read_text())["steps"])
    last = int(rows[-1]["step"]) if rows else 0
    laps = lap_times(policy_act(run_dir), lap_episodes) if (run_dir / "actor.pt").exists() else None
    return {"config": "rlpd", "seed": seed, "rows": rows, "last_eval_step": last, "finished": bool(rows) and last >= configured,
            "first_train_lap": first_training_lap(run_dir), "wasted": wasted_steps(run_dir),
            "first_eval_lap": next((int(r["step"]) for r in rows if r["success_rate"] > 0), None), "laps": laps,
            "wall_s": (run_dir / "eval.csv").stat().st_mtime - (run_dir / "config.json").stat().st_mtime if rows else None}


def train(seed: int, steps: int, demos: int, out: pathlib.Path, eval_every: int, extra: list[str]) -> None:
    name = f"rlpd-s{seed}"
    args = [sys.executable, "-m", "robot_rl.cli", "train", "--task", "car_lap", "--expert-demos", str(demos),
            "--threads", "1", "--video-episodes", "0", "--seed", str(seed), "--steps", str(steps),
            "--eval-every", str(eval_every), "--out", str(out), "--name", name, *extra]
    with open(out / f"{name}.log", "w") as log:
        proc = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed (exit {proc.returncode}), see {out / f'{name}.log'}")


def _laps_text(laps: dict | None) -> str:
    if not laps or not laps["laps"]:
        return "no lap"
    ends = ", ".join(f"{n} {end}" for end, n in laps["ends"].items() if n)
    return (f"{laps['best_s']:.2f} s best, {laps['mean_s']:.2f} s mean ({len(laps['laps'])} laps in "
            f"{laps['episodes']} episodes; ended by: {ends})")


def learning_table(results: list[dict], expert: dict) -> list[str]:
    lines = ["| seed | first clean lap, training (env steps) | first eval with a lap (env steps) | evals (step: laps) | "
             "env steps facing backwards / without progress | final policy's laps | best lap / expert's | wall time | "
             "state |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        evals = ", ".join(f"{int(x['step'])}: {x['success_rate']:.0%}" for x in r["rows"]) or "none yet"
        best = r["laps"]["best_s"] if r["laps"] else None
        ratio = f"{best / expert['best_s']:.2f}x" if best and expert["best_s"] else "-"
        wall = f"{r['wall_s'] / 60:.1f} min" if r["wall_s"] else "-"
        state = "finished" if r["finished"] else f"stopped/running at {r['last_eval_step']}"
        wasted = f"{r['wasted']['backwards']:.0%} / {r['wasted']['no_progress']:.0%} of {r['wasted']['steps']}"
        lines.append(f"| {r['seed']} | {r['first_train_lap'] or 'none'} | {r['first_eval_lap'] or 'none'} | {evals} | "
                     f"{wasted} | {_laps_text(r['laps'])} | {ratio} | {wall} | {state} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[], help="learning runs (none: the expert only)")
    parser.add_argument("--steps", type=int, default=12_000)
    parser.add_argument("--demos", type=int, default=20, help="--expert-demos of each run")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--lap-episodes", type=int, default=10, help="evaluation starts the lap times are measured on")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "runs" / "bench-car_lap")
    parser.add_argument("--report", action="store_true", help="summarize the runs in --out instead of training")
    parser.add_argument("--recoveries", type=int, default=0, help="also: where N recoveries after random-action "
                        "crashes leave the car, for each recovery manoeuvre")
    parser.add_argument("extra", nargs="*", help="more `robot-rl train` flags, after --")
    args = parser.parse_args()
    print(f"Machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start\n")
    for recovery in ("reverse", "align") if args.recoveries else ():
        r = recovery_headings(recovery, args.recoveries)
        print(f"recovery={recovery}: after {r['crashes']} crashes ({r['ends']}) the next episode starts facing "
              f"backwards {r['backwards']:.0%}, within 20 degrees of the track direction {r['within_20_deg']:.0%} "
              f"(median {r['median_deg']:.0f} deg); put back by the simulator {r['put_back']:.0%}; manoeuvre "
              f"{r['mean_s']:.1f} s mean, {r['max_s']:.1f} s max (simulated, the others)")
    expert = lap_times(expert_act, args.lap_episodes)
    print(f"expert (pure pursuit) on {args.lap_episodes} evaluation starts: {_laps_text(expert)}\n")
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in [] if args.report else args.seeds:
        start = time.monotonic()
        train(seed, args.steps, args.demos, args.out, args.eval_every, args.extra)
        print(f"seed {seed}: {(time.monotonic() - start) / 60:.1f} min wall, load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.seeds:
        results = [run_summary(args.out / f"rlpd-s{seed}", seed, args.lap_episodes) for seed in args.seeds]
        print("\n".join(learning_table(results, expert)))
        plot(results, args.out / "car_lap.png", title=f"car_lap (state), RLPD with {args.demos} expert demos, one line per seed")
        print(f"\ncurves (eval share of episodes with a lap): {args.out / 'car_lap.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
