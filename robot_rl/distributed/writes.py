"""The learner's writes besides the store -- checkpoint.pt, actor.pt, TensorBoard, eval.csv,
progress.json -- each of which may fail for lack of disk space: a failing write costs one log
line when it starts failing and one when it works again, the learner keeps serving and retries
later, and (files written through :func:`robot_rl.files.atomic_write`) the previous file stays
whole. Also: whether weights are finite, so a blow-up is never published or checkpointed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pathlib
import threading
import time
from typing import Any, Callable

import torch

from robot_rl.files import atomic_write

log = logging.getLogger(__name__)
RETRY_S = 10.0
"""A write that failed is tried again this long after (the next scheduled one, or sooner)."""
PROGRESS = "progress.json"


class Writes:
    """Named writes that may fail with OSError; see the module docstring."""

    def __init__(self) -> None:
        self.failing: dict[str, float] = {}  # what -> since when (monotonic)

    def run(self, what: str, write: Callable[[], Any], meanwhile: str = "the previous file stays") -> bool:
        """``write()``; False (and a log line the first time in a row) if it raised OSError."""
        try:
            write()
        except OSError as err:
            if what not in self.failing:
                log.warning("cannot write %s (%s); %s, retrying every %.0f s while serving the actors", what, err, meanwhile, RETRY_S)
                self.failing[what] = time.monotonic()
            return False
        since = self.failing.pop(what, None)
        if since is not None:
            log.info("wrote %s again (it failed for %.0f s)", what, time.monotonic() - since)
        return True


class GuardedRunLog:
    """A :class:`~robot_rl.train.logs.RunLog` (TensorBoard scalars, eval.csv, curve.png) whose failing
    writes cost a log line: it is closed and reopened (a new TensorBoard events file) :data:`RETRY_S`
    later; what was logged meanwhile is lost, training is not."""

    WHAT = "TensorBoard logs"
    MEANWHILE = "scalars and evaluations are not logged meanwhile"

    def __init__(self, make: Callable[[], Any], writes: Writes) -> None:
        self._make, self._writes = make, writes
        self._log: Any = None
        self._retry_at = 0.0
        quiet_tensorboard_writer_threads()
        self._do(lambda run_log: None)  # open it now (its events file and eval.csv)

    def scalars(self, metrics, step: int) -> None:
        self._do(lambda run_log: run_log.scalars(metrics, step))

    def evaluation(self, step: int, success_rate: float, mean_return: float) -> None:
        self._do(lambda run_log: run_log.evaluation(step, success_rate, mean_return))

    def close(self) -> None:
        if self._log is not None:
            with contextlib.suppress(Exception):  # its writer thread may have died of the full disk
                self._log.close()
        self._log = None

    def _do(self, action: Callable[[Any], None]) -> None:
        now = time.monotonic()
        if self._log is None and now >= self._retry_at and not self._writes.run(self.WHAT, self._open, self.MEANWHILE):
            self._retry_at = now + RETRY_S
        if self._log is not None and not self._writes.run(self.WHAT, lambda: action(self._log), self.MEANWHILE):
            self.close()
            self._retry_at = now + RETRY_S

    def _open(self) -> None:
        self._log = self._make()


def quiet_tensorboard_writer_threads() -> None:
    """TensorBoard writes from a thread that dies of an OSError (a full disk) with a traceback on
    stderr; the next write from the learner raises the same error, which :class:`GuardedRunLog`
    logs in one line. Keep the traceback off the console (other threads' errors still print)."""
    previous = threading.excepthook
    if getattr(previous, "_robot_rl_quiet", False):
        return

    def hook(args) -> None:
        if not (issubclass(args.exc_type, OSError) and type(args.thread).__name__ == "_AsyncWriterThread"):
            previous(args)

    hook._robot_rl_quiet = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def non_finite(tensors: Any, prefix: str = "") -> list[str]:
    """Names of the floating-point tensors (or arrays) in a nested dict/list that hold NaN or inf."""
    if isinstance(tensors, dict):
        return [name for key, value in tensors.items() for name in non_finite(value, f"{prefix}{key}.")]
    if isinstance(tensors, (list, tuple)):
        return [name for index, value in enumerate(tensors) for name in non_finite(value, f"{prefix}{index}.")]
    value = torch.as_tensor(tensors) if hasattr(tensors, "dtype") and not isinstance(tensors, torch.Tensor) else tensors
    if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        return [prefix.rstrip(".")]
    return []


def write_progress(run_dir: pathlib.Path, updates: int) -> None:
    """How far training got (the updates since the last checkpoint are lost in a crash; the next
    start says how many). Not fsynced: a crash may lose the newest value, never the file's form."""
    text = json.dumps({"updates": int(updates)}).encode()
    atomic_write(pathlib.Path(run_dir) / PROGRESS, lambda file: file.write(text), durable=False)


def read_progress(run_dir: pathlib.Path) -> int | None:
    """The updates :func:`write_progress` recorded last (None: none, or unreadable)."""
    try:
        updates = json.loads((pathlib.Path(run_dir) / PROGRESS).read_text())["updates"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return updates if isinstance(updates, int) else None
