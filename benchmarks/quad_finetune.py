"""WSRL fine-tuning of a pre-trained hover policy on a MuJoCo quadrotor outside its training dynamics.

    .venv/bin/python benchmarks/quad_finetune.py --actor RUN/actor.pt [--seeds 2] [--steps 2000 5000]
        [--episodes 16] [--shift mass_kg=0.0378 motor_time_constant_s=0.3] [--configs plain wsrl ...]
        [--no-baseline] [--out DIR] [-- robot-rl train options]

The actor comes from ``robot-rl train-fused`` (its JAX sim flies the nominal Crazyflie: mass 0.027 kg,
motor time constant 0.15 s, no domain randomization by default). ``--shift`` changes the MuJoCo
quadrotor (default: +40% mass, motors twice as slow). The table holds the pre-trained actor's hover
error on the nominal and on the shifted quadrotor, then per seed and per ``--steps`` N the error after
N online steps of ``robot-rl train --init-from ACTOR`` on the shifted quadrotor (each N continues the
previous one with ``--resume``: one run per seed). Error = final-second position error RMS over
``--episodes`` evaluation episodes (deterministic actions, random starts tilted up to 90 deg; crashed
episodes are counted, not averaged). Action drift: the RMS difference between the fine-tuned and the
pre-trained actor's actions on the states the pre-trained one visited on the shifted quad (actor
collapse shows as a large drift with a worse hold). The baseline rows also fly the task's scripted expert (the
position controller on the simulator's true state) on the shifted quad, and every row lists the starts (0 ..
episodes-1) that crashed: a start the expert crashes from too is likely lost to physics (slow motors, 90 deg
tilt), not to the policy. Each configuration of the fine-tuning is a named set of
``robot-rl train`` options (``--configs``; ``residual-*``: pi0 frozen plus a learned residual,
``--init-residual-scale``; ``*-trust-*``: ``--sac.trust-region-weight``); the machine's load is printed with every row.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
ROBOT_RL = pathlib.Path(sys.executable).with_name("robot-rl")
EVAL_SEED = 1_000_000
COMMON = ("--sac.hidden-dims", "64", "64", "--eval-every", "1000000", "--eval-episodes", "1", "--video-episodes", "0",
          "--checkpoint-every", "1000000", "--log-every", "500")
WSRL = ("--warmup-steps", "1000", "--critic-warmup-updates", "1000")
CONFIGS = {  # name -> robot-rl train options
    "plain": (),  # SAC defaults: updates from 256 transitions on, actor and critic together
    "wsrl": WSRL,
    "wsrl-actor-lr1e-4": (*WSRL, "--sac.actor-lr", "1e-4", "--sac.target-entropy", "-4"),
    "wsrl-actor-lr3e-5": (*WSRL, "--sac.actor-lr", "3e-5", "--sac.target-entropy", "-4"),
    "wsrl-actor-lr1e-5": (*WSRL, "--sac.actor-lr", "1e-5", "--sac.target-entropy", "-12"),
    "wsrl-anchor": (*WSRL, "--warmup-as-demos", "--sac.bc-weight", "10", "--sac.actor-lr", "1e-4"),
    "wsrl-anchor-strong": (*WSRL, "--warmup-as-demos", "--sac.bc-weight", "100", "--sac.actor-lr", "1e-5",
                           "--sac.target-entropy", "-12"),
    # pi0 frozen, a residual bounded by the scale learns on top (robot_rl/train/residual.py)
    "residual-0.1": ("--init-residual-scale", "0.1", *WSRL),
    "residual-0.3": ("--init-residual-scale", "0.3", *WSRL),
    "residual-0.1-lowent": ("--init-residual-scale", "0.1", *WSRL, "--sac.target-entropy", "-12"),
    "residual-0.1-slow": ("--init-residual-scale", "0.1", "--warmup-steps", "1000", "--critic-warmup-updates", "2000",
                          "--sac.actor-lr", "1e-4"),
    "residual-0.03-slow": ("--init-residual-scale", "0.03", "--warmup-steps", "1000", "--critic-warmup-updates", "2000",
                           "--sac.actor-lr", "1e-4"),
    "residual-0.1-trust-10": ("--init-residual-scale", "0.1", *WSRL, "--sac.trust-region-weight", "10"),
    "residual-0.1-trust-100": ("--init-residual-scale", "0.1", *WSRL, "--sac.trust-region-weight", "100"),
    # the whole actor learns, kept near pi0 by w * mean((mu - mu0)^2) on every batch, Q term / mean|Q|
    "wsrl-trust-10": (*WSRL, "--sac.trust-region-weight", "10"),
    "wsrl-trust-100": (*WSRL, "--sac.trust-region-weight", "100"),
    # the actor's learning rate ramps up over its first 2,000 steps (Adam's first steps are lr-sized)
    "wsrl-trust-100-ramp": (*WSRL, "--sac.trust-region-weight", "100", "--sac.actor-lr-warmup-updates", "2000"),
    "residual-0.1-ramp": ("--init-residual-scale", "0.1", *WSRL, "--sac.actor-lr-warmup-updates", "2000"),
}


def load() -> str:
    try:
        return pathlib.Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "?"


def task_options(actor: pathlib.Path) -> list[str]:
    """The task options the actor was trained with (actor.json beside it), e.g. action_history_steps=4."""
    side = actor.with_suffix(".json")
    return list(json.loads(side.read_text()).get("task_kwargs", [])) if side.is_file() else []


def policy(actor: pathlib.Path, spec, options: dict):
    """The deterministic policy of an actor file (a plain actor, or pi0 + residual of a ``--init-residual-scale``
    run): canonical state batch (N, D) -> actions (N, A)."""
    from robot_rl.train.residual import load_policy

    agent = load_policy(actor, spec, "quad_hover", options)
    return lambda states: agent.act_batch({"state": states}, deterministic=True)


def expert(env):
    """The task's scripted expert (the position controller on the simulator's true state), as a batch policy."""
    return lambda states: env.unwrapped.task.expert(env.unwrapped.state)[None]


def hold(actor: pathlib.Path | None, options: list[str], episodes: int, reference: dict | None) -> dict:
    """Fly ``actor`` (deterministic; None: the task's expert) on the MuJoCo quad_hover with ``options``; the hold
    metrics, and ``drift``: the RMS difference of its actions from ``reference["actions"]`` on ``reference["states"]``
    (the pre-trained actor's, on the states it visited; nan without one). An empty ``reference`` is filled."""
    from robot_rl.data.schema import ObsSpec
    from robot_rl.fused.evaluate import evaluate_hold
    from robot_rl.registry import make, parse_overrides

    parsed = parse_overrides(options)
    env = make("quad_hover", backend="sim", **parsed)
    visited = []
    try:
        spec = ObsSpec.from_space(env.observation_space)
        act = expert(env) if actor is None else policy(actor, spec, parsed)
        record = lambda obs: visited.append(spec.canonical(obs)["state"]) or act(visited[-1][None])[0]  # noqa: E731
        starts = [evaluate_hold(env, record, 1, EVAL_SEED + i, 0.05) for i in range(episodes)]  # one per start
    finally:
        env.close()
    if reference == {}:
        reference.update(states=np.stack(visited[::10]))
        reference.update(actions=act(reference["states"]))
    finals = [r.final_rms_m[0] for r in starts if r.final_rms_m]
    rms = np.asarray(finals) if finals else np.asarray([np.nan])
    return {"crash_rate": sum(r.crashes for r in starts) / episodes, "rms_median_cm": float(np.median(rms)) * 100,
            "rms_mean_cm": float(np.mean(rms)) * 100, "rms_max_cm": float(np.max(rms)) * 100,
            "held": f"{sum(r.within_tolerance for r in starts)}/{episodes}",
            "crashed_starts": [i for i, r in enumerate(starts) if r.crashes],
            "drift": float(np.sqrt(np.mean(np.square(act(reference["states"]) - reference["actions"])))) if reference and actor else np.nan}


def finetune(actor: pathlib.Path, options: list[str], seed: int, steps: int, run: pathlib.Path, flags: tuple[str, ...],
             extra: list[str], timeout_s: float) -> float:
    """``robot-rl train --init-from`` on the shifted quad up to ``steps`` env steps (resuming the run); wall s."""
    resume = ["--resume"] if (run / "checkpoint.pt").exists() else []
    command = [str(ROBOT_RL), "train", "--task", "quad_hover", "--backend", "sim", "--env-kwargs", *options,
               "--init-from", str(actor), "--seed", str(seed), "--steps", str(steps), "--out", str(run.parent),
               "--name", run.name, *COMMON, *flags, *resume, *extra]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-1500:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def row(name: str, seed: str, steps: str, r: dict, wall: str) -> str:
    return (f"| {name} | {seed} | {steps} | {r['held']} | {r['crash_rate']:.0%} | {r['rms_median_cm']:.2f} | "
            f"{r['rms_mean_cm']:.2f} | {r['rms_max_cm']:.2f} | {r['drift']:.3f} | {wall} | {load()} | "
            f"{' '.join(map(str, r['crashed_starts'])) or '-'} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actor", type=pathlib.Path, required=True, help="actor.pt from robot-rl train-fused")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, nargs="+", default=[2000, 5000])
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--shift", nargs="+", default=["mass_kg=0.0378", "motor_time_constant_s=0.3"])
    parser.add_argument("--configs", nargs="*", default=["plain", "wsrl"], choices=sorted(CONFIGS))
    parser.add_argument("--no-baseline", action="store_true", help="skip the pre-trained actor's rows")
    parser.add_argument("--reference", type=pathlib.Path, default=None,
                        help="with --no-baseline: the reference.npz of an earlier run's baseline (for the drift column)")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="run directories (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per robot-rl train call [s]")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    actor = args.actor / "actor.pt" if args.actor.is_dir() else args.actor
    out = args.out or pathlib.Path(tempfile.mkdtemp(prefix="quad_finetune_"))
    out.mkdir(parents=True, exist_ok=True)
    options = task_options(actor)
    shifted = options + list(args.shift)
    print(f"runs in {out}; actor {actor}; shift {' '.join(args.shift)}; load {load()}", flush=True)
    print("| fine-tuning | seed | online steps | held (<= 5 cm) | crashes | RMS median cm | RMS mean cm | RMS max cm | "
          "action drift | train wall s | load | crashed starts |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|", flush=True)
    results, reference = {}, None
    if not args.no_baseline:
        reference = {}
        results = {"nominal": hold(actor, options, args.episodes, None), "shifted": hold(actor, shifted, args.episodes, reference),
                   "expert, shifted": hold(None, shifted, args.episodes, None)}
        print(row("pre-trained, nominal quad", "-", "0", results["nominal"], "-"), flush=True)
        print(row("pre-trained, shifted quad", "-", "0", results["shifted"], "-"), flush=True)
        print(row("scripted expert, shifted quad", "-", "-", results["expert, shifted"], "-"), flush=True)
        np.savez(out / "reference.npz", **reference)
    elif args.reference is not None:
        reference = dict(np.load(args.reference))
    for config in args.configs:
        for seed in range(args.seeds):
            run = out / f"{config}-s{seed}"
            for steps in sorted(args.steps):
                wall = finetune(actor, shifted, seed, steps, run, CONFIGS[config], extra, args.timeout)
                results[f"{config}/s{seed}/{steps}"] = r = hold(run / "actor.pt", shifted, args.episodes, reference)
                print(row(config, str(seed), str(steps), r, f"{wall:.0f}"), flush=True)
    (out / "summary.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
