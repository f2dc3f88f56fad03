"""Learner speed: SAC updates/s at batch 256 for state and pixel configs on this machine.

    .venv/bin/python benchmarks/learner_speed.py [--seconds 20] [--device cpu]

One "update" is one minibatch of 256 (utd_ratio=1): a critic step, an actor step and a
temperature step. The "UTD 8" row counts critic updates: one ``update()`` of 8 minibatches is 8
critic steps and one actor/temperature step, which is what UTD 8 costs per env step; UTD 8 at a
10 Hz control rate needs 80 of those per second. Batches are random but well-formed (images
uint8), built once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from robot_rl.agents.sac import SACAgent, SACConfig  # noqa: E402
from robot_rl.data.schema import Batch, ObsSpec  # noqa: E402

CONFIGS = {
    "state (13 floats, N=2)": (ObsSpec(13), SACConfig()),
    "state (13 floats, N=2), UTD 8": (ObsSpec(13), SACConfig(utd_ratio=8)),
    "state (13 floats, N=10/M=2)": (ObsSpec(13), SACConfig(num_critics=10)),
    "pixels (2 x 64x64 + 7 floats)": (ObsSpec(7, {"front": (64, 64, 3), "wrist": (64, 64, 3)}, ("state",)), SACConfig()),
    "pixels (2 x 128x128 + 7 floats)": (ObsSpec(7, {"front": (128, 128, 3), "wrist": (128, 128, 3)}, ("state",)), SACConfig()),
}
NEEDED_STATE = 80.0  # UTD 8 at 10 Hz


def random_batch(spec: ObsSpec, action_dim: int, size: int, rng: np.random.Generator) -> Batch:
    def obs() -> dict[str, np.ndarray]:
        out = {"state": rng.standard_normal((size, spec.state_dim)).astype(np.float32)}
        out.update({k: rng.integers(0, 256, (size, *shape), dtype=np.uint8) for k, shape in spec.images.items()})
        return out

    return Batch(obs(), rng.uniform(-1, 1, (size, action_dim)).astype(np.float32), rng.random(size).astype(np.float32),
                 obs(), (rng.random(size) < 0.05).astype(np.float32))


def updates_per_second(spec: ObsSpec, config: SACConfig, device: str, seconds: float) -> float:
    agent = SACAgent(spec, 4, config, device=device)
    batch = random_batch(spec, 4, config.batch_size * config.utd_ratio, np.random.default_rng(0))
    agent.update(batch)  # warm-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or count < 3:
        agent.update(batch)
        count += 1
    return count * config.utd_ratio / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="timing per config and thread count")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(f"Machine: {os.cpu_count()} cores, torch {torch.__version__}, device {args.device}, batch 256\n")
    print("| config | " + " | ".join(f"{t} thread{'s' * (t > 1)}" for t in args.threads) + " |")
    print("|---|" + "---|" * len(args.threads))
    for name, (spec, config) in CONFIGS.items():
        rates = []
        for threads in args.threads:
            torch.set_num_threads(threads)
            rates.append(updates_per_second(spec, config, args.device, args.seconds))
        cells = [f"{r:.1f} updates/s" for r in rates]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print(f"\nUTD 8 at 10 Hz needs {NEEDED_STATE:.0f} critic updates/s for the state config (the UTD 8 row).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
