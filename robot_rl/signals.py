"""Ctrl-C and SIGTERM stop a robot-rl process cleanly, however it was started."""

from __future__ import annotations

import signal


def stop_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt in the main thread: ``finally`` blocks and interrupt
    handlers run (final checkpoint, flushed logs and spool) instead of the process vanishing."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def interrupt_on_sigint() -> None:
    """Ctrl-C (SIGINT) raises KeyboardInterrupt even when the process inherited SIGINT as ignored:
    a shell script's background job (``robot-rl launch ... &``) gets it so, and Python then
    installs no handler, so a later SIGINT would do nothing at all."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
