"""Pixel SAC with the frozen keypoint encoder whose features the replay caches, against end-to-end DrQ.

    .venv/bin/python benchmarks/frozen_encoder_speed.py [--seconds 10] [--threads 2] [--no-drq] [--json]

2 cameras at 128x128 + 7 floats, batch 256, 256-256 MLPs, 4 actions. Rows, measured in this one
process one after the other: transitions stored per second into a
:class:`~robot_rl.data.feature_replay.FeatureReplayBuffer` (each one encodes 2 cameras x 4
shifted copies), SAC updates/s with the batch sampled from that cache every update (what the
trainer does), and end-to-end DrQ updates/s on a fixed uint8 batch (the reference; the ratio is
from this run). The encoder has random weights: its speed does not depend on them.
``benchmarks/learner_speed.py --frozen`` runs this in a worker process and prints the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from robot_rl.agents.sac import SACAgent, SACConfig  # noqa: E402
from robot_rl.data.sampling import sample_batch  # noqa: E402
from robot_rl.data.schema import Batch, ObsSpec  # noqa: E402
from robot_rl.encoders.cached import replay_buffer  # noqa: E402
from robot_rl.encoders.keypoints import KeypointEncoder, save_encoder  # noqa: E402

SPEC = ObsSpec(7, {"front": (128, 128, 3), "wrist": (128, 128, 3)}, ("state",))
STORED = 512


def random_obs(rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
    out = {"state": rng.standard_normal((size, SPEC.state_dim)).astype(np.float32)}
    out.update({k: rng.integers(0, 256, (size, *shape), dtype=np.uint8) for k, shape in SPEC.images.items()})
    return out


def fill(config: SACConfig, rng: np.random.Generator) -> tuple[object, float]:
    """A feature cache with STORED transitions added one at a time; returns it and transitions/s."""
    frames = random_obs(rng, STORED)
    replay = replay_buffer(config, SPEC, 4, STORED + 1, "bench", 0, check_memory=False)
    start = time.perf_counter()
    replay.start_episode({k: v[0] for k, v in frames.items()})
    for i in range(1, STORED):
        replay.add(rng.uniform(-1, 1, 4).astype(np.float32), float(rng.random()), False, False, {k: v[i] for k, v in frames.items()})
    return replay, (STORED - 1) / (time.perf_counter() - start)


def timed(update, seconds: float) -> float:
    update()  # warm-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or count < 3:
        update()
        count += 1
    return count / (time.perf_counter() - start)


def measure(seconds: float, drq: bool) -> dict[str, float]:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        config = SACConfig(image_encoder="frozen", pretrained_path=str(save_encoder(f"{tmp}/encoder.pt", KeypointEncoder())))
        replay, stored_per_s = fill(config, rng)
        agent = SACAgent(SPEC, 4, config)
        result = {"frozen_updates_per_s": timed(lambda: agent.update(sample_batch(replay, None, config, 0.0)), seconds),
                  "stored_per_s": stored_per_s, "cache_bytes_per_transition": replay.cache_bytes_per_transition()}
    if drq:
        batch = Batch(random_obs(rng, 256), rng.uniform(-1, 1, (256, 4)).astype(np.float32), rng.random(256).astype(np.float32),
                      random_obs(rng, 256), np.zeros(256, np.float32))
        reference = SACAgent(SPEC, 4, SACConfig())
        result["drq_updates_per_s"] = timed(lambda: reference.update(batch), seconds)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-drq", action="store_true", help="skip the end-to-end DrQ reference (slow: ~0.2 updates/s)")
    parser.add_argument("--json", action="store_true", help="print one JSON line (for learner_speed.py --frozen)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    result = {**measure(args.seconds, not args.no_drq), "threads": args.threads, "load_before": load[0],
              "load_after": os.getloadavg()[0]}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.threads} threads, load average {result['load_before']:.2f} before, {result['load_after']:.2f} after")
    for line in rows(result):
        print(line)
    return 0


def rows(result: dict) -> list[str]:
    """Markdown rows of one measurement."""
    out = [f"| pixels 2 x 128x128, frozen encoder, features cached ({result['cache_bytes_per_transition']:,} B/transition), "
           f"sampling included | {result['threads']} | {result['frozen_updates_per_s']:.1f} updates/s |",
           f"| the same: transitions stored (2 cameras x 4 shifted copies encoded each) | {result['threads']} | "
           f"{result['stored_per_s']:.0f} transitions/s |"]
    if "drq_updates_per_s" in result:
        ratio = result["frozen_updates_per_s"] / result["drq_updates_per_s"]
        out.append(f"| pixels 2 x 128x128, end-to-end DrQ (reference) | {result['threads']} | "
                   f"{result['drq_updates_per_s']:.2f} updates/s (frozen = {ratio:.0f}x) |")
    return out


if __name__ == "__main__":
    sys.exit(main())
