"""What the learner, the actors and their stores share: ids, the hello, chunk views."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from typing import Any, Mapping

import numpy as np

from robot_rl.data import Episode
from robot_rl.data.schema import ObsSpec
from robot_rl.transport import ActionSpec, Hello, Transitions
from robot_rl.transport.handshake import observation_spec, parameter_shapes_hash

PARENT_PID_ENV = "ROBOT_RL_STOP_WITH_PID"
"""Set by ``robot-rl launch`` for its children: the pid whose death must stop them."""
_PR_SET_PDEATHSIG = 1
log = logging.getLogger(__name__)


_SAY = threading.Lock()


def say(line: str) -> None:
    """Print ``line`` whole. ``print`` writes the text and its newline in two writes, so under
    ``PYTHONUNBUFFERED`` (launch's children) two threads' lines can join into one: the actor's control
    loop and its network thread both report, and ``launch`` prefixes each line it reads with the
    child's name."""
    with _SAY:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def stop_with_parent() -> None:
    """Under ``robot-rl launch``: receive SIGTERM (a clean stop, like Ctrl-C) when launch dies, even
    by SIGKILL (Linux ``prctl(PR_SET_PDEATHSIG)``); elsewhere, or run by hand, nothing changes.
    SIGTERM, not SIGINT: a process can inherit SIGINT as ignored (a script's background job)."""
    parent = os.environ.get(PARENT_PID_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        log.warning("cannot ask to be stopped with robot-rl launch (prctl: %s); stop this process yourself if launch dies",
                    os.strerror(ctypes.get_errno()))
        return
    if os.getppid() != int(parent):  # launch died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def give_back_memory() -> None:
    """Return freed heap memory to the system (glibc ``malloc_trim``; a no-op elsewhere): after a
    large message was dropped, its pages would otherwise stay in this process's RSS."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def lower_thread_priority(thread_ids: list[int], niceness: int = 10) -> None:
    """Let the control loop win the CPU over network work (Linux: each thread has its own nice);
    best effort, a no-op where it is not allowed."""
    for thread_id in thread_ids:
        try:
            os.setpriority(os.PRIO_PROCESS, thread_id, niceness)
        except (OSError, AttributeError):
            pass


def zmq_io_threads() -> list[int]:
    """Native ids of this process's ZeroMQ background threads (named ``ZMQbg/...``; Linux)."""
    out = []
    with contextlib.suppress(OSError):
        for task in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/comm") as comm:
                if comm.read().startswith("ZMQbg"):
                    out.append(int(task))
    return out


_ACTOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_actor_id(actor: str) -> str:
    """``actor`` if it is a safe file name (letters, digits, ``_ . -``; 1-64 chars), else ValueError."""
    if not isinstance(actor, str) or not _ACTOR_ID.match(actor):
        raise ValueError(f"actor id {str(actor)[:70]!r} must be 1-64 letters, digits, '_', '.' or '-' "
                         "(starting with a letter or digit): it names files on the learner")
    return actor


# ------------------------------------------------------------------------------ the handshake
def agent_description(algo: str, sac: Any, actor_weights: Mapping[str, Any], env_options: Mapping[str, Any]) -> dict:
    """What must match between the learner's agent and an actor's: weights shapes, encoder, env options."""
    return {
        "algo": algo,
        "parameters": parameter_shapes_hash(actor_weights),
        "hidden_dims": [int(d) for d in sac.hidden_dims],
        "encoder_features": int(sac.encoder_features),
        "image_encoder": sac.image_encoder,
        "pooling": sac.pooling,
        "hybrid_gripper": bool(sac.hybrid_gripper),
        "env_options": sorted(f"{k}={v}" for k, v in env_options.items()),
    }


def make_hello(actor: str, task: str, spec: ObsSpec, action_space: Any, description: Mapping[str, Any]) -> Hello:
    """The hello an actor sends (and the learner's own, to compare against)."""
    return Hello(actor, task, observation_spec(spec.shapes()), ActionSpec.from_box(action_space), dict(description))


# ------------------------------------------------------------------------------ chunks
def check_chunk(chunk: Transitions, spec: ObsSpec, action_dim: int) -> None:
    """ValueError naming what in ``chunk`` does not fit the learner's spaces (or is not finite)."""
    shapes = spec.shapes()
    if set(chunk.observations) != set(shapes):
        raise ValueError(f"observation keys {sorted(chunk.observations)} != the learner's {sorted(shapes)}")
    for key, (shape, dtype) in shapes.items():
        value = chunk.observations[key]
        if value.shape[1:] != tuple(shape) or value.dtype != dtype:
            raise ValueError(f"observation {key!r} is {value.dtype} {value.shape[1:]}, the learner expects {dtype} {tuple(shape)}")
    if chunk.action.shape[1] != action_dim:
        raise ValueError(f"actions have {chunk.action.shape[1]} dims, the learner's action space has {action_dim}")
    for label, value in (("action", chunk.action), ("reward", chunk.reward), ("obs/state", chunk.observations["state"])):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{label} holds NaN or inf")


def chunk_episode(chunk: Transitions, start: Mapping[str, np.ndarray]) -> Episode:
    """``chunk`` as an :class:`Episode` segment starting at observation ``start`` (for replay buffers).

    The segment's observations are ``start`` then each step's next observation, so adding
    consecutive chunks of one episode as segments covers every transition exactly once.
    """
    nexts = chunk.next_observations()
    observations = {k: np.concatenate([np.asarray(start[k])[None], nexts[k]]) for k in nexts}
    return Episode(observations, np.asarray(chunk.action), np.asarray(chunk.reward), np.asarray(chunk.terminated),
                   np.asarray(chunk.truncated), np.asarray(chunk.intervention), {})


def last_observation(chunk: Transitions) -> dict[str, np.ndarray]:
    """The observation after the chunk's last step (a copy: chunks may view network buffers)."""
    return {k: np.array(v[-1]) for k, v in chunk.observations.items()}


# ------------------------------------------------------------------------------ logging
class Throttle:
    """Let a message through once per ``period_s`` per key (others are counted, then summarized)."""

    MAX_KEYS = 4096

    def __init__(self, log: logging.Logger, period_s: float = 30.0) -> None:
        self.log, self.period_s = log, period_s
        self._last: dict[Any, float] = {}
        self._skipped: dict[Any, int] = {}

    def warning(self, key: Any, message: str) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -math.inf) < self.period_s:
            self._skipped[key] = self._skipped.get(key, 0) + 1
            return
        if len(self._last) > self.MAX_KEYS:  # many distinct senders: forget them, stay bounded
            self._last.clear()
            self._skipped.clear()
        skipped = self._skipped.pop(key, 0)
        self._last[key] = now
        self.log.warning("%s%s", message, f" (and {skipped} more like it)" if skipped else "")


def connect_address(endpoint: str) -> str:
    """Where a local peer connects to reach a bound ``endpoint`` (``tcp://*:P`` -> ``tcp://127.0.0.1:P``)."""
    scheme, _, rest = endpoint.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme == "tcp" and host in ("*", "0.0.0.0", "[::]", "::"):
        return f"tcp://127.0.0.1:{port}"
    return endpoint
