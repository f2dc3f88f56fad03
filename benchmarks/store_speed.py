"""The learner's store: transitions/s it makes durable, one fsync pair per chunk vs per poll batch.

    .venv/bin/python benchmarks/store_speed.py            # [--episodes 6] [--dir PATH]

``robot_rl.distributed.store.EpisodeStore.accept`` as the learner calls it, on the disk of
``--dir`` (default: this checkout, i.e. where runs/ go): episodes of 100 steps in chunks of 10
(our actor's default), state (30 floats) and images (two 128x128x3 cameras + 30 floats). The
BASELINE accepts each chunk durably on its own (file fsync + directory fsync per chunk, what the
learner did before); OURS accepts a poll batch of chunks without fsync and then syncs the batch
(what the learner does now: one fsync per file and one per directory, before any ack). Both
include consolidating each finished episode into its episode file. Variants alternate, twice;
the best run of each is shown.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import shutil
import sys
import tempfile
import time

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from robot_rl.data.schema import ObsSpec  # noqa: E402
from robot_rl.distributed.store import EpisodeStore  # noqa: E402
from robot_rl.data.episode_metadata import episode_metadata  # noqa: E402
from robot_rl.transport import Transitions  # noqa: E402

STEPS, CHUNK, ACTION_DIM = 100, 10, 7
BATCHES = (1, 8)  # chunks per sync: 1 = the baseline (durable per chunk), 8 = a poll batch


def make_spec(images: bool) -> ObsSpec:
    space = {"state": gym.spaces.Box(-np.inf, np.inf, (30,), np.float32)}
    if images:
        space |= {cam: gym.spaces.Box(0, 255, (128, 128, 3), np.uint8) for cam in ("front", "wrist")}
    return ObsSpec.from_space(gym.spaces.Dict(space))


def chunks(spec: ObsSpec, episode: int, seq0: int) -> list[Transitions]:
    rng, out = np.random.default_rng(episode), []
    for k, first in enumerate(range(0, STEPS, CHUNK)):
        rows = CHUNK + (first == 0)
        obs = {key: (rng.integers(0, 255, (rows, *shape), np.uint8) if dtype == np.uint8 else
                     rng.standard_normal((rows, *shape)).astype(dtype)) for key, (shape, dtype) in spec.shapes().items()}
        final = first + CHUNK == STEPS
        ended = np.zeros(CHUNK, bool)
        ended[-1] = final
        out.append(Transitions("actor-0", seq0 + k, episode, first, rng.uniform(-1, 1, (CHUNK, ACTION_DIM)).astype(np.float32),
                               np.zeros(CHUNK, np.float32), np.zeros(CHUNK, bool), ended, np.zeros(CHUNK, bool), obs, final))
    return out


def measure(spec: ObsSpec, batch: int, episodes: int, root: pathlib.Path) -> float:
    """Transitions/s made durable (accept + sync), consolidation included."""
    run_dir = pathlib.Path(tempfile.mkdtemp(prefix="store-speed-", dir=root))
    try:
        box = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        store = EpisodeStore(run_dir, episode_metadata("bench", "pixels", spec, box, 10.0, "online"), spec, ACTION_DIM)
        store.recover()
        data = [c for e in range(episodes) for c in chunks(spec, e, e * (STEPS // CHUNK))]
        start = time.perf_counter()
        for index, chunk in enumerate(data):
            store.accept(chunk, durable=batch == 1)
            if (index + 1) % batch == 0:
                store.sync()
        store.sync()
        return len(data) * CHUNK / (time.perf_counter() - start)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=6, help="episodes of 100 steps per run")
    parser.add_argument("--dir", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parents[1],
                        help="a directory on the disk to measure (a temp dir is made and removed inside)")
    args = parser.parse_args()
    print(f"{platform.platform()}, {os.cpu_count()} cores; disk of {args.dir}; load {os.getloadavg()[0]:.1f}\n")
    print("| data | fsync per chunk (transitions/s) | fsync per batch of 8 chunks | ours better by |")
    print("|---|---|---|---|")
    for images in (False, True):
        spec, best = make_spec(images), {}
        for _ in range(2):
            for batch in BATCHES:
                best[batch] = max(best.get(batch, 0.0), measure(spec, batch, args.episodes, args.dir))
        name = "images (2 x 128x128x3 + 30 floats)" if images else "state (30 floats)"
        print(f"| {name} | {best[1]:,.0f} | {best[8]:,.0f} | {best[8] / best[1]:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
