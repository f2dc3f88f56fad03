"""``robot-rl launch``: one learner and N simulated actors as subprocesses, one merged view.

Each process runs ``python -m robot_rl.cli learner|actor ...`` with the options of the launch
config that differ from the defaults (nothing is pickled or shared in memory: they are ordinary
processes that could as well run on different machines). Their stdout and stderr lines are
printed prefixed with ``[learner]``, ``[actor-0]`` ...; the learner's status line every 2 s is
the main view. A learner that dies (crash, ``kill -9``, out of memory) is started again with
``--resume`` while the actors keep running (``--restart-learner``, at most
:data:`MAX_RESTARTS` times in :data:`RESTART_WINDOW_S`). Ctrl-C or SIGTERM, the learner finishing
(or stopped), an actor failing or every actor finishing stops the rest: SIGTERM to the actors
(they flush to the still running learner), then to the learner; each waited for up to
``--stop-timeout-s``, then SIGKILL. SIGTERM, not SIGINT: a child can inherit SIGINT as ignored (a
script's background job), never SIGTERM. If launch itself dies, even by SIGKILL, the kernel sends
its children SIGTERM (Linux). The exit code is 130 after Ctrl-C or SIGTERM, else the learner's,
else 1 if an actor failed.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import typing

import tyro

from robot_rl.distributed.common import PARENT_PID_ENV, connect_address
from robot_rl.distributed.config import ActorConfig, LaunchConfig, LearnerConfig
from robot_rl.transport.auth import AUTHORIZED_DIR, generate_keys

POLL_S = 0.2
MAX_RESTARTS, RESTART_WINDOW_S = 5, 600.0
ACTOR_FLUSH_S = 5.0  # actors stop before the learner, so their last acks come at once; if the learner
# ended first they would wait for nothing


def ensure_keys(directory: pathlib.Path, actors: list[str]) -> pathlib.Path:
    """CURVE keys for the learner and ``actors`` in ``directory``: created where missing, kept otherwise."""
    if not (directory / "learner.key_secret").exists():
        generate_keys(directory, actors)
        return directory
    missing = [name for name in actors if not (directory / f"{name}.key_secret").exists()]
    if missing:
        staging = pathlib.Path(tempfile.mkdtemp(prefix=".keys-", dir=directory))
        try:
            generate_keys(staging, missing)  # its learner pair is discarded
            for name in missing:
                for source, target in ((f"{name}.key", f"{name}.key"), (f"{name}.key_secret", f"{name}.key_secret"),
                                       (f"{AUTHORIZED_DIR}/{name}.key", f"{AUTHORIZED_DIR}/{name}.key")):
                    os.replace(staging / source, directory / target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return directory


def cli_args(config, default, prefix: str = "", names: list[str] | None = None) -> list[str]:
    """tyro command-line arguments that turn ``default`` into ``config`` (the fields that differ);
    a nested config marked ``tyro.conf.OmitArgPrefixes`` (the env) gives unprefixed flags."""
    args: list[str] = []
    hints = typing.get_type_hints(type(config), include_extras=True)
    for field in dataclasses.fields(config):
        if names is not None and field.name not in names:
            continue
        value, base = getattr(config, field.name), getattr(default, field.name)
        name = prefix + field.name.replace("_", "-")
        if dataclasses.is_dataclass(value):
            flat = tyro.conf.OmitArgPrefixes in typing.get_args(hints.get(field.name))
            args += cli_args(value, base, prefix if flat else name + ".")
        elif value == base:
            continue
        elif isinstance(value, bool):
            args.append(f"--{name}" if value else f"--{prefix}no-{field.name.replace('_', '-')}")
        elif isinstance(value, tuple):
            args += [f"--{name}", *map(str, value)]
        else:
            args += [f"--{name}", str(value)]
    return args


def learner_command(cfg: LaunchConfig, keys: pathlib.Path) -> list[str]:
    names = [f.name for f in dataclasses.fields(LearnerConfig)]
    learner = LearnerConfig(**{name: getattr(cfg, name) for name in names})
    learner = dataclasses.replace(learner, name=cfg.run_name, keys=keys)
    return [sys.executable, "-m", "robot_rl.cli", "learner", *cli_args(learner, LearnerConfig(), names=names)]


def actor_command(cfg: LaunchConfig, keys: pathlib.Path, index: int) -> list[str]:
    actor = ActorConfig(
        id=f"actor-{index}", env=dataclasses.replace(cfg.env, seed=cfg.env.seed + 1 + index),
        learner=connect_address(cfg.bind), weights=connect_address(cfg.weights_bind), keys=keys, out=cfg.out,
        name=cfg.run_name, max_hz=cfg.actor_max_hz, steps=cfg.actor_steps,
        chunk_steps=cfg.chunk_steps, random_steps=cfg.random_steps, hil=cfg.hil, sim_human=cfg.sim_human, sac=cfg.sac,
        flush_s=ACTOR_FLUSH_S, init_from=cfg.init_from, init_residual_scale=cfg.init_residual_scale,
    )
    return [sys.executable, "-m", "robot_rl.cli", "actor", "--id", actor.id, *cli_args(actor, ActorConfig(id=actor.id))]


class ProcessGroup:
    """Named child processes whose output lines are printed with a ``[name]`` prefix."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen] = {}
        self._readers: list[threading.Thread] = []
        self._print = threading.Lock()

    def say(self, name: str, line: str) -> None:
        with self._print:
            print(f"[{name}] {line}", flush=True)

    def start(self, name: str, argv: list[str]) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", PARENT_PID_ENV: str(os.getpid())}  # they stop if we die
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                errors="replace", env=env, start_new_session=True)  # Ctrl-C reaches us only; we forward it
        self.procs[name] = proc
        reader = threading.Thread(target=self._pump, args=(name, proc), daemon=True)
        reader.start()
        self._readers.append(reader)
        self.say("launch", f"started {name} (pid {proc.pid})")

    def _pump(self, name: str, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.say(name, line.rstrip("\n"))

    def returncodes(self) -> dict[str, int | None]:
        return {name: proc.poll() for name, proc in self.procs.items()}

    def stop(self, timeout_s: float) -> None:
        """Stop the actors, then the learner (so the actors' last chunks are still acked): SIGTERM,
        wait up to ``timeout_s``, SIGKILL."""
        actors = [name for name in self.procs if name != "learner"]
        for names in (actors, ["learner"]):
            self._stop([name for name in names if name in self.procs], timeout_s)
        for reader in self._readers:
            reader.join(timeout=5)

    def _stop(self, names: list[str], timeout_s: float) -> None:
        live = {n: self.procs[n] for n in names if self.procs[n].poll() is None}
        for proc in live.values():
            _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for name, proc in live.items():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                self.say("launch", f"{name} did not stop within {timeout_s:.0f} s: SIGKILL")
                _signal(proc, signal.SIGKILL)
                proc.wait(timeout=10)


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass


def supervise(group: ProcessGroup, actors: list[str], restart) -> int:
    """Wait until the learner ends (``restart()`` starts it again after a death, if it may), an actor
    fails or every actor finished; the exit code."""
    while True:
        codes = group.returncodes()
        if codes["learner"] is not None and not (codes["learner"] not in (0, 130) and restart(codes["learner"])):
            return codes["learner"]
        failed = [n for n in actors if codes[n] not in (None, 0, 130)]
        if failed:
            group.say("launch", f"{', '.join(f'{n} exited with {codes[n]}' for n in failed)}; stopping everything")
            return 1
        if all(codes[n] == 0 for n in actors):
            group.say("launch", "every actor finished; stopping the learner")
            return 0
        time.sleep(POLL_S)


class LearnerRestarts:
    """``restart(code)``: start the learner again with --resume after it died, unless that happened
    :data:`MAX_RESTARTS` times in :data:`RESTART_WINDOW_S` (a crash loop) or restarts are off."""

    def __init__(self, group: ProcessGroup, cfg: LaunchConfig, keys: pathlib.Path) -> None:
        self.group, self.cfg, self.keys = group, cfg, keys
        self.times: list[float] = []

    def __call__(self, code: int) -> bool:
        if not self.cfg.restart_learner:
            self.group.say("launch", f"learner exited with {code}; stopping everything (--no-restart-learner)")
            return False
        now = time.monotonic()
        self.times = [t for t in self.times if now - t < RESTART_WINDOW_S] + [now]
        if len(self.times) > MAX_RESTARTS:
            self.group.say("launch", f"learner exited with {code}, its {len(self.times)}th death in {RESTART_WINDOW_S / 60:.0f} "
                                     "min; stopping everything (see its last lines above)")
            return False
        self.group.say("launch", f"learner exited with {code}; restarting it with --resume (the actors keep running and "
                                 "resend what they spooled)")
        self.group.start("learner", learner_command(dataclasses.replace(self.cfg, resume=True), self.keys))
        return True


def run_launch(cfg: LaunchConfig) -> int:
    names = [f"actor-{i}" for i in range(cfg.actors)]
    keys = cfg.keys or ensure_keys(cfg.run_dir / "keys", names)
    group = ProcessGroup()
    code = 0
    try:
        group.start("learner", learner_command(cfg, keys))
        for index, name in enumerate(names):
            group.start(name, actor_command(cfg, keys, index))
        code = supervise(group, names, LearnerRestarts(group, cfg, keys))
    except KeyboardInterrupt:
        code = 130
    finally:
        # one Ctrl-C or SIGTERM stops all; a second one would cut the orderly stop short
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        group.say("launch", f"stopping {len([p for p in group.procs.values() if p.poll() is None])} process(es)")
        group.stop(cfg.stop_timeout_s)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    group.say("launch", "exit codes: " + ", ".join(f"{n} {c}" for n, c in group.returncodes().items()))
    return code
