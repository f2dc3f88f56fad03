"""Reward classifier on sim pick_cube: label, train, then measure on FRESH episodes.

    .venv/bin/python benchmarks/reward_classifier.py [--train-episodes 80] [--eval-episodes 40] [--seed 0]

1. ``record-labels --source task`` on pick_cube (pixels, front + wrist cameras at 128x128, the
   default pixel env): the scripted expert with per-episode action noise (std uniform in [0, 1])
   and 10% random episodes, frames labelled by the task's own success, 5 steps held after the
   first success, at most ``--max-positives`` (200) success frames.
2. ``train-reward`` on those labels: the front image cropped to the 64x64 region where the cube
   can be lifted (native resolution: a 2 cm lift step is about 2 pixels), the wrist image resized
   to 64x64; episode-level held-out split inside; threshold = max held-out F1.
3. Fresh episodes (other seeds, same driver, no positive cap) are labelled the same way and the
   classifier is scored against the task's ground-truth success, per frame (all frames, and only
   the frames up to each episode's first success: what an RL episode that ends at success shows)
   and per episode (does it first fire at the true first success, early, late, or never).
The numbers go to stdout and to ``<out>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from robot_rl.envs import EnvConfig  # noqa: E402
from robot_rl.reward.commands import RecordLabels, TrainReward  # noqa: E402
from robot_rl.reward.dataset import LabelSet, read_labels  # noqa: E402
from robot_rl.reward.model import load_classifier  # noqa: E402
from robot_rl.reward.train import binary_metrics, predict  # noqa: E402

EVAL_SEED = 100_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/bench_reward_classifier"))
    parser.add_argument("--size", type=int, default=128, help="camera image height and width in pixels")
    parser.add_argument("--crop", nargs="*", default=["front=44,36,64,64"],
                        help="train-reward --crop items (default: the 64x64 region of the 128x128 front image "
                             "where the cube can be lifted)")
    parser.add_argument("--resize", type=int, default=64, help="train-reward --resize (0: none)")
    parser.add_argument("--train-episodes", type=int, default=80)
    parser.add_argument("--eval-episodes", type=int, default=40)
    parser.add_argument("--max-positives", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batches-per-epoch", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


def record_labels(out: pathlib.Path, size: int, episodes: int, seed: int, max_positives: int) -> None:
    shutil.rmtree(out, ignore_errors=True)
    env = EnvConfig(obs="pixels", env_kwargs=(f"image_height={size}", f"image_width={size}"), seed=seed)
    RecordLabels(env=env, out=out, num_episodes=episodes, max_positives=max_positives, cameras="front,wrist").run()


def before_first_success(data: LabelSet) -> np.ndarray:
    """Mask of frames up to and including their episode's first success frame."""
    keep = np.ones(len(data), bool)
    for episode in np.unique(data.episodes):
        rows = np.flatnonzero(data.episodes == episode)
        success_steps = data.steps[rows][data.labels[rows] == 1]
        if success_steps.size:
            keep[rows] = data.steps[rows] <= success_steps.min()
    return keep


def episode_outcomes(data: LabelSet, fired: np.ndarray) -> dict[str, int]:
    """Per episode: where the classifier first fires relative to the first true success."""
    counts = {"on_time": 0, "early": 0, "late": 0, "missed": 0, "false_alarm": 0, "correct_reject": 0}
    for episode in np.unique(data.episodes):
        rows = np.flatnonzero(data.episodes == episode)
        rows = rows[np.argsort(data.steps[rows])]
        truth = np.flatnonzero(data.labels[rows] == 1)
        first = np.flatnonzero(fired[rows])
        if truth.size == 0:
            counts["false_alarm" if first.size else "correct_reject"] += 1
        elif first.size == 0:
            counts["missed"] += 1
        else:
            delay = int(data.steps[rows][first[0]] - data.steps[rows][truth[0]])
            counts["on_time" if delay == 0 else "early" if delay < 0 else "late"] += 1
    return counts


def evaluate(model_path: pathlib.Path, data: LabelSet, device: str) -> dict:
    model, metadata = load_classifier(model_path, device)
    probs = predict(model, data, device)
    truth = data.labels == 1
    rollout = before_first_success(data)
    threshold = metadata["threshold"]
    return {
        "threshold": threshold,
        "class_counts": data.class_counts(),
        "rollout_class_counts": {"failure": int(np.sum(rollout & ~truth)), "success": int(np.sum(rollout & truth))},
        "all_frames": binary_metrics(probs, truth, threshold),
        "all_frames_at_0.5": binary_metrics(probs, truth, 0.5),
        "rollout_frames": binary_metrics(probs[rollout], truth[rollout], threshold),
        "episodes": episode_outcomes(data, probs >= threshold),
        "heldout_during_training": metadata["training"]["heldout"],
        "train_class_counts": metadata["training"]["train_class_counts"],
        "heldout_class_counts": metadata["training"]["heldout_class_counts"],
    }


def report(results: dict) -> None:
    print("\n== reward classifier on fresh pick_cube episodes ==")
    print(f"train labels: {results['train_class_counts']} (+ held out {results['heldout_class_counts']})")
    print(f"fresh episodes: {results['eval_episodes']}, frames {results['class_counts']}; "
          f"rollout frames (up to the first success) {results['rollout_class_counts']}")
    for name in ("heldout_during_training", "all_frames", "all_frames_at_0.5", "rollout_frames"):
        m = results[name]
        print(f"{name:24s} acc {m['accuracy']:.4f} prec {m['precision']:.4f} rec {m['recall']:.4f} f1 {m['f1']:.4f} "
              f"(tp {m['tp']} fp {m['fp']} tn {m['tn']} fn {m['fn']})")
    print(f"threshold {results['threshold']:.2f}; episodes: {results['episodes']}")
    print(f"times: labels {results['seconds']['labels']:.0f} s, train {results['seconds']['train']:.0f} s, "
          f"eval {results['seconds']['eval']:.0f} s")


def main() -> int:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    record_labels(args.out / "train_labels", args.size, args.train_episodes, args.seed, args.max_positives)
    labelled = time.perf_counter()
    model_path = args.out / "classifier.pt"
    TrainReward(data=args.out / "train_labels", out=model_path, cameras="front,wrist", epochs=args.epochs,
                batches_per_epoch=args.batches_per_epoch, seed=args.seed, device=args.device, crop=tuple(args.crop),
                resize=args.resize).run()
    trained = time.perf_counter()
    record_labels(args.out / "eval_labels", args.size, args.eval_episodes, EVAL_SEED + args.seed, 10**9)
    results = evaluate(model_path, read_labels(args.out / "eval_labels"), args.device)
    results["eval_episodes"] = args.eval_episodes
    results["config"] = vars(args) | {"out": str(args.out)}
    results["seconds"] = {"labels": labelled - start, "train": trained - labelled, "eval": time.perf_counter() - trained}
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
