"""What a hostile or broken actor can do to a live learner: every probe of issue 11, one after the other.

    .venv/bin/python benchmarks/hostile_actors.py        # [--dir PATH] [--seed N]; ~4 min on 2 cores

A real ``robot-rl learner`` (pick_cube, tiny agent, CURVE keys for actors 'good' and 'evil',
``--max-message-mb 16``, checkpoints every 5 s, training from 32 transitions) and one real
``robot-rl actor --id good`` (10-step chunks at 50 Hz) run throughout; its run directory is a
256 MB tmpfs when this runs as root (the full-disk probe needs it, and is skipped otherwise). Each
probe of :mod:`hostile_probes` is played against the learner by clients holding the 'evil' key
(or none, or an unknown one), by a full disk, or by ``kill -9``; then the table row says whether
the learner is up, its first log line since the probe, whether the good actor's chunks of before
the probe were all acked within 30 s, the good actor's transitions produced / stored / unique
(stored: by the learner; unique: distinct (actor, episode, step)), and the learner's peak RSS
during the probe (VmHWM, reset before each probe). At the end both stop (SIGTERM) and the counts
must match, but for the episode the damaged-file probe destroyed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import pathlib
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import zmq

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "robot_rl" / "distributed"), str(ROOT / "benchmarks")]

from distributed_helpers import TINY, Proc, counters, free_ports  # noqa: E402
from hostile_probes import PROBES  # noqa: E402
from robot_rl.data import read_episode  # noqa: E402
from robot_rl.distributed.store import stored_keys  # noqa: E402
from robot_rl.transport.auth import generate_keys  # noqa: E402
from wire_clients import client, proc_status_mb  # noqa: E402

ACK_DEADLINE_S = 30.0


class Bench:
    """The learner, the good actor and what the probes need (see the module docstring)."""

    def __init__(self, base: pathlib.Path) -> None:
        self.base, self.context = base, zmq.Context()
        self.disk, self.disk_skip = self.mount_disk(base / "disk")
        self.run = (self.disk or base) / "run"
        self.keys, self.stranger_keys = base / "keys", base / "stranger"
        generate_keys(self.keys, ["good", "evil"])
        generate_keys(self.stranger_keys, ["stranger"])
        shutil.copy(self.keys / "learner.key", self.stranger_keys / "learner.key")
        self.ports = free_ports()
        self.endpoint = f"tcp://127.0.0.1:{self.ports[0]}"
        self.learner = self.actor = None
        self.log_offset, self.damaged_steps = 0, 0
        self.sockets: list[zmq.Socket] = []

    @staticmethod
    def mount_disk(path: pathlib.Path) -> tuple[pathlib.Path | None, str]:
        path.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(path)], capture_output=True, text=True)
        return (path, "") if done.returncode == 0 else (None, f"no tmpfs ({done.stderr.strip() or 'mount failed'}; needs root)")

    def start_learner(self, resume: bool = False) -> None:
        args = ["learner", "--task", "pick_cube", *TINY, "--out", str(self.run.parent), "--name", "run", "--keys", str(self.keys),
                "--steps", "10000000", "--learning-starts", "32", "--no-eval", "--threads", "1", "--max-message-mb", "16",
                "--checkpoint-every-s", "5", "--bind", self.endpoint, "--weights-bind", f"tcp://127.0.0.1:{self.ports[1]}"]
        self.learner = Proc("learner", args + (["--resume"] if resume else []), self.base)
        self.log_offset = 0
        self.learner.wait_for("learner for pick_cube", 120)

    def start_actor(self) -> None:
        self.actor = Proc("good", ["actor", "--id", "good", "--task", "pick_cube", *TINY, "--learner", self.endpoint,
                                   "--weights", f"tcp://127.0.0.1:{self.ports[1]}", "--keys", str(self.keys),
                                   "--out", str(self.run.parent), "--name", "run", "--max-hz", "50", "--flush-s", "30"], self.base)

    def client(self, name: str, keys: pathlib.Path | None = None, key: str | None = None) -> zmq.Socket:
        """A probe's DEALER (closed after its probe, so its disconnect is logged during that probe)."""
        socket = client(self.context, self.endpoint, name, keys, key)
        self.sockets.append(socket)
        return socket

    def close_clients(self) -> None:
        for socket in self.sockets:
            socket.close(linger=0)
        self.sockets.clear()

    # ------------------------------------------------------------------ measurements
    def good_next_seq(self) -> int:
        return counters(self.run / "spool" / "good").get("next_seq", 0)

    def acked_within(self, deadline_s: float) -> float | None:
        """Seconds until every chunk the good actor had spooled by now was acked (None: not in time)."""
        spool, target, started = self.run / "spool" / "good", self.good_next_seq(), time.monotonic()
        while time.monotonic() - started < deadline_s:
            pending = [int(p.stem) for p in spool.glob("*.msg") if p.stem.isdigit()]
            if not [seq for seq in pending if seq < target]:
                return time.monotonic() - started
            time.sleep(0.1)
        return None

    def counts(self) -> str:
        """The good actor's transitions produced / stored / unique (stored read first: chunks in flight
        make produced the larger while both run)."""
        for _ in range(5):  # a chunk directory may vanish while it is read (consolidated meanwhile)
            with contextlib.suppress(FileNotFoundError, ValueError):
                keys = [key for key in stored_keys(self.run) if key[0] == "good"]
                produced = counters(self.run / "spool" / "good").get("transitions_produced", 0)
                return f"{produced} / {len(keys)} / {len(set(keys))}"
        return "? / ? / ?"

    def reset_peak(self) -> None:
        with contextlib.suppress(OSError):
            pathlib.Path(f"/proc/{self.learner.proc.pid}/clear_refs").write_text("5")

    def new_log_line(self) -> str:
        text = self.learner.text
        lines = [line for line in text[self.log_offset:].splitlines() if " WARNING " in line or " ERROR " in line or "resumed" in line]
        self.log_offset = len(text)
        line = lines[0].split(" WARNING ", 1)[-1].split(" ERROR ", 1)[-1] if lines else "-"
        return (line[:100] + "...") if len(line) > 100 else line

    def wait_for_log(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.learner.text[self.log_offset:] and time.monotonic() < deadline:
            time.sleep(0.1)

    @staticmethod
    def episode_length(path: pathlib.Path) -> int:
        return len(read_episode(path))

    def close(self) -> None:
        for proc in (self.actor, self.learner):
            if proc is not None:
                proc.cleanup()
        self.context.destroy(linger=0)
        if self.disk is not None:
            subprocess.run(["umount", "-l", str(self.disk)], check=False)


def baseline(bench: Bench) -> str:
    time.sleep(20.0)
    return "20 s of training"


def play(bench: Bench, name: str, probe) -> list[str]:
    bench.new_log_line()  # skip what came before
    bench.reset_peak()
    note = probe(bench)
    bench.close_clients()
    time.sleep(1.0)
    up = bench.learner.proc.poll() is None
    acked = bench.acked_within(ACK_DEADLINE_S)
    peak = proc_status_mb(bench.learner.proc.pid, "VmHWM") if up else float("nan")
    return [name, "yes" if up else "NO", bench.new_log_line(), f"yes ({acked:.1f} s)" if acked is not None else "NO",
            bench.counts(), f"{peak:.0f}", note]


def print_table(rows: list[list[str]]) -> None:
    header = ["probe", "learner up", "learner's log line", "good actor acked", "produced / stored / unique", "peak RSS MiB", "what"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=pathlib.Path, default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill timings")
    args = parser.parse_args()
    random.seed(args.seed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill` it: the learner, actor and tmpfs still go
    logging.getLogger("robot_rl").setLevel(logging.ERROR)  # stored_keys() names the damaged file on each read
    base = pathlib.Path(tempfile.mkdtemp(prefix="hostile-", dir=args.dir))
    bench, rows = Bench(base), []
    try:
        bench.start_learner()
        bench.start_actor()
        bench.learner.wait_for(r"updates \d+ ", 120)
        rows.append(play(bench, "baseline (no probe)", baseline))
        for name, probe in PROBES:
            print(f"probe: {name}", file=sys.stderr, flush=True)
            rows.append(play(bench, name, probe))
        bench.actor.interrupt(90, signal.SIGTERM)
        bench.learner.interrupt(90, signal.SIGTERM)
        produced = counters(bench.run / "spool" / "good")["transitions_produced"]
        keys = [key for key in stored_keys(bench.run) if key[0] == "good"]
        rows.append(["end: both stopped (SIGTERM)", "-", "-", "-", f"{produced} / {len(keys)} / {len(set(keys))}", "-",
                     f"lost with the damaged file: {bench.damaged_steps}"])
        print_table(rows)
        ok = produced - bench.damaged_steps == len(keys) == len(set(keys))
        print(f"\nproduced - damaged == stored == unique: {ok}; {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}); "
              f"logs in {base}")
        return 0 if ok else 1
    finally:
        bench.close()


if __name__ == "__main__":
    sys.exit(main())
