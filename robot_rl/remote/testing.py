"""Test support: ``robot-rl serve-robot`` as a real subprocess, its endpoint read from its
``ready at`` line (it binds a free port), with deadlines on every wait."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

READY = re.compile(r"serve-robot: ready at (tcp://\S+)")


class ServeRobotProcess:
    """``robot-rl serve-robot --rig RIG --bind tcp://127.0.0.1:* ARGS...``, logging to ``log`` and
    running in its folder (give other paths in ``ARGS`` absolute)."""

    def __init__(self, rig: pathlib.Path, log: pathlib.Path, *args: str) -> None:
        self.rig, self.log, self.args = pathlib.Path(rig), pathlib.Path(log), list(args)
        self.proc: subprocess.Popen | None = None
        self.endpoint: str | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self, timeout_s: float = 60.0) -> str:
        """Start it and wait for its ``ready`` line; returns the endpoint it listens on."""
        command = [sys.executable, "-m", "robot_rl.cli", "serve-robot", "--rig", str(self.rig.resolve()),
                   "--bind", "tcp://127.0.0.1:*", *self.args]
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=self.log.parent)  # its files stay there
        self.endpoint = self.wait_for(READY, timeout_s).group(1)
        return self.endpoint

    def wait_for(self, pattern: str | re.Pattern, timeout_s: float) -> re.Match:
        """The first match of ``pattern`` in the log (AssertionError after ``timeout_s`` or an exit)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text)
            if match:
                return match
            if not self.running:
                raise AssertionError(f"serve-robot exited ({self.proc.returncode}) before printing {pattern!r}:\n{self.text[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"serve-robot did not print {pattern!r} within {timeout_s} s:\n{self.text[-3000:]}")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM (the server stops and closes its backend), then SIGKILL after ``timeout_s``."""
        if not self.running:  # never started, or killed by the test
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(f"serve-robot ignored SIGTERM for {timeout_s} s:\n{self.text[-3000:]}") from None
