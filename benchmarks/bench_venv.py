"""A separate venv holding gym-hil, the baseline peer of ``sim_speed.py``.

gym-hil pins ``mujoco<3.9`` (our project uses mujoco 4), so it cannot share our
venv. :func:`ensure_bench_venv` builds ``<root>/.venv-bench`` once (git-ignored)
and :func:`run_peer` runs ``gym_hil_peer.py`` in it, returning its JSON result.

Install recipe (validated on Debian 12, Python 3.11, CPU only):

* the runtime deps, pinned exactly through a constraints file (a lock);
* ``gym-hil`` itself with ``--no-deps``. Its other declared deps (``pynput``,
  ``hidapi``, ``pygame``, ``imageio[ffmpeg]``) serve only keyboard/gamepad
  teleop and are imported lazily; skipping them avoids ~90 MB of wheels and
  compiling ``evdev`` from source (needs gcc + kernel headers).

gym-hil does not depend on torch. ``torch==2.13.0`` (the local CPU wheel) is
still in the constraints so that nothing can ever pull a CUDA torch.
Stdlib only: this module is imported from our own venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

GYM_HIL_VERSION = "0.1.14"
VENV_NAME = ".venv-bench"
STAMP_NAME = ".bench-stamp.json"
PEER_SCRIPT = Path(__file__).resolve().with_name("gym_hil_peer.py")

# Top-level runtime requirements of gym_hil.envs (gym-hil itself goes in with --no-deps).
REQUIREMENTS = ("mujoco==3.8.1", "gymnasium==1.4.0", "numpy==2.4.6")
# Full lock of what REQUIREMENTS resolve to, plus the torch guard.
CONSTRAINTS = (
    "mujoco==3.8.1",
    "gymnasium==1.4.0",
    "numpy==2.4.6",
    "absl-py==2.5.1",
    "cloudpickle==3.1.2",
    "etils==1.15.0",
    "Farama-Notifications==0.0.6",
    "fsspec==2026.9.0",
    "glfw==2.11.0",
    "PyOpenGL==3.1.10",
    "typing_extensions==4.16.0",
    "zipp==4.1.2",
    "torch==2.13.0",
)


def stamp_matches(python: Path, stamp: Path, wanted: dict) -> bool:
    """Whether a side venv's python exists and its stamp file records exactly ``wanted`` (its pins)."""
    if not (python.exists() and stamp.exists()):
        return False
    try:
        return json.loads(stamp.read_text()) == wanted
    except (OSError, ValueError):
        return False


def _log(msg: str) -> None:
    print(f"[bench_venv] {msg}", file=sys.stderr, flush=True)


def _tail(text: str | bytes | None, n: int = 3000) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (text or "")[-n:]


def _run(cmd: list[str], what: str, timeout_s: float = 900) -> None:
    """Run a command quietly; raise RuntimeError with its output tail on failure."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"{what} timed out after {timeout_s}s:\n{_tail(e.stderr)}") from e
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (rc={proc.returncode}):\n{_tail(proc.stdout + proc.stderr)}")


def ensure_bench_venv(root: Path) -> Path:
    """Create ``root/.venv-bench`` with gym-hil if needed; return its python path.

    A stamp file records the pins; when it matches, this returns immediately.
    Changing the pins above triggers a reinstall into the same venv.
    """
    venv = Path(root).resolve() / VENV_NAME
    python = venv / "bin" / "python"
    stamp = venv / STAMP_NAME
    wanted = {"gym-hil": GYM_HIL_VERSION, "requirements": list(REQUIREMENTS), "constraints": list(CONSTRAINTS)}
    if stamp_matches(python, stamp, wanted):
        return python

    _log(f"installing gym-hil=={GYM_HIL_VERSION} into {VENV_NAME} (one time, ~20 s)")
    t0 = time.monotonic()
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)], "creating the venv")
    constraints = venv / "bench-constraints.txt"
    constraints.write_text("\n".join(CONSTRAINTS) + "\n")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", str(constraints)]
    _run(pip + list(REQUIREMENTS), "pip install of gym-hil's runtime deps")
    _run(pip + ["--no-deps", f"gym-hil=={GYM_HIL_VERSION}"], "pip install of gym-hil")
    _run([str(python), "-c", "import gym_hil, mujoco"], "import check of gym-hil")
    stamp.write_text(json.dumps(wanted, indent=1) + "\n")
    _log(f"{VENV_NAME} ready in {time.monotonic() - t0:.0f} s")
    return python


def run_peer(python: Path, obs: str, steps: int, seconds: float, timeout_s: float) -> dict:
    """Run ``gym_hil_peer.py`` under ``python`` and return its parsed JSON line.

    ``seconds`` caps the timed loop; ``timeout_s`` caps the whole subprocess
    (env creation takes ~3-5 s, one pixels step ~1 s on llvmpipe), so give it
    headroom: ``seconds + 60`` is plenty. Raises RuntimeError on failure.
    """
    cmd = [str(python), str(PEER_SCRIPT), "--obs", obs, "--steps", str(int(steps)), "--seconds", str(float(seconds))]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.setdefault("MUJOCO_GL", "egl")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"gym-hil peer ({obs}) timed out after {timeout_s}s:\n{_tail(e.stderr)}") from e
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"gym-hil peer ({obs}) failed (rc={proc.returncode}):\n{_tail(proc.stderr)}")
    try:
        return json.loads(lines[-1])
    except ValueError as e:
        raise RuntimeError(f"gym-hil peer ({obs}) printed no JSON: {lines[-1][:500]!r}\n{_tail(proc.stderr)}") from e


if __name__ == "__main__":  # manual check: python benchmarks/bench_venv.py [state|pixels]
    _py = ensure_bench_venv(Path(__file__).resolve().parents[1])
    _obs = sys.argv[1] if len(sys.argv) > 1 else "state"
    print(json.dumps(run_peer(_py, _obs, 2000 if _obs == "state" else 30, 60.0, 180.0)))
