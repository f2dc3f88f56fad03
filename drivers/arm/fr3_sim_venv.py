"""franka-sim, the test bed of the FR3 backend: its own venv, and one server process on loopback.

franka-sim (PyPI) is a MuJoCo server speaking libfranka's network protocol (FCI protocol 10), so
the FR3 backend is tested through the real client library. It pins numpy 1.26 and mujoco 3.2
(robot_rl uses numpy 2 and mujoco 4), so :func:`ensure_franka_sim_venv` builds
``<root>/.venv-franka-sim`` (git-ignored) with exact pins, and :class:`FrankaSimProcess` runs
``fr3_sim_server.py`` in it. ``make test`` runs this file once (a stamp inside the venv records the
pins; ~25 s). Facts that shape this module (measured, see DEPENDENCIES.md):

* libfranka always connects to port 1337 (gripper 1338): one server per machine at a time;
* the server downloads its FR3 model unless ``FR3_MJCF`` names a local one (ours:
  ``sim/arm/assets/fr3.xml``);
* readiness is franka-sim's own probe, ``franka-sim-check`` (a real Connect handshake plus one
  state datagram), polled with a deadline; the server stops on SIGTERM.

Stdlib only: imported from our venv, and run as a script by the Makefile.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV_NAME = ".venv-franka-sim"
STAMP_NAME = ".franka-sim-stamp.json"
SERVER_SCRIPT = pathlib.Path(__file__).resolve().with_name("fr3_sim_server.py")
FR3_MJCF = ROOT / "sim" / "arm" / "assets" / "fr3.xml"
FCI_PORT = 1337

# franka-sim and the exact set it resolves to here (a lock), plus the torch guard every pip call keeps.
PINS = (
    "franka-sim==1.1.7", "numpy==1.26.4", "mujoco==3.2.7", "absl-py==2.5.1", "etils==1.15.0",
    "fsspec==2026.9.0", "gitdb==4.0.12", "GitPython==3.2.1", "glfw==2.11.0", "PyOpenGL==3.1.10",
    "robot_descriptions==3.3.0", "smmap==5.0.3", "tqdm==4.70.1", "trimesh==5.2.0",
    "typing_extensions==4.16.0", "zipp==4.1.2", "torch==2.13.0",
)


def venv_python(root: pathlib.Path = ROOT) -> pathlib.Path | None:
    """The franka-sim venv's python if the venv is built with the current pins, else None."""
    venv = pathlib.Path(root) / VENV_NAME
    try:
        ready = json.loads((venv / STAMP_NAME).read_text()) == {"pins": list(PINS)}
    except (OSError, ValueError):
        ready = False
    python = venv / "bin" / "python"
    return python if ready and python.exists() else None


def ensure_franka_sim_venv(root: pathlib.Path = ROOT, timeout_s: float = 900.0) -> pathlib.Path:
    """Build ``root/.venv-franka-sim`` if it is missing or its pins changed; return its python."""
    python = venv_python(root)
    if python is not None:
        return python
    venv = pathlib.Path(root) / VENV_NAME
    python = venv / "bin" / "python"
    started = time.monotonic()
    print(f"[franka-sim venv] installing {PINS[0]} into {venv} (one time, ~25 s)", file=sys.stderr, flush=True)
    if not python.exists():
        _check_call([sys.executable, "-m", "venv", str(venv)], "creating the venv", timeout_s)
    constraints = venv / "constraints.txt"
    constraints.write_text("\n".join(PINS) + "\n")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", str(constraints)]
    _check_call(pip + [pin for pin in PINS if not pin.startswith("torch")], "pip install of franka-sim", timeout_s)
    _check_call([str(python), "-c", "import franka_sim.franka_sim_server, mujoco"], "import check of franka-sim", 120.0)
    (venv / STAMP_NAME).write_text(json.dumps({"pins": list(PINS)}) + "\n")
    print(f"[franka-sim venv] ready in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return python


def _check_call(cmd: list[str], what: str, timeout_s: float) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"{what} did not finish within {timeout_s:.0f} s") from err
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")


def port_in_use(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _die_with_parent() -> None:
    """In the server's process before exec (Linux): SIGTERM it when the process that started it dies,
    so a killed test run leaves no server holding the fixed port."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class FrankaSimProcess:
    """One franka-sim server in its venv, on ``host`` (loopback) and the fixed FCI port.

    Nothing starts in ``__init__``; ``start()`` launches it and returns once franka-sim's own
    readiness probe passed; ``stop()`` sends SIGTERM (SIGKILL after ``stop_timeout_s``); ``kill()``
    is the crash a test provokes. Server output goes to ``log_path``. Motion limits are enforced by
    default; ``enforce_comm_constraints`` also aborts a motion after 20 command cycles lost in a row
    (off by default: a starved 2-core machine can trip it in any test).
    """

    def __init__(self, python: pathlib.Path, log_path: pathlib.Path, host: str = "127.0.0.1",
                 mjcf: pathlib.Path = FR3_MJCF, enforce_motion_limits: bool = True, gripper: bool = True,
                 enforce_comm_constraints: bool = False) -> None:
        self.python, self.log_path, self.host, self.mjcf = pathlib.Path(python), pathlib.Path(log_path), host, mjcf
        self.args = ["--host", host, "--port", str(FCI_PORT)]
        self.args += ["--enforce-motion-limits"] * enforce_motion_limits + ["--no-gripper"] * (not gripper)
        self.args += ["--enforce-comm-constraints"] * enforce_comm_constraints
        self.process: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, ready_timeout_s: float = 30.0) -> float:
        """Launch the server and wait until it serves; return the seconds that took."""
        if self.running:
            return 0.0
        if port_in_use(self.host, FCI_PORT):
            raise RuntimeError(f"{self.host}:{FCI_PORT} is already served (another franka-sim or robot client?); "
                               "libfranka's port is fixed, so only one server can run at a time")
        started = time.monotonic()
        env = dict(os.environ, FR3_MJCF=str(self.mjcf))
        for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(key, None)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([str(self.python), str(SERVER_SCRIPT), *self.args], env=env,
                                            stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self._wait_ready(ready_timeout_s)
        return time.monotonic() - started

    def _wait_ready(self, timeout_s: float) -> None:
        check = self.python.with_name("franka-sim-check")
        cmd = [str(check), "--host", self.host, "--port", str(FCI_PORT), "--timeout", str(timeout_s)]
        try:
            probe = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + 10.0)
            ok = probe.returncode == 0
            detail = (probe.stdout + probe.stderr).strip()
        except subprocess.TimeoutExpired:
            ok, detail = False, f"franka-sim-check did not return within {timeout_s + 10.0:.0f} s"
        if not (ok and self.running):
            self.stop()
            raise RuntimeError(f"franka-sim did not become ready within {timeout_s:.0f} s: {detail}\n"
                               f"server log {self.log_path}:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self, stop_timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited after ``stop_timeout_s``."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=stop_timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def kill(self) -> None:
        """SIGKILL now (a crashed server), and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10.0)
        self.process = None


if __name__ == "__main__":  # the Makefile's install step: build the venv (no-op when it is current)
    print(ensure_franka_sim_venv())
    (ROOT / VENV_NAME / STAMP_NAME).touch()  # newer than this file: make is satisfied
