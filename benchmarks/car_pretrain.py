"""car_lap: pre-train on the JAX car (batched), then fine-tune in MuJoCo from the pre-trained actor --
env steps until the first collision-free lap with and without pre-training, on the same seeds.

    nice .venv/bin/python benchmarks/car_pretrain.py --seeds 0 1 --steps 4000 --eval-every 1000 \
        --pretrain-steps 3000 8000 --parallel 2
    .venv/bin/python benchmarks/car_pretrain.py --seeds 0 1 --pretrain-steps 3000 8000 --report   # the runs in --out

1. Pre-training: ``robot-rl train --task car_lap --backend jax --num-envs N`` (SAC on the natively
   batched single-track car, no demos; the JAX model is not the MuJoCo car -- a sim-to-sim gap), one run
   (seed ``--pretrain-seed``) per ``--pretrain-steps`` value, into ``<out>/jax-<steps>``. Each actor is
   also driven zero-shot on the MuJoCo car from the evaluation starts (laps, what ended each episode).
2. Fine-tuning, per seed, all arms **without demos** (``--expert-demos 0``), otherwise the same
   ``robot-rl train`` options: ``scratch`` (fresh actor and critic) and ``pretrained-jax<steps>``
   (``--init-from`` that JAX actor; the critic starts fresh, with the WSRL warm-up options in
   ``FINETUNE``). ``--parallel K`` runs K of them at a time (separate processes); finished runs in
   ``--out`` are kept, not rerun.

Measured with benchmarks/car_lap.py's functions (imported): the first online episode that completed a
lap (episode files), the first evaluation with a lap (``eval.csv``), and the final policy's lap times
against the pure-pursuit expert's on the same evaluation starts.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from car_lap import _laps_text, expert_act, lap_times, learning_table, policy_act, run_summary, train  # noqa: E402
from learning import plot, read_rows  # noqa: E402

FINETUNE = ("--warmup-steps", "400", "--critic-warmup-updates", "400")  # WSRL: pre-trained rollouts first, critic first


def load() -> float:
    return os.getloadavg()[0]


def pretrain(out: pathlib.Path, seed: int, steps: int, num_envs: int) -> pathlib.Path:
    """The JAX pre-training run (``car_lap.train`` with ``--backend jax``) into ``out/jax-<steps>``."""
    (out / f"jax-{steps}").mkdir(parents=True, exist_ok=True)
    run = out / f"jax-{steps}" / f"rlpd-s{seed}"
    if not finished(run):
        start, before = time.monotonic(), load()
        train(seed, steps, 0, out / f"jax-{steps}", max(steps // 2, 1), ["--backend", "jax", "--num-envs", str(num_envs)])
        print(f"pre-training (JAX, {num_envs} envs, {steps} env steps, seed {seed}): "
              f"{(time.monotonic() - start) / 60:.1f} min wall, load {before:.1f} -> {load():.1f}", flush=True)
    return run


def finished(run: pathlib.Path) -> bool:
    """The run in ``run`` reached its configured steps (its last ``eval.csv`` row); such runs are kept."""
    if not (run / "eval.csv").exists() or not (run / "actor.pt").exists():
        return False
    rows = read_rows(run / "eval.csv")
    return bool(rows) and int(rows[-1]["step"]) >= int(json.loads((run / "config.json").read_text())["steps"])


def finetune(out: pathlib.Path, arm: str, seed: int, args: argparse.Namespace, actor: pathlib.Path | None) -> None:
    """One MuJoCo run of ``arm`` (no demos; ``--init-from actor`` unless None) into ``out/<arm>/rlpd-s<seed>``."""
    if finished(out / arm / f"rlpd-s{seed}"):
        return
    (out / arm).mkdir(parents=True, exist_ok=True)
    extra = ["--init-from", str(actor), *FINETUNE] if actor else []
    start, before = time.monotonic(), load()
    train(seed, args.steps, 0, out / arm, args.eval_every, extra + args.extra)
    print(f"{arm} seed {seed}: {(time.monotonic() - start) / 60:.1f} min wall, load {before:.1f} -> {load():.1f}", flush=True)


def summaries(out: pathlib.Path, arms: list[str], seeds: list[int], lap_episodes: int) -> list[dict]:
    """run_summary of every arm and seed that has started, labelled ``<arm> s<seed>``."""
    results = []
    for arm in arms:
        for seed in seeds:
            run = out / arm / f"rlpd-s{seed}"
            if (run / "config.json").exists():
                results.append({**run_summary(run, seed, lap_episodes), "config": arm, "label": f"{arm} s{seed}"})
    return results


def report(out: pathlib.Path, arms: dict[str, pathlib.Path | None], seeds: list[int], lap_episodes: int) -> None:
    expert = lap_times(expert_act, lap_episodes)
    print(f"expert (pure pursuit) on {lap_episodes} evaluation starts: {_laps_text(expert)}")
    for arm, actor in arms.items():
        if actor and actor.exists():
            zero_shot = lap_times(policy_act(actor.parent), lap_episodes)
            ends = ", ".join(f"{n} {end}" for end, n in zero_shot["ends"].items() if n)
            print(f"{actor.parent} zero-shot on the MuJoCo car ({lap_episodes} evaluation starts): {_laps_text(zero_shot)}"
                  f"{'' if zero_shot['laps'] else f' (ended by: {ends})'}")
    results = summaries(out, list(arms), seeds, lap_episodes)
    table = learning_table([{**r, "seed": r["label"]} for r in results], expert)
    print("\n".join(["", "| arm, " + table[0][2:], *table[1:]]))
    if results:
        plot(results, out / "car_pretrain.png", title="car_lap in MuJoCo, no demos: from scratch vs JAX-pre-trained")
        print(f"\ncurves (eval share of episodes with a lap): {out / 'car_pretrain.png'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1], help="fine-tuning seeds (every arm each)")
    parser.add_argument("--steps", type=int, default=4000, help="MuJoCo env steps of each fine-tuning run")
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--pretrain-steps", type=int, nargs="+", default=[3000],
                        help="JAX env steps (= agent updates) of pre-training; one pre-training run and arm per value")
    parser.add_argument("--pretrain-envs", type=int, default=16, help="--num-envs of the JAX pre-training runs")
    parser.add_argument("--pretrain-seed", type=int, default=0)
    parser.add_argument("--lap-episodes", type=int, default=10, help="evaluation starts the lap times are measured on")
    parser.add_argument("--parallel", type=int, default=1, help="fine-tuning runs at a time (each one torch thread)")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "runs" / "bench-car_pretrain")
    parser.add_argument("--report", action="store_true", help="summarize the runs in --out instead of training")
    parser.add_argument("extra", nargs="*", help="more `robot-rl train` flags for the fine-tuning runs, after --")
    args = parser.parse_args()
    print(f"Machine: {os.cpu_count()} cores, load average {load():.1f} at start\n")
    arms: dict[str, pathlib.Path | None] = {"scratch": None}
    for steps in args.pretrain_steps:
        run = args.out / f"jax-{steps}" / f"rlpd-s{args.pretrain_seed}"
        arms[f"pretrained-jax{steps}"] = (run if args.report else pretrain(args.out, args.pretrain_seed, steps, args.pretrain_envs)) / "actor.pt"
    runs = [] if args.report else [(arm, seed) for seed in args.seeds for arm in arms]
    with ThreadPoolExecutor(args.parallel) as pool:
        list(pool.map(lambda arm_seed: finetune(args.out, *arm_seed, args, arms[arm_seed[0]]), runs))
    report(args.out, arms, args.seeds, args.lap_episodes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
