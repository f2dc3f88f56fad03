"""A device emulated at the far end of a pseudo-terminal, for testing serial drivers over a real tty.

The driver under test opens :attr:`PtyPeer.port` (the pty's slave end, set raw) with pyserial
exactly as it opens a USB adapter; the peer's daemon thread owns the master end. Each pass of the
thread waits at most ``poll_s`` for bytes, appends what arrived to ``self._buffer`` and calls
:meth:`PtyPeer._handle_frames` (cut frames out of the buffer, answer with :meth:`PtyPeer._send`),
then calls :meth:`PtyPeer._step` (advance the device model), whether bytes came or not. A subclass
writes only its protocol and its model; it notifies ``self._cond`` whenever test-visible state
changes so :meth:`PtyPeer.wait_for` wakes.

Unix only (``os.openpty``). Every wait is bounded: the poll by ``poll_s``, the join in
:meth:`PtyPeer.stop` by two seconds, :meth:`PtyPeer.wait_for` by its ``timeout_s``.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11; annotations only

_JOIN_TIMEOUT_S = 2.0
_READ_CHUNK_BYTES = 4096


class PtyPeer:
    """Opens the pty pair at construction (``port`` is known before ``start``); the thread runs
    from ``start()`` (or ``with``) to ``stop()``. Subclasses implement ``_handle_frames`` and ``_step``."""

    def __init__(self, thread_name: str, poll_s: float) -> None:
        if poll_s <= 0.0:
            raise ValueError(f"poll_s must be positive, got {poll_s}")
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._poll_s = poll_s
        self._buffer = b""  # bytes read from the driver, not yet cut into frames
        self._cond = threading.Condition()  # the subclass notifies it at every frame and model step
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    # ------------------------------------------------------------------ test side
    def start(self) -> Self:
        self._running.set()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (bounded join) and close both ends of the pty; safe to call twice."""
        self._running.clear()
        if self._thread.is_alive():
            self._thread.join(_JOIN_TIMEOUT_S)
        for fd in (self._master, self._slave):
            _close(fd)

    __enter__ = start

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def vanish(self) -> None:
        """The USB cable is pulled: the master end closes; the driver's next read or write fails."""
        self.stop()

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 2.0) -> bool:
        """Whether ``predicate`` became true within ``timeout_s`` (checked whenever the subclass notifies)."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout_s)

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        while self._running.is_set():
            ready, _, _ = select.select([self._master], [], [], self._poll_s)
            if ready:
                try:
                    self._buffer += os.read(self._master, _READ_CHUNK_BYTES)
                except OSError:
                    return  # the master end was closed under us (vanish)
                self._handle_frames()
            self._step()

    def _send(self, data: bytes) -> None:
        """Write ``data`` to the driver (a pty master write; the kernel buffers a reply's few bytes)."""
        os.write(self._master, data)

    def _handle_frames(self) -> None:
        """Cut the complete frames out of ``self._buffer`` and answer them."""
        raise NotImplementedError(f"{type(self).__name__} must say how its protocol cuts and answers frames")

    def _step(self) -> None:
        """Advance the device model by the time since the last step."""
        raise NotImplementedError(f"{type(self).__name__} must say how its device model steps")


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass  # already closed (stop after vanish)
