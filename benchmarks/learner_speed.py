"""Learner speed: SAC critic updates/s at batch 256, ours against LeRobot 0.4.4 (and a baseline tree), interleaved.

    .venv/bin/python benchmarks/learner_speed.py [--seconds 8] [--rounds 3] [--threads 1 2]
        [--baseline /tmp/learner-baseline] [--no-lerobot] [--pixels] [--compile] [--configs "N=2)" ...]

One "update" is one minibatch of 256: a critic step (the full update adds an actor and a
temperature step). The "UTD 8" rows count critic updates: one ``update()`` of 8 minibatches is 8
critic steps and one actor/temperature step, which is what UTD 8 costs per env step; UTD 8 at a
10 Hz control rate needs 80 of those per second. Batches are random but well-formed, built once.

Every measurement runs in its own process (``--worker``), so ours, the baseline (``--baseline``:
another checkout's ``robot_rl``, e.g. ``git worktree add /tmp/learner-baseline HEAD``) and
LeRobot's SAC (``lerobot_sac_peer.py`` in ``.venv-lerobot``, built by ``lerobot_venv.py``) take
turns, ``--rounds`` times; each cell is the median, and the ratios compare medians of the same
run. The machine's load average is printed before and after (other work on it slows all alike).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
NEEDED_STATE = 80.0  # UTD 8 at 10 Hz
STATE = {"state_dim": 13}
PIXELS_64 = {"state_dim": 7, "images": {"front": (64, 64, 3), "wrist": (64, 64, 3)}}
PIXELS_128 = {"state_dim": 7, "images": {"front": (128, 128, 3), "wrist": (128, 128, 3)}}
# name -> (observation, SACConfig overrides, LeRobot peer arguments or None)
CONFIGS = {
    "state (13 floats, N=2)": (STATE, {}, {"num_critics": 2, "utd": 1}),
    "state (13 floats, N=2), UTD 8": (STATE, {"utd_ratio": 8}, {"num_critics": 2, "utd": 8}),
    "state (13 floats, N=10/M=2)": (STATE, {"num_critics": 10}, {"num_critics": 10, "utd": 1}),
}
COMPILED = {
    "state (13 floats, N=2), compiled": (STATE, {"compile": True}, {"num_critics": 2, "utd": 1}),
    "state (13 floats, N=2), UTD 8, compiled": (STATE, {"utd_ratio": 8, "compile": True}, {"num_critics": 2, "utd": 8}),
    "state (13 floats, N=10/M=2), compiled": (STATE, {"num_critics": 10, "compile": True}, {"num_critics": 10, "utd": 1}),
}
PIXEL_CONFIGS = {
    "pixels (2 x 64x64 + 7 floats)": (PIXELS_64, {}, None),
    "pixels (2 x 128x128 + 7 floats)": (PIXELS_128, {}, None),
}


def worker(spec_json: str, overrides_json: str, threads: int, seconds: float) -> dict:
    """Time one config in this process: critic updates/s (wall) and CPU ms per critic update."""
    import numpy as np
    import torch

    import robot_rl
    from robot_rl.agents.sac import SACAgent, SACConfig
    from robot_rl.data.schema import Batch, ObsSpec

    torch.set_num_threads(threads)
    spec_kw = json.loads(spec_json)
    spec = ObsSpec(spec_kw["state_dim"], {k: tuple(v) for k, v in spec_kw.get("images", {}).items()},
                   *((("state",),) if spec_kw.get("images") else ()))
    config = SACConfig(**json.loads(overrides_json))
    size, rng = config.batch_size * config.utd_ratio, np.random.default_rng(0)

    def obs() -> dict:
        out = {"state": rng.standard_normal((size, spec.state_dim)).astype(np.float32)}
        out.update({k: rng.integers(0, 256, (size, *shape), dtype=np.uint8) for k, shape in spec.images.items()})
        return out

    batch = Batch(obs(), rng.uniform(-1, 1, (size, 4)).astype(np.float32), rng.random(size).astype(np.float32),
                  obs(), (rng.random(size) < 0.05).astype(np.float32))
    agent = SACAgent(spec, 4, config)
    start = time.perf_counter()
    agent.update(batch)  # warm-up (and compilation, with compile=True)
    warmup_s = time.perf_counter() - start
    count, cpu0, start = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - start < seconds or count < 3:
        agent.update(batch)
        count += 1
    wall_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu0
    updates = count * config.utd_ratio
    return {"updates_per_s": updates / wall_s, "cpu_ms_per_update": 1e3 * cpu_s / updates, "warmup_s": warmup_s,
            "robot_rl": str(Path(robot_rl.__file__).parents[1])}


def run_json(cmd: list[str], env: dict | None, timeout_s: float) -> dict | None:
    """Run a worker command; its last stdout line is JSON. None (and a note on stderr) on failure."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, IndexError, ValueError) as error:
        tail = getattr(error, "stderr", None) or (proc.stderr[-800:] if "proc" in locals() else "")
        print(f"[learner_speed] {' '.join(cmd[:3])}... failed: {error!r}\n{tail}", file=sys.stderr)
        return None


def ours(spec: dict, overrides: dict, threads: int, seconds: float, source: Path | None) -> dict | None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if source is not None:
        env["PYTHONPATH"] = str(source)  # ahead of the editable install of this checkout
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec), json.dumps(overrides),
           "--threads", str(threads), "--seconds", str(seconds)]
    result = run_json(cmd, env, timeout_s=seconds * 4 + 600)
    if result is not None and source is not None and Path(result["robot_rl"]).resolve() != source.resolve():
        raise RuntimeError(f"the baseline worker imported robot_rl from {result['robot_rl']}, not {source}")
    return result


def lerobot(python: Path, peer: dict, threads: int, seconds: float) -> dict | None:
    cmd = [str(python), str(ROOT / "benchmarks" / "lerobot_sac_peer.py"), "--threads", str(threads),
           "--seconds", str(seconds), "--utd", str(peer["utd"]), "--num-critics", str(peer["num_critics"])]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return run_json(cmd, env, timeout_s=seconds * 4 + 300)


def measure_row(config: tuple, threads: int, args: argparse.Namespace, peer_python: Path | None) -> dict[str, list[dict]]:
    """``--rounds`` interleaved measurements of ours, the baseline and LeRobot for one config."""
    spec, overrides, peer = config
    runs: dict[str, list[dict]] = {"ours": [], "baseline": [], "lerobot": []}
    for _ in range(args.rounds):
        runs["ours"].append(ours(spec, overrides, threads, args.seconds, None))
        if args.baseline is not None and "compile" not in overrides:
            runs["baseline"].append(ours(spec, overrides, threads, args.seconds, args.baseline))
        if peer_python is not None and peer is not None:
            runs["lerobot"].append(lerobot(peer_python, peer, threads, args.seconds))
    return {k: [r for r in v if r is not None] for k, v in runs.items()}


def cell(results: list[dict], reference: list[dict] | None = None) -> str:
    if not results:
        return "-"
    rate = statistics.median(r["updates_per_s"] for r in results)
    cpu = statistics.median(r["cpu_ms_per_update"] for r in results)
    text = f"{rate:.1f}/s ({cpu:.1f} ms CPU)"
    if reference:
        text += f" = {rate / statistics.median(r['updates_per_s'] for r in reference):.2f}x"
    return text


def frozen_encoder_rows(thread_counts: list[int], seconds: float) -> None:
    """Rows of ``benchmarks/frozen_encoder_speed.py`` (pixels through the frozen encoder whose features the
    replay caches, with end-to-end DrQ measured in the same worker), one worker process per thread count."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from frozen_encoder_speed import rows

    print("\n| frozen encoder (pixels 2 x 128x128 + 7 floats, batch 256) | threads | rate |\n|---|---|---|")
    for threads in thread_counts:
        cmd = [sys.executable, str(ROOT / "benchmarks" / "frozen_encoder_speed.py"), "--json", "--threads", str(threads),
               "--seconds", str(seconds)]
        result = run_json(cmd, None, timeout_s=seconds * 4 + 1200)
        for line in rows(result) if result is not None else []:
            print(line, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved measurements per cell (median)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout's root to compare against")
    parser.add_argument("--no-lerobot", action="store_true", help="skip the LeRobot 0.4.4 peer")
    parser.add_argument("--pixels", action="store_true", help="add the pixel rows (slow: ~1 update/s)")
    parser.add_argument("--compile", action="store_true", help="add rows with SACConfig(compile=True)")
    parser.add_argument("--frozen", action="store_true", help="add the frozen-encoder feature-cache rows (frozen_encoder_speed.py)")
    parser.add_argument("--configs", nargs="+", default=None, help="only the rows whose name contains one of these")
    parser.add_argument("--worker", nargs=2, metavar=("SPEC", "OVERRIDES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.threads[0], args.seconds)))
        return 0
    peer_python = None
    if not args.no_lerobot:
        from lerobot_venv import ensure_lerobot_venv

        peer_python = ensure_lerobot_venv(ROOT)
    configs = {**CONFIGS, **(COMPILED if args.compile else {}), **(PIXEL_CONFIGS if args.pixels else {})}
    configs = {k: v for k, v in configs.items() if args.configs is None or any(c in k for c in args.configs)}
    load_before = os.getloadavg()
    print(f"Machine: {os.cpu_count()} cores, load average {load_before[0]:.2f} / {load_before[1]:.2f} / "
          f"{load_before[2]:.2f} (1/5/15 min) before; batch 256, 256-256 MLPs, {args.rounds} interleaved rounds "
          f"of {args.seconds:.0f} s; cells: median critic updates/s (median CPU ms per update) = ratio to ours\n")
    print("| config | threads | ours | baseline | LeRobot 0.4.4 SAC | ours / LeRobot |")
    print("|---|---|---|---|---|---|")
    for name, config in configs.items():
        for threads in args.threads:
            runs = measure_row(config, threads, args, peer_python)
            speedup = "-"
            if runs["lerobot"] and runs["ours"]:
                speedup = cell(runs["ours"], runs["lerobot"]).split("= ")[-1]
            compile_s = "" if "compile" not in config[1] else f" (compile {max(r['warmup_s'] for r in runs['ours']):.0f} s)"
            print(f"| {name}{compile_s} | {threads} | {cell(runs['ours'])} | {cell(runs['baseline'], None)}"
                  f"{'' if not runs['baseline'] else ' -> ours ' + cell(runs['ours'], runs['baseline']).split('= ')[-1]} | "
                  f"{cell(runs['lerobot'])} | {speedup} |", flush=True)
    if args.frozen:
        frozen_encoder_rows(args.threads, args.seconds)
    load_after = os.getloadavg()
    print(f"\nLoad average after: {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f}. "
          f"UTD 8 at 10 Hz needs {NEEDED_STATE:.0f} critic updates/s for the state config (the UTD 8 rows).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
