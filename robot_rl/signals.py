"""SIGTERM as Ctrl-C: a process stopped by ``kill`` (or a supervisor) finishes like an interrupted one."""

from __future__ import annotations

import signal


def stop_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt in the main thread: ``finally`` blocks and interrupt
    handlers run (final checkpoint, flushed logs and spool) instead of the process vanishing."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
