"""car_lap from pixels, FastRLAP-style: a frozen encoder pre-trained on other tracks, SAC/RLPD at UTD > 1
on a track the encoder never saw -- env steps and wall time to the first clean lap.

    nice .venv/bin/python benchmarks/car_pixels.py --seed 0 --steps 3000        # record, pre-train, train
    .venv/bin/python benchmarks/car_pixels.py --seed 0 --report                 # report the run in --out
    nice .venv/bin/python benchmarks/car_pixels.py --seed 1 --encoder runs/bench-car_pixels/encoder.pt --name pixels-s1
    nice .venv/bin/python benchmarks/car_pixels.py --random-encoder --name random-s0   # control: untrained encoder
    nice .venv/bin/python benchmarks/car_pixels.py --state --name state-s0             # reference: state obs
    nice .venv/bin/python benchmarks/car_pixels.py --demos 0 --name nodemos -- --random-steps 1000

Four real `robot-rl` processes, one after the other, each timed:

1. ``robot-rl record --task car_lap --obs pixels --expert`` on each pre-training track A
   (``track_seed`` in ``--pretrain-tracks``): the front camera's 64x64 frames (+ 4 floats of
   proprioception) of the pure-pursuit expert's episodes;
2. ``robot-rl pretrain-encoder`` on those frames (the self-supervised keypoint autoencoder of
   ``robot_rl/encoders/``), written to a local file;
3. ``robot-rl train --task car_lap --obs pixels --env-kwargs track_seed=B`` with
   ``--sac.image-encoder frozen --sac.pretrained-path FILE --sac.utd-ratio U`` and ``--expert-demos N``
   recorded on track B (0: none); track B must not be a pre-training track.

First clean lap as in ``benchmarks/car_lap.py`` (its functions, imported): in training, the env step
at the end of the first online episode that completed a lap (a collision ends an episode, so such a
lap is collision-free); in evaluation, the first ``eval.csv`` row with a lap.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from car_lap import first_training_lap  # noqa: E402
from learning import read_rows  # noqa: E402

CLI = [sys.executable, "-m", "robot_rl.cli"]


def timed_run(args: list[str], log: pathlib.Path) -> float:
    """Runs one ``robot-rl`` command with its output in ``log``; its wall time [s]."""
    start = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "MUJOCO_GL": "egl"})
    if proc.returncode != 0:
        raise RuntimeError(f"{args[3]} failed (exit {proc.returncode}), see {log}")
    return time.monotonic() - start


def record_tracks(tracks: list[int], episodes: int, out: pathlib.Path) -> tuple[list[pathlib.Path], float]:
    """The expert's pixel episodes on each pre-training track; their directories and the wall time [s]."""
    dirs, wall_s = [], 0.0
    for track in tracks:
        target = out / f"frames-track{track}"
        if any(target.glob("*.npz")):
            raise FileExistsError(f"{target} already holds episodes: pass --encoder FILE or a fresh --out")
        wall_s += timed_run([*CLI, "record", "--task", "car_lap", "--obs", "pixels", "--expert", "--episodes", str(episodes),
                             "--video-episodes", "0", "--seed", str(track), "--out", str(target),
                             "--env-kwargs", f"track_seed={track}"], out / f"record-track{track}.log")
        dirs.append(target)
    return dirs, wall_s


def pretrain(frames: list[pathlib.Path], updates: int, out: pathlib.Path) -> tuple[pathlib.Path, float, str]:
    """The encoder file, the wall time [s] and pretrain-encoder's summary line."""
    encoder = out / "encoder.pt"
    log = out / "pretrain-encoder.log"
    wall_s = timed_run([*CLI, "pretrain-encoder", "--episodes", *map(str, frames), "--out", str(encoder),
                        "--updates", str(updates), "--threads", "2"], log)
    return encoder, wall_s, log.read_text().strip().splitlines()[-1]


def encoder_for(args: argparse.Namespace) -> tuple[pathlib.Path | None, float | None, float | None, str]:
    """The encoder file, the wall times [s] of recording and pre-training, and what it is: recorded
    and pre-trained here, ``--encoder FILE``, or (``--random-encoder``, the control) untrained weights."""
    if args.state:
        return None, None, None, "none (--state: the state observation, the reference)"
    if args.encoder is not None:
        return args.encoder, None, None, f"given: {args.encoder}"
    if args.random_encoder:
        import torch

        from robot_rl.encoders.keypoints import KeypointEncoder, save_encoder

        torch.manual_seed(args.seed)
        path = save_encoder(args.out / "encoder-random.pt", KeypointEncoder(), {"pretrained": False})
        return path, None, None, f"random weights (seed {args.seed}, not pre-trained): {path}"
    frames, record_s = record_tracks(args.pretrain_tracks, args.pretrain_episodes, args.out)
    return (args.out / "encoder.pt", record_s, *pretrain(frames, args.encoder_updates, args.out)[1:])


def train(args: argparse.Namespace, encoder: pathlib.Path | None) -> float:
    """The SAC/RLPD run on track B (pixels through the frozen encoder, or ``--state``); its wall time [s]."""
    pixels = [] if args.state else ["--sac.image-encoder", "frozen", "--sac.pretrained-path", str(encoder)]
    return timed_run([*CLI, "train", "--task", "car_lap", "--obs", "state" if args.state else "pixels",
                      "--env-kwargs", f"track_seed={args.track}",
                      "--expert-demos", str(args.demos), "--steps", str(args.steps), "--eval-every", str(args.eval_every),
                      "--eval-episodes", str(args.eval_episodes), "--video-episodes", "0", "--threads", "2",
                      "--replay-capacity", str(max(args.steps, 1000)), "--seed", str(args.seed),
                      *pixels,
                      "--sac.utd-ratio", str(args.utd), "--out", str(args.out), "--name", args.name, *args.extra],
                     args.out / f"{args.name}.log")


def summary(run_dir: pathlib.Path) -> dict:
    """What the run reached (finished or not)."""
    rows = read_rows(run_dir / "eval.csv") if (run_dir / "eval.csv").exists() else []
    return {"evals": [(int(r["step"]), r["success_rate"]) for r in rows],
            "first_train_lap": first_training_lap(run_dir),
            "first_eval_lap": next((int(r["step"]) for r in rows if r["success_rate"] > 0), None)}


def observation_name(args: argparse.Namespace) -> str:
    return "state" if args.state else "pixels, untrained encoder" if args.random_encoder else "pixels, frozen encoder"


def report(result: dict) -> list[str]:
    evals = ", ".join(f"{step}: {rate:.0%}" for step, rate in result["evals"]) or "none"
    minutes = {k: f"{v / 60:.1f} min" if v is not None else "-" for k, v in result["wall_s"].items()}
    return [f"encoder: {result['encoder']}",
            "| track B | obs | demos on B | UTD | first clean lap, training (env steps) | first eval with a lap (env steps) | "
            "evals (step: share of episodes with a lap) | wall: record A / pre-train / train | load average (start / end) |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {result['track']} | {result['obs']} | {result['demos']} | {result['utd']} | {result['first_train_lap'] or 'none'} | "
            f"{result['first_eval_lap'] or 'none'} | {evals} | {minutes['record']} / {minutes['pretrain']} / "
            f"{minutes['train']} | {result['load_start']:.1f} / {result['load_end']:.1f} |"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-tracks", type=int, nargs="+", default=[1, 2, 3], help="track seeds A of the encoder's frames")
    parser.add_argument("--pretrain-episodes", type=int, default=2, help="expert episodes (400 frames each) per track A")
    parser.add_argument("--encoder-updates", type=int, default=300, help="pretrain-encoder --updates")
    parser.add_argument("--track", type=int, default=7, help="track seed B of the learning run (not a track A)")
    parser.add_argument("--demos", type=int, default=10, help="expert demos recorded on track B (0: none)")
    parser.add_argument("--utd", type=int, default=4, help="--sac.utd-ratio of the run")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None, help="run name (default: pixels-s<seed>)")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "runs" / "bench-car_pixels")
    parser.add_argument("--encoder", type=pathlib.Path, default=None, help="train with this encoder file (no recording, no pre-training)")
    parser.add_argument("--random-encoder", action="store_true", help="control: an untrained encoder (random weights) instead")
    parser.add_argument("--state", action="store_true", help="reference: the same run from car_lap's state observation")
    parser.add_argument("--report", action="store_true", help="summarize the run in --out instead of running")
    parser.add_argument("extra", nargs="*", help="more `robot-rl train` flags, after --")
    args = parser.parse_args()
    if args.track in args.pretrain_tracks:
        parser.error(f"--track {args.track} is a pre-training track; the run must be on a track the encoder never saw")
    if args.utd < 1:
        parser.error(f"--utd must be >= 1, got {args.utd}")
    if sum((args.encoder is not None, args.random_encoder, args.state)) > 1:
        parser.error("--encoder, --random-encoder and --state exclude each other")
    args.name = args.name or f"pixels-s{args.seed}"
    return args


def main() -> int:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    result_path = args.out / f"{args.name}.json"
    if not args.report:
        load_start = os.getloadavg()[0]
        print(f"Machine: {os.cpu_count()} cores, load average {load_start:.1f} at start", flush=True)
        encoder, record_s, pretrain_s, encoder_line = encoder_for(args)
        print(f"{encoder_line}\ntraining on track {args.track}...", flush=True)
        train_s = train(args, encoder)
        result = {"track": args.track, "pretrain_tracks": args.pretrain_tracks, "demos": args.demos, "utd": args.utd,
                  "obs": observation_name(args),
                  "seed": args.seed, "encoder": encoder_line, "load_start": load_start, "load_end": os.getloadavg()[0],
                  "wall_s": {"record": record_s, "pretrain": pretrain_s, "train": train_s}}
        result_path.write_text(json.dumps(result, indent=1))
    result = {**json.loads(result_path.read_text()), **summary(args.out / args.name)}
    print("\n".join(report(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
