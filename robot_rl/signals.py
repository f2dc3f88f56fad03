"""Ctrl-C and SIGTERM stop a robot-rl process cleanly, however it was started."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


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


@contextlib.contextmanager
def signals_deferred(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done, then deliver them as they would have been.

    For a few statements that must happen together or not at all, e.g. handing a chunk to a queue
    and forgetting it: a KeyboardInterrupt between the two would hand the chunk over twice. The C
    signal handler may run in any thread, but Python's handlers run in the main thread, so only
    there is anything deferred (elsewhere the block runs as it is). Keep the block short: a signal
    waits for it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    installed = [signum for signum in signums if signal.getsignal(signum) is not None]  # None: set outside Python, left alone
    previous = {signum: signal.signal(signum, lambda signum, frame: caught.append(signum)) for signum in installed}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)
