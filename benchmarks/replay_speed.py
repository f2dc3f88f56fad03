"""Replay speed: how fast `ReplayBuffer.sample(256)` is against what the learner consumes.

    .venv/bin/python benchmarks/replay_speed.py            # [--capacity 20000] [--seconds 3]

Two buffers, filled with random data through `add_episode` (100-step episodes, every page
written): state (13 floats) and pixels (7 floats + two 128x128 uint8 cameras). Times
`sample(256)` (fresh arrays each batch) and `sample(256, out=batch)` (refilled in place), and,
for reference, the online `start_episode`/`add` path. Prints a markdown table;
the requirement is sampling at least 10x the learner's consumption.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robot_rl.data.episodes import Episode  # noqa: E402
from robot_rl.data.replay import ReplayBuffer  # noqa: E402
from robot_rl.data.schema import ObsSpec  # noqa: E402

BATCH = 256
ACTION_DIM = 4
EPISODE_STEPS = 100
REQUIRED_RATIO = 10.0
# Learner consumption, samples/s: the learner's rough CPU update rates times the batch size
# (state SAC ~80 updates/s; pixel SAC with two 128x128 cameras ~10 updates/s).
LEARNER_SAMPLES_PER_S = {"state": 80 * BATCH, "pixels": 10 * BATCH}
SPECS = {
    "state": ObsSpec(state_dim=13),
    "pixels": ObsSpec(state_dim=7, images={"front": (128, 128, 3), "wrist": (128, 128, 3)}),
}


def random_episode(spec: ObsSpec, rng: np.random.Generator) -> Episode:
    steps = EPISODE_STEPS
    observations = {"state": rng.standard_normal((steps + 1, spec.state_dim), dtype=np.float32)}
    for name, shape in spec.images.items():
        observations[name] = rng.integers(0, 256, (steps + 1, *shape), dtype=np.uint8)
    terminated = np.zeros(steps, bool)
    terminated[-1] = True
    return Episode(observations, rng.uniform(-1, 1, (steps, ACTION_DIM)).astype(np.float32),
                   rng.standard_normal(steps, dtype=np.float32), terminated, np.zeros(steps, bool),
                   np.zeros(steps, bool), metadata={})


def filled_buffer(spec: ObsSpec, capacity: int) -> ReplayBuffer:
    buffer = ReplayBuffer(spec, ACTION_DIM, capacity, name="bench")
    rng = np.random.default_rng(0)
    while buffer.transitions_added < capacity:
        buffer.add_episode(random_episode(spec, rng))
    return buffer


def time_sample(buffer: ReplayBuffer, seconds: float, in_place: bool) -> float:
    """Batches of 256 per second; ``in_place`` refills one batch (``sample(256, out=batch)``)."""
    batch = buffer.sample(BATCH)
    for _ in range(5):
        buffer.sample(BATCH, out=batch if in_place else None)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        buffer.sample(BATCH, out=batch if in_place else None)
        count += 1
    return count / (time.perf_counter() - start)


def time_add(spec: ObsSpec, steps: int = 5000) -> float:
    """Online `add` steps per second (fresh observations each step, as from an actor)."""
    with contextlib.redirect_stdout(io.StringIO()):
        buffer = ReplayBuffer(spec, ACTION_DIM, steps + 1, name="bench-add")
    episode = random_episode(spec, np.random.default_rng(1))
    obs = [{key: value[t] for key, value in episode.observations.items()} for t in range(EPISODE_STEPS + 1)]
    start = time.perf_counter()
    buffer.start_episode(obs[0])
    for i in range(steps):
        t = i % EPISODE_STEPS
        buffer.add(episode.actions[t], episode.rewards[t], False, False, obs[t + 1])
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    rows = []
    for mode, spec in SPECS.items():
        buffer = filled_buffer(spec, args.capacity)
        for call in ("sample(256)", "sample(256, out=batch)"):
            batches = time_sample(buffer, args.seconds, in_place="out" in call)
            rows.append((mode, call, batches, batches * BATCH / LEARNER_SAMPLES_PER_S[mode]))
        adds = time_add(spec)
        print(f"{mode}: buffer {buffer.nbytes / 1e9:.2f} GB, online add() {adds:,.0f} steps/s")
        del buffer
    print(f"\n{platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, capacity {args.capacity:,}, "
          f"batch {BATCH}\n")
    print("| obs | call | batches/s | samples/s | learner samples/s | ratio |")
    print("|---|---|---|---|---|---|")
    for mode, call, batches, ratio in rows:
        mark = "" if ratio >= REQUIRED_RATIO else f" (below {REQUIRED_RATIO:.0f}x)"
        print(f"| {mode} | `{call}` | {batches:,.0f} | {batches * BATCH:,.0f} | {LEARNER_SAMPLES_PER_S[mode]:,} "
              f"| {ratio:.1f}x{mark} |")


if __name__ == "__main__":
    main()
