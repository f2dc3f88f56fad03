"""Minor page faults and CPU per SAC update under glibc's malloc thresholds (robot_rl/agents/memory.py).

Each setting runs in its own process (mallopt is process-wide): glibc's defaults ("none"), and the
mmap threshold at the given MiB with robot_rl's trim threshold. Prints one row per setting::

    .venv/bin/python benchmarks/learner_memory.py [--critics 10] [--threads 2] [--updates 40] [--mmap-mib 32 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def worker(mmap_mib: int | None, critics: int, threads: int, updates: int) -> dict:
    import resource
    import time

    import numpy as np
    import torch

    import robot_rl.agents.memory as memory
    import robot_rl.agents.sac as sac
    from robot_rl.agents.sac import SACAgent, SACConfig
    from robot_rl.data.schema import Batch, ObsSpec

    if mmap_mib is None:
        sac.keep_freed_memory = lambda: False  # glibc's own policy
    else:
        memory.MMAP_THRESHOLD_BYTES = mmap_mib << 20
    torch.set_num_threads(threads)
    rng, size = np.random.default_rng(0), 256
    obs = lambda: {"state": rng.standard_normal((size, 13)).astype(np.float32)}  # noqa: E731
    batch = Batch(obs(), rng.uniform(-1, 1, (size, 4)).astype(np.float32), rng.random(size).astype(np.float32),
                  obs(), (rng.random(size) < 0.05).astype(np.float32))
    agent = SACAgent(ObsSpec(13, {}), 4, SACConfig(num_critics=critics, num_min_critics=2))
    for _ in range(5):
        agent.update(batch)
    before, cpu0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
    for _ in range(updates):
        agent.update(batch)
    after, cpu1 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
    return {"faults": (after.ru_minflt - before.ru_minflt) / updates, "cpu_ms": 1e3 * (cpu1 - cpu0) / updates,
            "sys_ms": 1e3 * (after.ru_stime - before.ru_stime) / updates}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--critics", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--mmap-mib", type=int, nargs="+", default=[32, 4])
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        mib = None if args.worker == "none" else int(args.worker)
        print(json.dumps(worker(mib, args.critics, args.threads, args.updates)))
        return 0
    print(f"N={args.critics}, batch 256, (256, 256) MLPs, {args.threads} threads, {args.updates} updates; "
          f"load average {os.getloadavg()[0]:.2f} before")
    print("| malloc setting | minor faults per update | CPU ms per update | system ms per update |\n|---|---|---|---|")
    for setting in ["none", *map(str, args.mmap_mib)]:
        out = subprocess.run([sys.executable, __file__, "--worker", setting, "--critics", str(args.critics),
                              "--threads", str(args.threads), "--updates", str(args.updates)],
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            print(f"| {setting} | failed: {out.stderr.strip().splitlines()[-1:]} | | |")
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        name = "glibc defaults" if setting == "none" else f"mmap {setting} MiB, trim 256 MiB"
        print(f"| {name} | {row['faults']:.0f} | {row['cpu_ms']:.1f} | {row['sys_ms']:.2f} |")
    print(f"load average {os.getloadavg()[0]:.2f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
