"""A separate venv holding LeRobot 0.4.4, the peer of ``learner_speed.py`` (its SAC).

LeRobot 0.4.4 requires ``torch<2.11`` and ``torchvision<0.26``; here torch must stay the local
2.13.0 CPU wheel (anything else pulls GBs of CUDA), so it is installed like gym-hil's peer
(``bench_venv.py``), but with no resolver at all: every package of the exact lock in
``lerobot_constraints.txt`` (torch: the 2.13.0+cpu wheel) and ``lerobot`` itself go in with
``--no-deps`` (LeRobot's own pins conflict with that torch, so a resolver would refuse). Left out: torchvision (the only wheel here is built
against CUDA torch and cannot load; see ``lerobot_sac_peer.py``), torchcodec, wandb, rerun,
pynput, cmake -- none is imported by ``lerobot.policies.sac``. ~1.4 GB, 2-7 min once (7 min from
scratch under load average ~11).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bench_venv import _log, _run, stamp_matches

LEROBOT_VERSION = "0.4.4"
VENV_NAME = ".venv-lerobot"
STAMP_NAME = ".lerobot-stamp.json"
CONSTRAINTS = Path(__file__).resolve().with_name("lerobot_constraints.txt")
PEER_SCRIPT = Path(__file__).resolve().with_name("lerobot_sac_peer.py")


def ensure_lerobot_venv(root: Path) -> Path:
    """Create ``root/.venv-lerobot`` with LeRobot if needed; return its python path."""
    venv = Path(root).resolve() / VENV_NAME
    python = venv / "bin" / "python"
    stamp = venv / STAMP_NAME
    wanted = {"lerobot": LEROBOT_VERSION, "lock": CONSTRAINTS.read_text()}
    if stamp_matches(python, stamp, wanted):
        return python
    _log(f"installing lerobot=={LEROBOT_VERSION} into {VENV_NAME} (one time, 2-7 min, ~1.4 GB)")
    t0 = time.monotonic()
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)], "creating the venv")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    _run(pip + ["-r", str(CONSTRAINTS)], "pip install of LeRobot SAC's locked runtime deps")
    _run(pip + [f"lerobot=={LEROBOT_VERSION}"], "pip install of lerobot")
    _run([str(python), str(PEER_SCRIPT), "--seconds", "0", "--threads", "1"], "a LeRobot SAC step")
    stamp.write_text(json.dumps(wanted, indent=1) + "\n")
    _log(f"{VENV_NAME} ready in {time.monotonic() - t0:.0f} s")
    return python
