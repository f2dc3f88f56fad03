"""Helpers for the actor/learner tests: chunks, free ports, real `robot-rl` processes with deadlines."""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np

from robot_rl.data.schema import ObsSpec
from robot_rl.data.episode_metadata import episode_metadata
from robot_rl.transport import Transitions

STATE_DIM, ACTION_DIM = 3, 2
SPEC = ObsSpec(state_dim=STATE_DIM)
TINY = ["--sac.hidden-dims", "32", "32", "--sac.batch-size", "32"]
REPO = pathlib.Path(__file__).resolve().parents[3]


def metadata() -> dict:
    box = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
    return episode_metadata("tiny", "state", SPEC, box, 10.0, "online")


def chunk(actor: str, seq: int, episode: int, first_step: int, count: int, final: bool = False,
          terminated: bool = True, intervention: bool = False) -> Transitions:
    """A chunk whose state rows encode (episode, step) so tests can check what ended where."""
    rows = count + 1 if first_step == 0 else count
    start = first_step if first_step == 0 else first_step + 1
    steps = np.arange(start, start + rows, dtype=np.float32)
    state = np.stack([np.full(rows, episode, np.float32), steps, np.zeros(rows, np.float32)], axis=1)
    ended = np.zeros(count, bool)
    ended[-1] = final
    return Transitions(actor, seq, episode, first_step, np.full((count, ACTION_DIM), 0.5, np.float32),
                       np.arange(count, dtype=np.float32), ended if terminated else np.zeros(count, bool),
                       ended if not terminated else np.zeros(count, bool), np.full(count, intervention), {"state": state}, final)


def free_ports(n: int = 2) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Proc:
    """A `python -m robot_rl.cli ...` subprocess writing to a log file (read with deadlines)."""

    def __init__(self, name: str, args: list[str], log_dir: pathlib.Path, ignore_sigint: bool = False) -> None:
        """``ignore_sigint``: start it as a shell script's background job is (``robot-rl ... &``)."""
        self.name = name
        self.log = log_dir / f"{name}-{time.monotonic_ns()}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
        preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "robot_rl.cli", *args], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, cwd=REPO, preexec_fn=preexec)

    @property
    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text)
            if match:
                return match
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}) before printing {pattern!r}:\n{self.text[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not print {pattern!r} within {timeout_s} s:\n{self.text[-3000:]}")

    def wait(self, timeout_s: float) -> int:
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still runs after {timeout_s} s:\n{self.text[-3000:]}") from None

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def interrupt(self, timeout_s: float = 30.0, sig: int = signal.SIGINT) -> int:
        self.proc.send_signal(sig)
        return self.wait(timeout_s)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def counters(spool: pathlib.Path) -> dict:
    path = spool / "counters.json"
    return json.loads(path.read_text()) if path.exists() else {}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(condition, timeout_s: float, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} not met within {timeout_s} s"
        time.sleep(0.05)
